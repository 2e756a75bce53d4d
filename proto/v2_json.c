/* v2_json.c — Open Inference Protocol bodies and the binary tensor
 * extension's framing (see v2_json.h). */
#include "proto/v2_json.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/json_fast.h"

static const struct {
    const char *name;
    v2_datatype type;
    size_t size;
} datatypes[] = {
    {"BOOL", V2_BOOL, 1},     {"UINT8", V2_UINT8, 1}, {"UINT16", V2_UINT16, 2}, {"UINT32", V2_UINT32, 4},
    {"UINT64", V2_UINT64, 8}, {"INT8", V2_INT8, 1},   {"INT16", V2_INT16, 2},   {"INT32", V2_INT32, 4},
    {"INT64", V2_INT64, 8},   {"FP16", V2_FP16, 2},   {"BF16", V2_BF16, 2},     {"FP32", V2_FP32, 4},
    {"FP64", V2_FP64, 8},     {"BYTES", V2_BYTES, 0},
};
#define N_DATATYPES (sizeof datatypes / sizeof datatypes[0])

v2_datatype v2_datatype_from_name(const char *name)
{
    for (size_t i = 0; name && i < N_DATATYPES; i++)
        if (!strcmp(datatypes[i].name, name)) return datatypes[i].type;
    return V2_INVALID;
}

const char *v2_datatype_name(v2_datatype t)
{
    for (size_t i = 0; i < N_DATATYPES; i++)
        if (datatypes[i].type == t) return datatypes[i].name;
    return "INVALID";
}

size_t v2_datatype_size(v2_datatype t)
{
    for (size_t i = 0; i < N_DATATYPES; i++)
        if (datatypes[i].type == t) return datatypes[i].size;
    return 0;
}

float v2_half_to_float(uint16_t h)
{
    int sign = h >> 15, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    float v;
    if (exp == 0) v = ldexpf((float)mant, -24); /* zero and subnormals */
    else if (exp == 31) v = mant ? NAN : INFINITY;
    else v = ldexpf((float)(mant | 0x400), exp - 25);
    return sign ? -v : v;
}

float v2_bf16_to_float(uint16_t b)
{
    uint32_t bits = (uint32_t)b << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static uint64_t load_le(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;) v = v << 8 | p[i];
    return v;
}

/* the integer range a datatype allows, for JSON values */
static void int_range(v2_datatype t, double *lo, double *hi)
{
    switch (t) {
    case V2_UINT8: *lo = 0, *hi = 255; return;
    case V2_UINT16: *lo = 0, *hi = 65535; return;
    case V2_UINT32: *lo = 0, *hi = 4294967295.0; return;
    case V2_UINT64: *lo = 0, *hi = 18446744073709551615.0; return;
    case V2_INT8: *lo = -128, *hi = 127; return;
    case V2_INT16: *lo = -32768, *hi = 32767; return;
    case V2_INT32: *lo = -2147483648.0, *hi = 2147483647.0; return;
    default: *lo = -9223372036854775808.0, *hi = 9223372036854775807.0; return;
    }
}

static bool is_int_type(v2_datatype t)
{
    return t >= V2_UINT8 && t <= V2_INT64;
}

static conv_status check_exact_int(double v, const char *what, size_t i, v2_datatype t, conv_error *err)
{
    if (fabs(v) > V2_FLOAT_EXACT_INT)
        return conv_fail(err, CONV_INVALID_PARAMETER,
                         "%s[%zu]: %s value %.17g is beyond 2^24, which float32 (the model's type) cannot hold exactly",
                         what, i, v2_datatype_name(t), v);
    return CONV_OK;
}

static conv_status check_float_range(double v, const char *what, size_t i, v2_datatype t, conv_error *err)
{
    if (isfinite(v) && fabs(v) > FLT_MAX)
        return conv_fail(err, CONV_INVALID_PARAMETER, "%s[%zu]: %s value %g is beyond float32's range", what, i,
                         v2_datatype_name(t), v);
    return CONV_OK;
}

