/* model_dir.c — a model folder (model.json + weights.safetensors) into a
 * conv_model, with messages that say which file is at fault. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/fileio.h"
#include "proto/model_dir.h"
#include "proto/safetensors.h"

/* Which file a failure of conv_model_create concerns: the weights for
 * weight errors, model.json for everything about the layers. */
static const char *file_for_status(conv_status st)
{
    switch (st) {
    case CONV_INVALID_WEIGHTS: return "weights.safetensors: ";
    case CONV_OUT_OF_MEMORY: return "";
    default: return "model.json: ";
    }
}

conv_status model_dir_load_buffers(const char *model_json_text, size_t json_len, const uint8_t *safetensors,
                                   size_t st_len, const conv_model_options *opts, model_dir *out, conv_error *err)
{
    memset(out, 0, sizeof *out);
    conv_model_options defaults;
    if (!opts) {
        conv_model_options_init(&defaults);
        opts = &defaults;
    }
    conv_error e;
    model_json spec;
    conv_status st = model_json_parse(model_json_text, json_len, &spec, &e);
    if (st) return conv_fail(err, st, "model.json: %s", e.message);

    safetensors_file weights = {0, NULL};
    if (!opts->structure_only) {
        if (!safetensors) {
            model_json_free(&spec);
            return conv_fail(err, CONV_INVALID_WEIGHTS, "weights.safetensors: required to run the model");
        }
        st = safetensors_parse(safetensors, st_len, &weights, &e);
        if (st) {
            model_json_free(&spec);
            /* the codec names its format; the file name says the same more precisely */
            const char *msg = e.message;
            if (strncmp(msg, "safetensors: ", 13) == 0) msg += 13;
            return conv_fail(err, st, "weights.safetensors: %s", msg);
        }
    }

    conv_model *model = NULL;
    st = conv_model_create(spec.layers, spec.n_layers, weights.tensors, weights.count, opts, &model, &e);
    safetensors_free(&weights); /* the model keeps its own packed copies */
    if (st) {
        model_json_free(&spec);
        return conv_fail(err, st, "%s%s", file_for_status(st), e.message);
    }

    /* A declared input shape the model cannot take is a mistake in the
     * file; better found at load than at the first request. */
    if (spec.has_input_shape) {
        conv_plan *plan = NULL;
        st = conv_plan_create(model, spec.input_shape, &plan, &e);
        conv_plan_destroy(plan);
        if (st) {
            char shape[96];
            conv_shape_format(spec.input_shape, 4, shape, sizeof shape);
            conv_model_destroy(model);
            model_json_free(&spec);
            if (st == CONV_OUT_OF_MEMORY) return conv_fail(err, st, "%s", e.message);
            return conv_fail(err, st, "model.json: input.shape %s: %s", shape, e.message);
        }
    }
    out->spec = spec;
    out->model = model;
    return CONV_OK;
}

/* The last component of dir ("models/mnv1/" -> "mnv1"), resolving "." and
 * ".." through the file system; "" if there is none. */
static void folder_name(const char *dir, char *out, size_t size)
{
    char resolved[PATH_MAX];
    size_t end = strlen(dir);
    while (end > 1 && dir[end - 1] == '/') end--;
    size_t start = end;
    while (start > 0 && dir[start - 1] != '/') start--;
    const char *base = dir + start;
    size_t len = end - start;
    if ((len == 1 && base[0] == '.') || (len == 2 && base[0] == '.' && base[1] == '.') || len == 0 ||
        (len == 1 && base[0] == '/')) {
        len = 0;
        if (realpath(dir, resolved)) {
            char *slash = strrchr(resolved, '/');
            base = slash ? slash + 1 : resolved;
            len = strlen(base);
        }
    }
    if (len >= size) {
        len = size - 1;
        /* do not cut a UTF-8 sequence in half */
        while (len > 0 && ((unsigned char)base[len] & 0xC0) == 0x80) len--;
    }
    memcpy(out, base, len);
    out[len] = '\0';
}

static conv_status join_path(const char *dir, const char *file, char *out, size_t size, conv_error *err)
{
    int n = snprintf(out, size, "%s/%s", dir, file);
    if (n < 0 || (size_t)n >= size)
        return conv_fail(err, CONV_LIMIT_EXCEEDED, "%s: the folder path is too long (%zu bytes)", file, strlen(dir));
    return CONV_OK;
}

conv_status model_dir_load(const char *dir, const conv_model_options *opts, model_dir *out, conv_error *err)
{
    memset(out, 0, sizeof *out);
    conv_model_options defaults;
    if (!opts) {
        conv_model_options_init(&defaults);
        opts = &defaults;
    }
    char path[PATH_MAX];
    conv_error e;
    conv_status st = join_path(dir, "model.json", path, sizeof path, err);
    if (st) return st;
    uint8_t *json_text = NULL, *weights = NULL;
    size_t json_len = 0, weights_len = 0;
    if ((st = fileio_read_all(path, MODEL_DIR_MAX_JSON_BYTES, &json_text, &json_len, &e)))
        return conv_fail(err, st, "model.json: %s", e.message);
    if (!opts->structure_only) {
        if ((st = join_path(dir, "weights.safetensors", path, sizeof path, err))) {
            free(json_text);
            return st;
        }
        if ((st = fileio_read_all(path, MODEL_DIR_MAX_WEIGHTS_BYTES, &weights, &weights_len, &e))) {
            free(json_text);
            return conv_fail(err, st, "weights.safetensors: %s", e.message);
        }
    }
    st = model_dir_load_buffers((const char *)json_text, json_len, weights, weights_len, opts, out, err);
    free(json_text);
    free(weights);
    if (st) return st;
    if (out->spec.name[0] == '\0') folder_name(dir, out->spec.name, sizeof out->spec.name);
    return CONV_OK;
}

void model_dir_free(model_dir *m)
{
    if (!m) return;
    conv_model_destroy(m->model);
    model_json_free(&m->spec);
    m->model = NULL;
}
