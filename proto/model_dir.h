/* model_dir.h — a model folder (model.json + weights.safetensors) loaded
 * into a conv_model. */
#ifndef CONVD_PROTO_MODEL_DIR_H
#define CONVD_PROTO_MODEL_DIR_H

#include <stddef.h>
#include <stdint.h>

#include "core/conv.h"
#include "proto/model_json.h"

#define MODEL_DIR_MAX_JSON_BYTES ((size_t)16 << 20)
#define MODEL_DIR_MAX_WEIGHTS_BYTES ((size_t)2 << 30)

typedef struct model_dir {
    model_json spec;   /* the parsed model.json; spec.name is never "" after model_dir_load */
    conv_model *model; /* loaded, weights packed */
} model_dir;

/* Reads <dir>/model.json and <dir>/weights.safetensors and creates the
 * model. Messages start with the file they concern ("model.json:
 * layers[1].stride: ...", "weights.safetensors: missing weight ..."). With
 * opts->structure_only the weights file is not read (it may be absent).
 * When model.json declares an input shape, the model must plan for it.
 * If model.json has no "name", the folder's name is used. opts may be NULL
 * (conv_model_options_init's defaults). On failure *out is left empty
 * (model_dir_free on it is harmless). */
conv_status model_dir_load(const char *dir, const conv_model_options *opts, model_dir *out, conv_error *err);

/* The same from in-memory file contents (the server's PUT /v1/models).
 * safetensors may be NULL with opts->structure_only. A missing name stays "". */
conv_status model_dir_load_buffers(const char *model_json, size_t json_len, const uint8_t *safetensors,
                                   size_t st_len, const conv_model_options *opts, model_dir *out,
                                   conv_error *err);

void model_dir_free(model_dir *m);

#endif