conv_status v2_convert_binary(v2_datatype t, const uint8_t *src, size_t n, float *dst, const char *what,
                              conv_error *err)
{
    size_t es = v2_datatype_size(t);
    if (t == V2_INVALID || t == V2_BYTES)
        return conv_fail(err, CONV_INVALID_PARAMETER, "%s: datatype %s cannot be converted to FP32", what,
                         v2_datatype_name(t));
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = src + i * es;
        uint64_t u = load_le(p, es);
        double v;
        switch (t) {
        case V2_BOOL:
            if (u > 1) return conv_fail(err, CONV_INVALID_PARAMETER, "%s[%zu]: BOOL bytes must be 0 or 1", what, i);
            dst[i] = (float)u;
            continue;
        case V2_FP16: dst[i] = v2_half_to_float((uint16_t)u); continue;
        case V2_BF16: dst[i] = v2_bf16_to_float((uint16_t)u); continue;
        case V2_FP32: {
            uint32_t bits = (uint32_t)u;
            memcpy(&dst[i], &bits, sizeof bits);
            continue;
        }
        case V2_FP64: {
            memcpy(&v, &u, sizeof v);
            if (check_float_range(v, what, i, t, err)) return CONV_INVALID_PARAMETER;
            dst[i] = (float)v;
            continue;
        }
        case V2_UINT8:
        case V2_UINT16:
        case V2_UINT32:
        case V2_UINT64: v = (double)u; break;
        case V2_INT8: v = (int8_t)u; break;
        case V2_INT16: v = (int16_t)u; break;
        case V2_INT32: v = (int32_t)u; break;
        default: v = (double)(int64_t)u; break;
        }
        if (check_exact_int(v, what, i, t, err)) return CONV_INVALID_PARAMETER;
        dst[i] = (float)v;
    }
    return CONV_OK;
}

conv_status v2_header_length(const char *header, size_t body_len, size_t *json_len, conv_error *err)
{
    if (!header) {
        *json_len = body_len;
        return CONV_OK;
    }
    const char *p = header;
    while (*p == ' ' || *p == '\t') p++;
    size_t v = 0;
    bool digits = false;
    for (; *p >= '0' && *p <= '9'; p++) {
        digits = true;
        if (!conv_size_mul(v, 10, &v) || !conv_size_add(v, (size_t)(*p - '0'), &v)) {
            v = SIZE_MAX;
            while (p[1] >= '0' && p[1] <= '9') p++;
        }
    }
    while (*p == ' ' || *p == '\t') p++;
    if (!digits || *p)
        return conv_fail(err, CONV_INVALID_PARAMETER, "Inference-Header-Content-Length: must be a decimal byte count, got \"%s\"",
                         header);
    if (v > body_len)
        return conv_fail(err, CONV_INVALID_PARAMETER,
                         "Inference-Header-Content-Length: %s is larger than the body (%zu bytes)", header, body_len);
    *json_len = v;
    return CONV_OK;
}

void v2_request_free(v2_request *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n_inputs; i++) conv_tensor_free(&r->inputs[i].tensor);
    json_decref(r->doc);
    memset(r, 0, sizeof *r);
}

/* A name field: a string of 1..V2_MAX_NAME bytes. */
static conv_status get_name(const json_t *obj, const char *path, char *out, conv_error *err)
{
    const json_t *n = json_object_get(obj, "name");
    if (!json_is_string(n)) return conv_fail(err, CONV_INVALID_PARAMETER, "%s.name: missing or not a string", path);
    size_t len = json_string_length(n);
    if (len < 1 || len > V2_MAX_NAME)
        return conv_fail(err, CONV_INVALID_PARAMETER, "%s.name: must be 1 to %d bytes", path, V2_MAX_NAME);
    memcpy(out, json_string_value(n), len + 1);
    return CONV_OK;
}

/* parameters.<key> when present; NULL otherwise */
static const json_t *param(const json_t *obj, const char *key)
{
    const json_t *p = json_object_get(obj, "parameters");
    return json_is_object(p) ? json_object_get(p, key) : NULL;
}

