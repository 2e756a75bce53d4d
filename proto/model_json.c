/* model_json.c — model.json to conv_layer_specs and back. The JSON level
 * (types, names, arity) is checked here; torch's rules on the values are
 * left to conv_layer_spec_validate so there is one copy of them. */
#include <stdio.h>
#include <string.h>

#include "proto/model_json.h"

/* Integers are refused beyond this before they reach the core: no real
 * layer needs them, and it keeps every value comfortably inside int64. */
#define MAX_JSON_INT ((json_int_t)1 << 31)

/* ------------------------------------------------------------ arguments */

/* The keys each layer type accepts (torch's constructor arguments, plus
 * "type" and convd's "algorithm"). device and dtype are refused apart. */
static const char *const conv2d_keys[] = {"type",   "in_channels", "out_channels", "kernel_size",
                                          "stride", "padding",     "dilation",     "groups",
                                          "bias",   "padding_mode", "algorithm",   NULL};
static const char *const separable_keys[] = {"type",     "in_channels",      "out_channels", "kernel_size",
                                             "stride",   "padding",          "dilation",     "depth_multiplier",
                                             "bias",     "padding_mode",     "algorithm",    NULL};
static const char *const batchnorm_keys[] = {"type",   "num_features",        "eps", "momentum",
                                             "affine", "track_running_stats", NULL};
static const char *const relu_keys[] = {"type", "inplace", NULL};
static const char *const maxpool_keys[] = {"type",     "kernel_size", "stride",         "padding",
                                           "dilation", "ceil_mode",   "return_indices", NULL};
static const char *const avgpool_keys[] = {"type",      "kernel_size",       "stride",           "padding",
                                           "ceil_mode", "count_include_pad", "divisor_override", NULL};

static const char *const *layer_keys(conv_layer_type type)
{
    switch (type) {
    case CONV_LAYER_CONV2D: return conv2d_keys;
    case CONV_LAYER_SEPARABLE_CONV2D: return separable_keys;
    case CONV_LAYER_BATCHNORM2D: return batchnorm_keys;
    case CONV_LAYER_RELU:
    case CONV_LAYER_RELU6: return relu_keys;
    case CONV_LAYER_MAXPOOL2D: return maxpool_keys;
    case CONV_LAYER_AVGPOOL2D: return avgpool_keys;
    case CONV_LAYER_TYPE_COUNT: break;
    }
    return relu_keys;
}

static bool key_listed(const char *const *keys, const char *key)
{
    for (; *keys; keys++)
        if (strcmp(*keys, key) == 0) return true;
    return false;
}

/* "a, b, c" into buf (truncated if it does not fit) */
static void join_names(const char *const *names, size_t n, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && used < len; i++) {
        int w = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", names[i]);
        if (w < 0) break;
        used += (size_t)w;
    }
}

/* One layer object being read: messages name path.key. */
typedef struct layer_reader {
    const json_t *obj;
    const char *path;
    conv_error *err;
} layer_reader;

static conv_status read_int_value(const layer_reader *r, const char *key, const json_t *v, int64_t *out)
{
    if (!json_is_integer(v))
        return conv_fail(r->err, CONV_INVALID_PARAMETER, "%s.%s: must be an integer", r->path, key);
    json_int_t i = json_integer_value(v);
    if (i > MAX_JSON_INT || i < -MAX_JSON_INT)
        return conv_fail(r->err, CONV_LIMIT_EXCEEDED, "%s.%s: %lld is out of range (at most 2^31 in magnitude)",
                         r->path, key, (long long)i);
    *out = (int64_t)i;
    return CONV_OK;
}

/* Absent keys leave *out (the torch default) alone. */
static conv_status read_int(const layer_reader *r, const char *key, int64_t *out)
{
    const json_t *v = json_object_get(r->obj, key);
    return v ? read_int_value(r, key, v, out) : CONV_OK;
}

/* An int (both sides) or [h, w]. rule describes the values ("positive",
 * "non-negative") for the message; the values themselves are checked by
 * the core. */
