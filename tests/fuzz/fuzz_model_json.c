/* fuzz_model_json.c — libFuzzer harness for proto/model_json.c: any bytes as
 * a model.json document; an accepted document's layers must write back and
 * read again to the same spec (the round trip the repository relies on). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/model_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    model_json m;
    conv_error err;
    if (model_json_parse((const char *)data, size, &m, &err) != CONV_OK) {
        model_json_free(&m); /* documented as safe on failure */
        return 0;
    }
    for (size_t i = 0; i < m.n_layers; i++) {
        json_t *obj = layer_spec_to_json(&m.layers[i]);
        if (!obj) continue; /* out of memory */
        conv_layer_spec back;
        if (layer_spec_from_json(obj, "layer", &back, &err) != CONV_OK) abort();
        json_t *again = layer_spec_to_json(&back);
        if (again && !json_equal(obj, again)) abort();
        json_decref(again);
        json_decref(obj);
    }
    model_json_free(&m);
    return 0;
}
