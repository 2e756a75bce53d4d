/* json_tensor.h — a float32 tensor as a JSON value: a list of numbers, base64
 * of little-endian float32 bytes, or a seeded pseudo-random fill. */
#ifndef CONVD_PROTO_JSON_TENSOR_H
#define CONVD_PROTO_JSON_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/conv.h"

/* Accepted forms (exactly one of "data", "b64", "init"; no other keys):
 *
 *   {"shape": [1, 3, 4, 4], "data": [flat row-major numbers]}
 *       numbers may be integers or reals (rounded to the nearest float32;
 *       a real beyond float32's range is refused). JSON has no NaN or
 *       infinity, so the strings "NaN", "Infinity" and "-Infinity" stand for
 *       them, in input and in output. Note: an integer "-0" reads as +0; the
 *       writers emit negative zero as "-0.0".
 *   {"shape": [...], "b64": "<base64 of little-endian float32 bytes>"}
 *       standard alphabet, padded or not, no whitespace; carries every bit
 *       pattern (NaN payloads, infinities, -0.0, subnormals) unchanged.
 *   {"init": "random", "seed": S, "shape": [...]}
 *       values from random_init.h (splitmix64, uniform in [-1, 1)); S is a
 *       non-negative integer, 0 when omitted.
 *
 * "shape" is a list of 1 to 4 positive integers. It may be omitted (in every
 * form) when the caller passes the shape it expects; when both are present
 * they must be equal. */

typedef struct json_tensor_limits {
    size_t max_elements; /* refused (CONV_LIMIT_EXCEEDED) above this, before any allocation */
} json_tensor_limits;

typedef enum json_tensor_encoding {
    JSON_TENSOR_LIST,
    JSON_TENSOR_B64,
    JSON_TENSOR_RANDOM, /* input only */
} json_tensor_encoding;

/* Parses value into a newly allocated tensor (free with conv_tensor_free).
 * value may come from json_loadb or json_fast_loadb (proto/json_fast.h),
 * whose "data" number lists read the same, value for value and message for
 * message.
 * path names the value in messages ("input", "weights[\"conv1.weight\"]"),
 * e.g. "input.shape[2]: must be a positive integer". expected_shape and
 * expected_rank are NULL/0 when the caller does not know the shape. limits
 * may be NULL (no limit beyond size_t overflow). encoding (may be NULL)
 * receives the form that was used.
 * Statuses: CONV_INVALID_PARAMETER for a malformed value (wrong type,
 * unknown key, bad base64, non-number entry), CONV_INVALID_SHAPE when the
 * shape disagrees with expected_shape or with the amount of data,
 * CONV_LIMIT_EXCEEDED past max_elements or size_t, CONV_OUT_OF_MEMORY. On
 * failure *out is left empty (rank 0, data NULL). */
conv_status json_tensor_parse(const json_t *value, const char *path, const int64_t *expected_shape,
                              int expected_rank, const json_tensor_limits *limits, conv_tensor *out,
                              json_tensor_encoding *encoding, conv_error *err);

/* {"shape": [...], "data": [...]} (JSON_TENSOR_LIST; reals, non-finite
 * values as the strings above) or {"shape": [...], "b64": "..."}
 * (JSON_TENSOR_B64). NULL when out of memory or for JSON_TENSOR_RANDOM.
 * For large tensors prefer the writers below: they skip one json_t per number. */
json_t *json_tensor_to_json(const conv_tensor *t, json_tensor_encoding encoding);

/* Writes the text {"shape":[...],"data":[...]} directly, each number as
 * json_tensor_format_float writes it, so every float32 reads back exactly.
 * *out is malloc'ed and NUL-terminated (the NUL not counted in *len); the
 * caller frees it.
 * Statuses: CONV_LIMIT_EXCEEDED if the text size overflows, CONV_OUT_OF_MEMORY. */
conv_status json_tensor_write_list(const conv_tensor *t, char **out, size_t *len);

/* Same for {"shape":[...],"b64":"..."}. */
conv_status json_tensor_write_b64(const conv_tensor *t, char **out, size_t *len);

/* Room for json_tensor_format_float's output (at most 15 characters and a NUL). */
#define JSON_TENSOR_FLOAT_MAX 24

/* One number as json_tensor_write_list writes it: the fewest significant
 * digits that read back as value (of those, the closest to value), in
 * plain or exponent notation, whichever is shorter ("0.1", "1e3", "1e-7",
 * "3.4028235e38"); "-0.0" for negative zero; "\"NaN\"", "\"Infinity\"" and
 * "\"-Infinity\"" with their quotes. At most 15 characters plus the NUL.
 * Checked over all 2^32 floats to read back exactly through strtof and
 * through strtod + a float conversion (one float needs a digit more than
 * the shortest for the latter; it gets it).
 * Returns the length written to out. */
size_t json_tensor_format_float(float value, char out[JSON_TENSOR_FLOAT_MAX]);

#endif