static conv_status read_pair(const layer_reader *r, const char *key, const char *rule, int64_t out[2])
{
    const json_t *v = json_object_get(r->obj, key);
    if (!v) return CONV_OK;
    int64_t pair[2];
    bool ok = false;
    if (json_is_integer(v)) {
        ok = true;
        conv_status st = read_int_value(r, key, v, &pair[0]);
        if (st) return st;
        pair[1] = pair[0];
    } else if (json_is_array(v) && json_array_size(v) == 2 && json_is_integer(json_array_get(v, 0)) &&
               json_is_integer(json_array_get(v, 1))) {
        ok = true;
        for (size_t i = 0; i < 2; i++) {
            conv_status st = read_int_value(r, key, json_array_get(v, i), &pair[i]);
            if (st) return st;
        }
    }
    if (!ok) {
        if (json_is_array(v) && json_array_size(v) != 2)
            return conv_fail(r->err, CONV_INVALID_PARAMETER,
                             "%s.%s: must be a %s integer or a list of 2 %s integers, got a list of %zu", r->path,
                             key, rule, rule, json_array_size(v));
        return conv_fail(r->err, CONV_INVALID_PARAMETER, "%s.%s: must be a %s integer or a list of 2 %s integers",
                         r->path, key, rule, rule);
    }
    out[0] = pair[0];
    out[1] = pair[1];
    return CONV_OK;
}

static conv_status read_bool(const layer_reader *r, const char *key, bool *out)
{
    const json_t *v = json_object_get(r->obj, key);
    if (!v) return CONV_OK;
    if (!json_is_boolean(v))
        return conv_fail(r->err, CONV_INVALID_PARAMETER, "%s.%s: must be true or false", r->path, key);
    *out = json_is_true(v);
    return CONV_OK;
}

static conv_status read_padding_mode(const layer_reader *r, conv_padding_mode *out)
{
    const json_t *v = json_object_get(r->obj, "padding_mode");
    if (!v) return CONV_OK;
    int mode = json_is_string(v) ? conv_padding_mode_from_name(json_string_value(v)) : -1;
    if (mode < 0)
        return conv_fail(r->err, CONV_INVALID_PARAMETER,
                         "%s.padding_mode: must be one of \"zeros\", \"reflect\", \"replicate\", \"circular\"",
                         r->path);
    *out = (conv_padding_mode)mode;
    return CONV_OK;
}

static conv_status read_algorithm(const layer_reader *r, conv_algorithm *out)
{
    const json_t *v = json_object_get(r->obj, "algorithm");
    if (!v) return CONV_OK;
    int algo = json_is_string(v) ? conv_algorithm_from_name(json_string_value(v)) : -1;
    if (algo < 0) {
        const char *names[CONV_ALGO_COUNT];
        for (int i = 0; i < CONV_ALGO_COUNT; i++) names[i] = conv_algorithm_name((conv_algorithm)i);
        char list[256];
        join_names(names, CONV_ALGO_COUNT, list, sizeof list);
        return conv_fail(r->err, CONV_INVALID_PARAMETER, "%s.algorithm: must be one of %s", r->path, list);
    }
    *out = (conv_algorithm)algo;
    return CONV_OK;
}

/* Convolutions: an int, [h, w], "same" or "valid". */
static conv_status read_conv_padding(const layer_reader *r, conv_layer_spec *spec)
{
    const json_t *v = json_object_get(r->obj, "padding");
    if (!v) return CONV_OK;
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (strcmp(s, "same") == 0) {
            spec->padding_kind = CONV_PADDING_SAME;
        } else if (strcmp(s, "valid") == 0) {
            spec->padding_kind = CONV_PADDING_VALID;
        } else {
            return conv_fail(r->err, CONV_INVALID_PARAMETER,
                             "%s.padding: must be a non-negative integer, a list of 2 non-negative integers, "
                             "\"same\" or \"valid\", got \"%s\"",
                             r->path, s);
        }
        spec->padding[0] = spec->padding[1] = 0;
        return CONV_OK;
    }
    if (!json_is_integer(v) && !json_is_array(v))
        return conv_fail(r->err, CONV_INVALID_PARAMETER,
                         "%s.padding: must be a non-negative integer, a list of 2 non-negative integers, \"same\" "
                         "or \"valid\"",
                         r->path);
    spec->padding_kind = CONV_PADDING_EXPLICIT;
    return read_pair(r, "padding", "non-negative", spec->padding);
}

