/* fuzz_v2_json.c — libFuzzer harness for proto/v2_json.c (Open Inference
 * Protocol JSON and Triton binary-tensor framing). The first two bytes give
 * the JSON part's length (mod the rest's size + 1, as the
 * Inference-Header-Content-Length header would), the rest is the body. An
 * accepted request's inputs are written back as a reply, binary and JSON. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/v2_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    size_t body_len = size - 2;
    size_t json_len = ((size_t)data[0] | (size_t)data[1] << 8) % (body_len + 1);
    if (data[0] == 0xff && data[1] == 0xff) json_len = body_len; /* no header: all JSON */
    uint8_t *body = malloc(body_len ? body_len : 1);
    if (!body) return 0;
    memcpy(body, data + 2, body_len);
    v2_request r;
    conv_error err;
    if (v2_request_parse(body, body_len, json_len, (size_t)1 << 20, &r, &err) == CONV_OK) {
        v2_output outs[V2_MAX_TENSORS];
        if (r.n_inputs > V2_MAX_TENSORS) abort();
        for (size_t i = 0; i < r.n_inputs; i++) {
            const conv_tensor *t = &r.inputs[i].tensor;
            if (t->rank < 1 || t->rank > 4) abort();
            outs[i] = (v2_output){.name = r.inputs[i].name, .rank = t->rank, .dims = t->dims, .data = t->data,
                                  .binary = i % 2 == 0};
        }
        uint8_t *reply;
        size_t len, jl;
        if (v2_response_build("m", "1", r.id, NULL, outs, r.n_inputs, &reply, &len, &jl, &err) == CONV_OK) {
            if (jl > len) abort();
            json_error_t jerr;
            json_t *doc = json_loadb((const char *)reply, jl, 0, &jerr);
            if (!doc) abort();
            json_decref(doc);
            free(reply);
        }
    }
    v2_request_free(&r);
    free(body);
    return 0;
}
