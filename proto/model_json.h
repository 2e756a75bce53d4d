/* model_json.h — model.json (a sequential model described with torch.nn
 * layer names and arguments) to and from conv_layer_specs. */
#ifndef CONVD_PROTO_MODEL_JSON_H
#define CONVD_PROTO_MODEL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/conv.h"

#define MODEL_JSON_MAX_LAYERS 1024
#define MODEL_JSON_MAX_NAME 127 /* bytes, without the terminating NUL */

typedef struct model_json {
    char name[MODEL_JSON_MAX_NAME + 1]; /* "" if absent */
    bool has_input_shape;
    int64_t input_shape[4]; /* NCHW, valid when has_input_shape */
    size_t n_layers;
    conv_layer_spec *layers; /* malloc'ed, n_layers entries */
} model_json;

/* The document:
 *
 *   {"name": "...",                        optional string, <= 127 bytes
 *    "description": "...",                 optional string, ignored
 *    "input": {"shape": [N, C, H, W]},     optional, positive integers
 *    "layers": [{"type": "Conv2d", "in_channels": 3, ...}, ...]}
 *
 * "layers" holds 1 to MODEL_JSON_MAX_LAYERS objects, each with a "type"
 * (Conv2d, SeparableConv2d, BatchNorm2d, ReLU, ReLU6, MaxPool2d, AvgPool2d)
 * and that torch.nn class's constructor arguments under their torch names;
 * omitted arguments take torch's defaults. Unknown keys anywhere are errors,
 * so a misspelt argument never silently becomes a default.
 *
 * Messages name the JSON path and the rule ("layers[2].kernel_size: must be
 * a positive integer or a list of 2 positive integers"). Statuses:
 * CONV_INVALID_PARAMETER for a malformed document or a broken torch rule,
 * CONV_LIMIT_EXCEEDED for too many layers or integers beyond 2^31,
 * CONV_UNSUPPORTED_ALGORITHM for a forced algorithm the layer type cannot
 * use, CONV_OUT_OF_MEMORY. On failure *out is left empty (safe to free). */
conv_status model_json_parse(const char *text, size_t len, model_json *out, conv_error *err);

/* The same for a document already decoded by jansson (the server's request bodies). */
conv_status model_json_from_value(const json_t *root, model_json *out, conv_error *err);

/* One layer object into *spec, checked with conv_layer_spec_validate. path
 * names the object in messages ("layers[2]", "layer"). */
conv_status layer_spec_from_json(const json_t *obj, const char *path, conv_layer_spec *spec, conv_error *err);

void model_json_free(model_json *m);

/* The layer object for spec with every torch argument written, torch-style:
 * an int where h == w and [h, w] otherwise, padding "same"/"valid" as
 * strings, a pool's stride None as null. "algorithm" is written only when
 * forced (not auto). layer_spec_from_json reads it back to an identical
 * spec. NULL when out of memory. */
json_t *layer_spec_to_json(const conv_layer_spec *spec);

#endif