/* Pools: null (torch's None: the kernel size, kept as {0, 0}) or a pair. */
static conv_status read_pool_stride(const layer_reader *r, int64_t stride[2])
{
    const json_t *v = json_object_get(r->obj, "stride");
    if (!v || json_is_null(v)) {
        stride[0] = stride[1] = 0;
        return CONV_OK;
    }
    if (!json_is_integer(v) && !json_is_array(v))
        return conv_fail(r->err, CONV_INVALID_PARAMETER,
                         "%s.stride: must be null, a positive integer or a list of 2 positive integers", r->path);
    conv_status st = read_pair(r, "stride", "positive", stride);
    if (st) return st;
    /* {0, 0} is how the spec spells None, so a written 0 must not slip through as it */
    if (stride[0] == 0 && stride[1] == 0)
        return conv_fail(r->err, CONV_INVALID_PARAMETER,
                         "%s.stride: must be positive, got 0 (null means the kernel size)", r->path);
    return CONV_OK;
}

static conv_status read_conv(const layer_reader *r, conv_layer_spec *spec)
{
    conv_status st;
    if ((st = read_int(r, "in_channels", &spec->in_channels))) return st;
    if ((st = read_int(r, "out_channels", &spec->out_channels))) return st;
    if ((st = read_pair(r, "kernel_size", "positive", spec->kernel_size))) return st;
    if ((st = read_pair(r, "stride", "positive", spec->stride))) return st;
    if ((st = read_conv_padding(r, spec))) return st;
    if ((st = read_pair(r, "dilation", "positive", spec->dilation))) return st;
    if (spec->type == CONV_LAYER_CONV2D) {
        if ((st = read_int(r, "groups", &spec->groups))) return st;
    } else {
        if ((st = read_int(r, "depth_multiplier", &spec->depth_multiplier))) return st;
    }
    if ((st = read_bool(r, "bias", &spec->bias))) return st;
    if ((st = read_padding_mode(r, &spec->padding_mode))) return st;
    return read_algorithm(r, &spec->algorithm);
}

static conv_status read_batchnorm(const layer_reader *r, conv_layer_spec *spec)
{
    conv_status st;
    if ((st = read_int(r, "num_features", &spec->num_features))) return st;
    const json_t *eps = json_object_get(r->obj, "eps");
    if (eps) {
        if (!json_is_number(eps))
            return conv_fail(r->err, CONV_INVALID_PARAMETER, "%s.eps: must be a number", r->path);
        spec->eps = json_number_value(eps);
    }
    /* momentum only matters for training; accepted so torch's arguments pass through */
    const json_t *momentum = json_object_get(r->obj, "momentum");
    if (momentum && !json_is_number(momentum) && !json_is_null(momentum))
        return conv_fail(r->err, CONV_INVALID_PARAMETER, "%s.momentum: must be a number or null", r->path);
    if ((st = read_bool(r, "affine", &spec->affine))) return st;
    bool track = true;
    if ((st = read_bool(r, "track_running_stats", &track))) return st;
    if (!track)
        return conv_fail(r->err, CONV_INVALID_PARAMETER,
                         "%s.track_running_stats: must be true (inference needs the running statistics)", r->path);
    return CONV_OK;
}

static conv_status read_pool(const layer_reader *r, conv_layer_spec *spec)
{
    conv_status st;
    if ((st = read_pair(r, "kernel_size", "positive", spec->kernel_size))) return st;
    if ((st = read_pool_stride(r, spec->stride))) return st;
    if ((st = read_pair(r, "padding", "non-negative", spec->padding))) return st;
    if ((st = read_bool(r, "ceil_mode", &spec->ceil_mode))) return st;
    if (spec->type == CONV_LAYER_MAXPOOL2D) {
        if ((st = read_pair(r, "dilation", "positive", spec->dilation))) return st;
        bool return_indices = false;
        if ((st = read_bool(r, "return_indices", &return_indices))) return st;
        if (return_indices)
            return conv_fail(r->err, CONV_INVALID_PARAMETER,
                             "%s.return_indices: must be false (convd returns only the pooled values)", r->path);
        return CONV_OK;
    }
    if ((st = read_bool(r, "count_include_pad", &spec->count_include_pad))) return st;
    const json_t *div = json_object_get(r->obj, "divisor_override");
    if (!div || json_is_null(div)) return CONV_OK;
    /* the spec's 0 means None, so a written 0 is refused here rather than read as None */
    if (!json_is_integer(div) || json_integer_value(div) <= 0)
        return conv_fail(r->err, CONV_INVALID_PARAMETER, "%s.divisor_override: must be null or a positive integer",
                         r->path);
    return read_int_value(r, "divisor_override", div, &spec->divisor_override);
}