typedef struct flatten_ctx {
    v2_datatype type;
    const char *what;
    float *dst;
    size_t n, want;
    int depth;
} flatten_ctx;

/* One element of "data", from a json_t or a json_fast number list */
typedef struct scalar {
    bool is_boolean, is_true, is_number, is_integer;
    double value;
} scalar;

static conv_status flatten_scalar(flatten_ctx *c, const scalar *v, conv_error *err)
{
    if (c->n == c->want)
        return conv_fail(err, CONV_INVALID_PARAMETER, "%s.data: more than the %zu values its shape holds", c->what,
                         c->want);
    size_t i = c->n;
    if (c->type == V2_BOOL) {
        if (!v->is_boolean)
            return conv_fail(err, CONV_INVALID_PARAMETER, "%s.data[%zu]: BOOL values must be true or false", c->what, i);
        c->dst[c->n++] = v->is_true ? 1.0f : 0.0f;
        return CONV_OK;
    }
    if (!v->is_number)
        return conv_fail(err, CONV_INVALID_PARAMETER, "%s.data[%zu]: must be a number for datatype %s", c->what, i,
                         v2_datatype_name(c->type));
    double d = v->value;
    if (is_int_type(c->type)) {
        double lo, hi;
        int_range(c->type, &lo, &hi);
        if (!v->is_integer || d < lo || d > hi)
            return conv_fail(err, CONV_INVALID_PARAMETER, "%s.data[%zu]: must be an integer in %s's range", c->what, i,
                             v2_datatype_name(c->type));
        if (check_exact_int(d, c->what, i, c->type, err)) return CONV_INVALID_PARAMETER;
    } else if (check_float_range(d, c->what, i, c->type, err)) {
        return CONV_INVALID_PARAMETER;
    }
    c->dst[c->n++] = (float)d;
    return CONV_OK;
}

static conv_status flatten(flatten_ctx *c, const json_t *v, conv_error *err)
{
    json_fast_numbers list;
    bool is_list = json_fast_numbers_view(v, &list);
    if (json_is_array(v) || is_list) {
        if (++c->depth > 8)
            return conv_fail(err, CONV_INVALID_PARAMETER, "%s.data: nested deeper than 8 lists", c->what);
        if (is_list) {
            for (size_t i = 0; i < list.count; i++) {
                json_fast_kind kind = json_fast_numbers_kind(&list, i);
                /* the non-finite strings of a number list are strings, not numbers, here */
                scalar e = {.is_number = kind == JSON_FAST_INTEGER || kind == JSON_FAST_REAL,
                            .is_integer = kind == JSON_FAST_INTEGER,
                            .value = json_fast_numbers_value(&list, i)};
                conv_status s = flatten_scalar(c, &e, err);
                if (s) return s;
            }
        } else {
            size_t i;
            const json_t *e;
            json_array_foreach(v, i, e) {
                conv_status s = flatten(c, e, err);
                if (s) return s;
            }
        }
        c->depth--;
        return CONV_OK;
    }
    scalar e = {.is_boolean = json_is_boolean(v),
                .is_true = json_is_true(v),
                .is_number = json_is_number(v),
                .is_integer = json_is_integer(v),
                .value = json_is_number(v) ? json_number_value(v) : 0};
    return flatten_scalar(c, &e, err);
}

static conv_status parse_shape(const json_t *in, const char *path, size_t max_elements, int *rank, int64_t *dims,
                               size_t *numel, conv_error *err)
{
    const json_t *shape = json_object_get(in, "shape");
    if (!json_is_array(shape) || json_array_size(shape) < 1 || json_array_size(shape) > CONV_MAX_RANK)
        return conv_fail(err, CONV_INVALID_PARAMETER, "%s.shape: must be a list of 1 to %d non-negative integers",
                         path, CONV_MAX_RANK);
    *rank = (int)json_array_size(shape);
    for (int d = 0; d < *rank; d++) {
        const json_t *v = json_array_get(shape, (size_t)d);
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return conv_fail(err, CONV_INVALID_PARAMETER, "%s.shape[%d]: must be a non-negative integer", path, d);
        dims[d] = json_integer_value(v);
    }
    if (!conv_dims_product(dims, *rank, numel) || *numel > max_elements)
        return conv_fail(err, CONV_LIMIT_EXCEEDED, "%s.shape: more than the limit of %zu elements", path,
                         max_elements);
    return CONV_OK;
}

