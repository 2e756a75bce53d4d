/* v2_json.h — the Open Inference Protocol (KServe v2 / Triton HTTP) request
 * and reply bodies: JSON plus Triton's binary tensor extension framing.
 * Pure functions over byte buffers (no HTTP), so they can be fuzzed. */
#ifndef CONVD_PROTO_V2_JSON_H
#define CONVD_PROTO_V2_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/conv.h"

#define V2_MAX_NAME 64
#define V2_MAX_TENSORS 16

typedef enum v2_datatype {
    V2_INVALID = 0,
    V2_BOOL,
    V2_UINT8,
    V2_UINT16,
    V2_UINT32,
    V2_UINT64,
    V2_INT8,
    V2_INT16,
    V2_INT32,
    V2_INT64,
    V2_FP16,
    V2_BF16,
    V2_FP32,
    V2_FP64,
    V2_BYTES,
} v2_datatype;

v2_datatype v2_datatype_from_name(const char *name); /* V2_INVALID if unknown */
const char *v2_datatype_name(v2_datatype t);
size_t v2_datatype_size(v2_datatype t); /* bytes per element in binary form; 0 for BYTES */

/* Largest integer magnitude that float32 represents exactly (2^24): integer
 * inputs beyond it are refused rather than silently rounded. */
#define V2_FLOAT_EXACT_INT 16777216.0

/* One IEEE half / bfloat16 to float (both exact). */
float v2_half_to_float(uint16_t h);
float v2_bf16_to_float(uint16_t b);

/* Converts n little-endian elements of type t at src to float32. Integers
 * beyond +-2^24 and FP64 values beyond float's range are refused, naming
 * the element; BYTES is refused. */
conv_status v2_convert_binary(v2_datatype t, const uint8_t *src, size_t n, float *dst, const char *what,
                              conv_error *err);

/* Inference-Header-Content-Length: the JSON part's size. header may be NULL
 * (the whole body is JSON). Must be decimal digits in 0..body_len. */
conv_status v2_header_length(const char *header, size_t body_len, size_t *json_len, conv_error *err);

typedef struct v2_input {
    char name[V2_MAX_NAME + 1];
    v2_datatype datatype; /* as sent; the tensor is always float32 */
    conv_tensor tensor;   /* rank 1..4, owns its data */
    bool was_binary;
} v2_input;

typedef struct v2_output_request {
    char name[V2_MAX_NAME + 1];
    bool binary;
} v2_output_request;

typedef struct v2_request {
    json_t *doc;          /* the JSON part (json_fast_loadb: long "data" lists are number lists); owned */
    const char *id;       /* in doc; NULL when absent */
    size_t n_inputs;
    v2_input inputs[V2_MAX_TENSORS];
    bool outputs_named;   /* "outputs" was given */
    size_t n_outputs;
    v2_output_request outputs[V2_MAX_TENSORS];
    bool binary_data_output; /* request-level parameters.binary_data_output */
} v2_request;

/* Parses a v2 inference body: body[0..json_len) is the JSON request, the
 * rest the binary tensors of the inputs that carry
 * parameters.binary_data_size, in input order; missing or extra bytes are
 * errors. Inputs are converted to float32 (see v2_convert_binary; JSON
 * "data" may be flat or nested, row-major). max_elements bounds each
 * tensor. CONV_INVALID_PARAMETER for anything malformed (the server answers
 * 400), CONV_LIMIT_EXCEEDED over the limit, CONV_OUT_OF_MEMORY. On failure
 * *out is empty (v2_request_free is harmless). */
conv_status v2_request_parse(const uint8_t *body, size_t body_len, size_t json_len, size_t max_elements,
                             v2_request *out, conv_error *err);
void v2_request_free(v2_request *r);

/* One output tensor of a reply (float32). */
typedef struct v2_output {
    const char *name;
    int rank;
    const int64_t *dims;
    const float *data;
    bool binary; /* as little-endian bytes after the JSON, else as "data" */
} v2_output;

/* The reply body: {"model_name", "model_version", "id"?, "parameters"?,
 * "outputs": [...]} followed by the binary outputs in order. parameters
 * (may be NULL) is stolen. *json_len is the JSON part's size (the reply's
 * Inference-Header-Content-Length when it differs from *len). Non-finite
 * values in JSON data are written as null. */
conv_status v2_response_build(const char *model_name, const char *model_version, const char *id,
                              json_t *parameters, const v2_output *outputs, size_t n_outputs, uint8_t **body,
                              size_t *len, size_t *json_len, conv_error *err);

#endif