/* Required arguments per type. */
static const char *const conv_required[] = {"in_channels", "out_channels", "kernel_size", NULL};
static const char *const batchnorm_required[] = {"num_features", NULL};
static const char *const pool_required[] = {"kernel_size", NULL};
static const char *const none_required[] = {NULL};

static const char *const *layer_required(conv_layer_type type)
{
    switch (type) {
    case CONV_LAYER_CONV2D:
    case CONV_LAYER_SEPARABLE_CONV2D: return conv_required;
    case CONV_LAYER_BATCHNORM2D: return batchnorm_required;
    case CONV_LAYER_MAXPOOL2D:
    case CONV_LAYER_AVGPOOL2D: return pool_required;
    default: return none_required;
    }
}

conv_status layer_spec_from_json(const json_t *obj, const char *path, conv_layer_spec *spec, conv_error *err)
{
    if (!json_is_object(obj)) return conv_fail(err, CONV_INVALID_PARAMETER, "%s: must be an object", path);
    const json_t *type_value = json_object_get(obj, "type");
    if (!type_value) return conv_fail(err, CONV_INVALID_PARAMETER, "%s.type: required", path);
    if (!json_is_string(type_value))
        return conv_fail(err, CONV_INVALID_PARAMETER, "%s.type: must be a string naming a layer type", path);
    const char *type_name = json_string_value(type_value);
    int type = conv_layer_type_from_name(type_name);
    if (type < 0) {
        const char *names[CONV_LAYER_TYPE_COUNT];
        for (int i = 0; i < CONV_LAYER_TYPE_COUNT; i++) names[i] = conv_layer_type_name((conv_layer_type)i);
        char list[256];
        join_names(names, CONV_LAYER_TYPE_COUNT, list, sizeof list);
        return conv_fail(err, CONV_INVALID_PARAMETER, "%s.type: unknown layer type \"%s\" (expected one of %s)", path,
                         type_name, list);
    }

    const char *const *keys = layer_keys((conv_layer_type)type);
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)obj, key, value) {
        if (key_listed(keys, key)) continue;
        if (strcmp(key, "device") == 0 || strcmp(key, "dtype") == 0)
            return conv_fail(err, CONV_INVALID_PARAMETER,
                             "%s: argument \"%s\" is not accepted (convd runs float32 on the CPU)", path, key);
        char list[256];
        size_t n = 0;
        while (keys[n + 1]) n++;
        join_names(keys + 1, n, list, sizeof list); /* without "type" */
        return conv_fail(err, CONV_INVALID_PARAMETER, "%s: unknown argument \"%s\" for %s (accepted: %s)", path, key,
                         type_name, n ? list : "none");
    }
    for (const char *const *req = layer_required((conv_layer_type)type); *req; req++)
        if (!json_object_get(obj, *req))
            return conv_fail(err, CONV_INVALID_PARAMETER, "%s.%s: required for %s", path, *req, type_name);

    conv_layer_spec s;
    conv_layer_spec_init(&s, (conv_layer_type)type);
    layer_reader r = {obj, path, err};
    conv_status st = CONV_OK;
    switch ((conv_layer_type)type) {
    case CONV_LAYER_CONV2D:
    case CONV_LAYER_SEPARABLE_CONV2D: st = read_conv(&r, &s); break;
    case CONV_LAYER_BATCHNORM2D: st = read_batchnorm(&r, &s); break;
    case CONV_LAYER_RELU:
    case CONV_LAYER_RELU6: {
        bool inplace = false; /* nothing to do in place: convd owns its buffers */
        st = read_bool(&r, "inplace", &inplace);
        break;
    }
    case CONV_LAYER_MAXPOOL2D:
    case CONV_LAYER_AVGPOOL2D: st = read_pool(&r, &s); break;
    case CONV_LAYER_TYPE_COUNT: break;
    }
    if (st) return st;

    conv_error rule;
    st = conv_layer_spec_validate(&s, &rule);
    if (st) return conv_fail(err, st, "%s: %s", path, rule.message);
    *spec = s;
    return CONV_OK;
}

/* ------------------------------------------------------------ documents */