static conv_status parse_input(const json_t *in, size_t index, const uint8_t **bin, size_t *bin_left,
                               size_t max_elements, v2_input *out, conv_error *err)
{
    char path[48];
    snprintf(path, sizeof path, "inputs[%zu]", index);
    if (!json_is_object(in)) return conv_fail(err, CONV_INVALID_PARAMETER, "%s: must be an object", path);
    conv_status s = get_name(in, path, out->name, err);
    if (s) return s;
    const json_t *dt = json_object_get(in, "datatype");
    if (!json_is_string(dt))
        return conv_fail(err, CONV_INVALID_PARAMETER, "%s.datatype: missing or not a string", path);
    out->datatype = v2_datatype_from_name(json_string_value(dt));
    if (out->datatype == V2_INVALID)
        return conv_fail(err, CONV_INVALID_PARAMETER, "%s.datatype: unknown datatype \"%s\"", path,
                         json_string_value(dt));
    if (out->datatype == V2_BYTES)
        return conv_fail(err, CONV_INVALID_PARAMETER,
                         "%s.datatype: BYTES cannot be converted to FP32 (send FP32, FP64, FP16, BF16, INT* or UINT*)",
                         path);
    int rank = 0;
    int64_t dims[CONV_MAX_RANK];
    size_t numel;
    if ((s = parse_shape(in, path, max_elements, &rank, dims, &numel, err))) return s;
    if ((s = conv_tensor_alloc(&out->tensor, rank, dims, err))) return s;
    const json_t *size_v = param(in, "binary_data_size");
    const json_t *data = json_object_get(in, "data");
    if (size_v) {
        if (data) return conv_fail(err, CONV_INVALID_PARAMETER, "%s: has both data and binary_data_size", path);
        if (!json_is_integer(size_v) || json_integer_value(size_v) < 0)
            return conv_fail(err, CONV_INVALID_PARAMETER, "%s.parameters.binary_data_size: must be a non-negative integer",
                             path);
        size_t want, es = v2_datatype_size(out->datatype);
        if (!conv_size_mul(numel, es, &want) || (uint64_t)json_integer_value(size_v) != want)
            return conv_fail(err, CONV_INVALID_PARAMETER,
                             "%s.parameters.binary_data_size: %lld bytes, but shape and %s need %zu", path,
                             (long long)json_integer_value(size_v), v2_datatype_name(out->datatype), numel * es);
        if (want > *bin_left)
            return conv_fail(err, CONV_INVALID_PARAMETER,
                             "%s: needs %zu bytes of binary data after the JSON header, only %zu are left", path, want,
                             *bin_left);
        if ((s = v2_convert_binary(out->datatype, *bin, numel, out->tensor.data, path, err))) return s;
        *bin += want;
        *bin_left -= want;
        out->was_binary = true;
        return CONV_OK;
    }
    if (!data) return conv_fail(err, CONV_INVALID_PARAMETER, "%s: needs data or parameters.binary_data_size", path);
    flatten_ctx c = {.type = out->datatype, .what = path, .dst = out->tensor.data, .want = numel};
    if ((s = flatten(&c, data, err))) return s;
    if (c.n != numel)
        return conv_fail(err, CONV_INVALID_PARAMETER, "%s.data: %zu values, but shape holds %zu", path, c.n, numel);
    return CONV_OK;
}

