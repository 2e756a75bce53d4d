/* npy.h — NumPy .npy files (format versions 1.0, 2.0 and 3.0) to and from
 * float32 conv_tensors. */
#ifndef CONVD_PROTO_NPY_H
#define CONVD_PROTO_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "core/conv.h"

/* Parses a whole .npy file held in buf into a newly allocated tensor (free
 * it with conv_tensor_free). Accepts C-order arrays of rank 0..4 with dtype
 * '<f4', '<f8' or '<f2'; float64 is rounded to the nearest float32 (values
 * beyond float32's range become +-inf), float16 is widened exactly. Every
 * other dtype, Fortran order, a malformed header or a data length that does
 * not match the shape is refused with a message starting "npy: ".
 * Statuses: CONV_INVALID_PARAMETER for malformed or unsupported files,
 * CONV_INVALID_SHAPE for a negative dim or a rank above 4,
 * CONV_LIMIT_EXCEEDED for a shape whose size overflows. On failure *out is
 * left empty (rank 0, data NULL). */
conv_status npy_parse(const uint8_t *buf, size_t len, conv_tensor *out, conv_error *err);

/* Same, refusing (CONV_LIMIT_EXCEEDED) arrays of more than max_elements
 * elements before anything is allocated. */
conv_status npy_parse_limited(const uint8_t *buf, size_t len, size_t max_elements, conv_tensor *out,
                              conv_error *err);

/* Writes t as a version 1.0, '<f4', C-order file laid out as numpy does
 * (data starting at a multiple of 64 bytes). *out is malloc'ed; caller frees. */
conv_status npy_serialize(const conv_tensor *t, uint8_t **out, size_t *out_len, conv_error *err);

conv_status npy_read_file(const char *path, conv_tensor *out, conv_error *err);
/* Atomic: a reader sees either the old file or the whole new one. */
conv_status npy_write_file(const char *path, const conv_tensor *t, conv_error *err);

/* IEEE binary16 bits to float32, exact for every value (subnormals, +-inf,
 * NaN payloads). Shared with the safetensors codec. */
float npy_half_to_float(uint16_t bits);

#endif