static conv_status read_input_shape(const json_t *input, model_json *out, conv_error *err)
{
    if (!json_is_object(input))
        return conv_fail(err, CONV_INVALID_PARAMETER, "input: must be an object like {\"shape\": [N, C, H, W]}");
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)input, key, value) {
        if (strcmp(key, "shape") != 0)
            return conv_fail(err, CONV_INVALID_PARAMETER, "input: unknown key \"%s\" (expected \"shape\")", key);
    }
    const json_t *shape = json_object_get(input, "shape");
    if (!shape) return conv_fail(err, CONV_INVALID_PARAMETER, "input.shape: required");
    if (!json_is_array(shape) || json_array_size(shape) != 4)
        return conv_fail(err, CONV_INVALID_PARAMETER, "input.shape: must be a list of 4 positive integers [N, C, H, W]");
    for (size_t i = 0; i < 4; i++) {
        const json_t *d = json_array_get(shape, i);
        if (!json_is_integer(d) || json_integer_value(d) <= 0)
            return conv_fail(err, CONV_INVALID_PARAMETER, "input.shape[%zu]: must be a positive integer", i);
        if (json_integer_value(d) > MAX_JSON_INT)
            return conv_fail(err, CONV_LIMIT_EXCEEDED, "input.shape[%zu]: %lld is out of range (at most 2^31)", i,
                             (long long)json_integer_value(d));
        out->input_shape[i] = (int64_t)json_integer_value(d);
    }
    out->has_input_shape = true;
    return CONV_OK;
}

conv_status model_json_from_value(const json_t *root, model_json *out, conv_error *err)
{
    memset(out, 0, sizeof *out);
    if (!json_is_object(root))
        return conv_fail(err, CONV_INVALID_PARAMETER, "the model must be a JSON object with a \"layers\" list");
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)root, key, value) {
        if (strcmp(key, "name") && strcmp(key, "description") && strcmp(key, "input") && strcmp(key, "layers"))
            return conv_fail(err, CONV_INVALID_PARAMETER,
                             "unknown top-level key \"%s\" (expected name, description, input or layers)", key);
    }

    model_json m;
    memset(&m, 0, sizeof m);
    const json_t *name = json_object_get(root, "name");
    if (name) {
        if (!json_is_string(name)) return conv_fail(err, CONV_INVALID_PARAMETER, "name: must be a string");
        size_t len = json_string_length(name);
        if (len > MODEL_JSON_MAX_NAME)
            return conv_fail(err, CONV_INVALID_PARAMETER, "name: must be at most %d bytes, got %zu",
                             MODEL_JSON_MAX_NAME, len);
        memcpy(m.name, json_string_value(name), len);
        m.name[len] = '\0';
    }
    const json_t *description = json_object_get(root, "description");
    if (description && !json_is_string(description))
        return conv_fail(err, CONV_INVALID_PARAMETER, "description: must be a string");
    const json_t *input = json_object_get(root, "input");
    conv_status st;
    if (input && (st = read_input_shape(input, &m, err))) return st;

    const json_t *layers = json_object_get(root, "layers");
    if (!layers) return conv_fail(err, CONV_INVALID_PARAMETER, "layers: required");
    if (!json_is_array(layers)) return conv_fail(err, CONV_INVALID_PARAMETER, "layers: must be a list of layer objects");
    size_t n = json_array_size(layers);
    if (n == 0) return conv_fail(err, CONV_INVALID_PARAMETER, "layers: must not be empty");
    if (n > MODEL_JSON_MAX_LAYERS)
        return conv_fail(err, CONV_LIMIT_EXCEEDED, "layers: has %zu layers, more than the limit of %d", n,
                         MODEL_JSON_MAX_LAYERS);
    m.layers = calloc(n, sizeof *m.layers);
    if (!m.layers) return conv_fail(err, CONV_OUT_OF_MEMORY, "out of memory reading %zu layers", n);
    for (size_t i = 0; i < n; i++) {
        char path[32];
        snprintf(path, sizeof path, "layers[%zu]", i);
        if ((st = layer_spec_from_json(json_array_get(layers, i), path, &m.layers[i], err))) {
            free(m.layers);
            return st;
        }
    }
    m.n_layers = n;
    *out = m;
    return CONV_OK;
}