static conv_status parse_outputs(const json_t *outs, v2_request *r, conv_error *err)
{
    if (!json_is_array(outs)) return conv_fail(err, CONV_INVALID_PARAMETER, "outputs: must be a list");
    if (json_array_size(outs) > V2_MAX_TENSORS)
        return conv_fail(err, CONV_INVALID_PARAMETER, "outputs: more than %d entries", V2_MAX_TENSORS);
    r->outputs_named = true;
    size_t i;
    const json_t *o;
    json_array_foreach(outs, i, o) {
        char path[48];
        snprintf(path, sizeof path, "outputs[%zu]", i);
        if (!json_is_object(o)) return conv_fail(err, CONV_INVALID_PARAMETER, "%s: must be an object", path);
        conv_status s = get_name(o, path, r->outputs[i].name, err);
        if (s) return s;
        const json_t *b = param(o, "binary_data");
        if (b && !json_is_boolean(b))
            return conv_fail(err, CONV_INVALID_PARAMETER, "%s.parameters.binary_data: must be true or false", path);
        r->outputs[i].binary = b ? json_is_true(b) : r->binary_data_output;
        r->n_outputs++;
    }
    return CONV_OK;
}

conv_status v2_request_parse(const uint8_t *body, size_t body_len, size_t json_len, size_t max_elements,
                             v2_request *out, conv_error *err)
{
    memset(out, 0, sizeof *out);
    if (json_len > body_len)
        return conv_fail(err, CONV_INVALID_PARAMETER, "Inference-Header-Content-Length: %zu is larger than the body (%zu bytes)",
                         json_len, body_len);
    json_error_t jerr;
    /* json_fast keeps long "data" lists out of the DOM, several times faster than json_loadb */
    out->doc = json_fast_loadb((const char *)body, json_len, JSON_REJECT_DUPLICATES, &jerr);
    conv_status s = CONV_OK;
    if (!out->doc) {
        s = conv_fail(err, CONV_INVALID_PARAMETER, "invalid JSON at line %d, column %d: %s", jerr.line, jerr.column,
                      jerr.text);
        goto fail;
    }
    if (!json_is_object(out->doc)) {
        s = conv_fail(err, CONV_INVALID_PARAMETER, "the request must be a JSON object");
        goto fail;
    }
    const json_t *id = json_object_get(out->doc, "id");
    if (id && !json_is_string(id)) {
        s = conv_fail(err, CONV_INVALID_PARAMETER, "id: must be a string");
        goto fail;
    }
    out->id = id ? json_string_value(id) : NULL;
    const json_t *params = json_object_get(out->doc, "parameters");
    if (params && !json_is_object(params)) {
        s = conv_fail(err, CONV_INVALID_PARAMETER, "parameters: must be an object");
        goto fail;
    }
    const json_t *bdo = param(out->doc, "binary_data_output");
    if (bdo && !json_is_boolean(bdo)) {
        s = conv_fail(err, CONV_INVALID_PARAMETER, "parameters.binary_data_output: must be true or false");
        goto fail;
    }
    out->binary_data_output = bdo && json_is_true(bdo);
    const json_t *inputs = json_object_get(out->doc, "inputs");
    if (!json_is_array(inputs) || json_array_size(inputs) == 0) {
        s = conv_fail(err, CONV_INVALID_PARAMETER, "inputs: missing or not a non-empty list");
        goto fail;
    }
    if (json_array_size(inputs) > V2_MAX_TENSORS) {
        s = conv_fail(err, CONV_INVALID_PARAMETER, "inputs: more than %d entries", V2_MAX_TENSORS);
        goto fail;
    }
    const uint8_t *bin = body + json_len;
    size_t bin_left = body_len - json_len;
    size_t i;
    const json_t *in;
    json_array_foreach(inputs, i, in) {
        s = parse_input(in, i, &bin, &bin_left, max_elements, &out->inputs[i], err);
        out->n_inputs = i + 1; /* so a failure frees this one too */
        if (s) goto fail;
        for (size_t k = 0; k < i; k++)
            if (!strcmp(out->inputs[k].name, out->inputs[i].name)) {
                s = conv_fail(err, CONV_INVALID_PARAMETER, "inputs[%zu].name: \"%s\" is given twice", i,
                              out->inputs[i].name);
                goto fail;
            }
    }
    if (bin_left) {
        s = conv_fail(err, CONV_INVALID_PARAMETER,
                      "%zu bytes after the JSON header that no input's binary_data_size accounts for", bin_left);
        goto fail;
    }
    const json_t *outs = json_object_get(out->doc, "outputs");
    if (outs && (s = parse_outputs(outs, out, err))) goto fail;
    return CONV_OK;
fail:
    v2_request_free(out);
    return s;
}

static json_t *dims_json(const int64_t *dims, int rank)
{
    json_t *a = json_array();
    for (int i = 0; a && i < rank; i++)
        if (json_array_append_new(a, json_integer(dims[i]))) {
            json_decref(a);
            return NULL;
        }
    return a;
}

static json_t *data_json(const float *data, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) {
        json_t *v = isfinite(data[i]) ? json_real(data[i]) : json_null();
        if (json_array_append_new(a, v)) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

conv_status v2_response_build(const char *model_name, const char *model_version, const char *id,
                              json_t *parameters, const v2_output *outputs, size_t n_outputs, uint8_t **body,
                              size_t *len, size_t *json_len, conv_error *err)
{
    *body = NULL;
    json_t *doc = json_pack("{s:s, s:s}", "model_name", model_name, "model_version", model_version);
    json_t *outs = json_array();
    size_t binary_bytes = 0;
    char *text = NULL;
    if (!doc || !outs) goto oom;
    if (id && json_object_set_new(doc, "id", json_string(id))) goto oom;
    if (parameters) {
        if (json_object_set_new(doc, "parameters", parameters)) {
            parameters = NULL;
            goto oom;
        }
        parameters = NULL;
    }
    for (size_t i = 0; i < n_outputs; i++) {
        const v2_output *o = &outputs[i];
        size_t numel, bytes;
        if (!conv_dims_product(o->dims, o->rank, &numel) || !conv_size_mul(numel, sizeof(float), &bytes) ||
            !conv_size_add(binary_bytes, o->binary ? bytes : 0, &binary_bytes)) {
            json_decref(doc);
            json_decref(outs);
            return conv_fail(err, CONV_LIMIT_EXCEEDED, "output %s: too large", o->name);
        }
        json_t *e = json_pack("{s:s, s:s, s:o}", "name", o->name, "datatype", "FP32", "shape", dims_json(o->dims, o->rank));
        if (!e) goto oom;
        json_t *extra = o->binary ? json_pack("{s:I}", "binary_data_size", (json_int_t)bytes) : data_json(o->data, numel);
        if (!extra || json_object_set_new(e, o->binary ? "parameters" : "data", extra) || json_array_append_new(outs, e)) {
            json_decref(e);
            goto oom;
        }
    }
    if (json_object_set_new(doc, "outputs", outs)) {
        outs = NULL;
        goto oom;
    }
    outs = NULL;
    text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    json_decref(doc);
    doc = NULL;
    if (!text) goto oom;
    size_t tlen = strlen(text), total;
    if (!conv_size_add(tlen, binary_bytes, &total)) goto oom;
    uint8_t *b = realloc(text, total + 1);
    if (!b) goto oom;
    text = NULL;
    size_t at = tlen;
    for (size_t i = 0; i < n_outputs; i++) {
        if (!outputs[i].binary) continue;
        size_t numel;
        conv_dims_product(outputs[i].dims, outputs[i].rank, &numel);
        memcpy(b + at, outputs[i].data, numel * sizeof(float)); /* little-endian hosts only (x86-64, arm64) */
        at += numel * sizeof(float);
    }
    b[total] = 0;
    *body = b;
    *len = total;
    *json_len = tlen;
    return CONV_OK;
oom:
    json_decref(parameters);
    json_decref(doc);
    json_decref(outs);
    free(text);
    return conv_fail(err, CONV_OUT_OF_MEMORY, "out of memory writing the reply");
}