conv_status model_json_parse(const char *text, size_t len, model_json *out, conv_error *err)
{
    memset(out, 0, sizeof *out);
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return conv_fail(err, CONV_INVALID_PARAMETER, "invalid JSON at line %d, column %d (byte %d): %s", jerr.line,
                         jerr.column, jerr.position, jerr.text);
    conv_status st = model_json_from_value(root, out, err);
    json_decref(root);
    return st;
}

void model_json_free(model_json *m)
{
    if (!m) return;
    free(m->layers);
    memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------------ writing */

/* Builds an object whose failed insertions (out of memory) are remembered,
 * so writers stay a flat list of puts with one check at the end. */
typedef struct obj_builder {
    json_t *obj;
    bool ok;
} obj_builder;

static void put(obj_builder *b, const char *key, json_t *value)
{
    /* json_object_set_new takes value's reference even when it fails, and
     * fails on a NULL object or value: one check covers every allocation */
    if (json_object_set_new(b->obj, key, value) != 0) b->ok = false;
}

static json_t *pair_json(const int64_t v[2])
{
    if (v[0] == v[1]) return json_integer((json_int_t)v[0]);
    return json_pack("[II]", (json_int_t)v[0], (json_int_t)v[1]);
}

static json_t *conv_padding_json(const conv_layer_spec *spec)
{
    switch (spec->padding_kind) {
    case CONV_PADDING_SAME: return json_string("same");
    case CONV_PADDING_VALID: return json_string("valid");
    case CONV_PADDING_EXPLICIT: break;
    }
    return pair_json(spec->padding);
}

json_t *layer_spec_to_json(const conv_layer_spec *spec)
{
    obj_builder b = {json_object(), true};
    put(&b, "type", json_string(conv_layer_type_name(spec->type)));
    switch (spec->type) {
    case CONV_LAYER_CONV2D:
    case CONV_LAYER_SEPARABLE_CONV2D:
        put(&b, "in_channels", json_integer((json_int_t)spec->in_channels));
        put(&b, "out_channels", json_integer((json_int_t)spec->out_channels));
        put(&b, "kernel_size", pair_json(spec->kernel_size));
        put(&b, "stride", pair_json(spec->stride));
        put(&b, "padding", conv_padding_json(spec));
        put(&b, "dilation", pair_json(spec->dilation));
        if (spec->type == CONV_LAYER_CONV2D) put(&b, "groups", json_integer((json_int_t)spec->groups));
        else put(&b, "depth_multiplier", json_integer((json_int_t)spec->depth_multiplier));
        put(&b, "bias", json_boolean(spec->bias));
        put(&b, "padding_mode", json_string(conv_padding_mode_name(spec->padding_mode)));
        if (spec->algorithm != CONV_ALGO_AUTO) put(&b, "algorithm", json_string(conv_algorithm_name(spec->algorithm)));
        break;
    case CONV_LAYER_BATCHNORM2D:
        put(&b, "num_features", json_integer((json_int_t)spec->num_features));
        put(&b, "eps", json_real(spec->eps));
        put(&b, "affine", json_boolean(spec->affine));
        put(&b, "track_running_stats", json_true());
        break;
    case CONV_LAYER_RELU:
    case CONV_LAYER_RELU6: put(&b, "inplace", json_false()); break;
    case CONV_LAYER_MAXPOOL2D:
    case CONV_LAYER_AVGPOOL2D: {
        put(&b, "kernel_size", pair_json(spec->kernel_size));
        bool stride_none = spec->stride[0] == 0 && spec->stride[1] == 0;
        put(&b, "stride", stride_none ? json_null() : pair_json(spec->stride));
        put(&b, "padding", pair_json(spec->padding));
        if (spec->type == CONV_LAYER_MAXPOOL2D) put(&b, "dilation", pair_json(spec->dilation));
        put(&b, "ceil_mode", json_boolean(spec->ceil_mode));
        if (spec->type == CONV_LAYER_MAXPOOL2D) {
            put(&b, "return_indices", json_false());
        } else {
            put(&b, "count_include_pad", json_boolean(spec->count_include_pad));
            put(&b, "divisor_override",
                spec->divisor_override ? json_integer((json_int_t)spec->divisor_override) : json_null());
        }
        break;
    }
    case CONV_LAYER_TYPE_COUNT: b.ok = false; break;
    }
    if (!b.ok) {
        json_decref(b.obj);
        return NULL;
    }
    return b.obj;
}
