/* safetensors.h — the safetensors weight format (u64 little-endian header
 * length, a JSON header, then the raw tensor bytes) to and from
 * conv_named_tensors. */
#ifndef CONVD_PROTO_SAFETENSORS_H
#define CONVD_PROTO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/conv.h"

/* Largest JSON header accepted, as in the reference implementation. */
#define SAFETENSORS_MAX_HEADER_BYTES ((size_t)100 * 1000 * 1000)

typedef struct safetensors_file {
    size_t count;
    /* In header order. Names are owned. Float dtypes (F32, F64, F16, BF16)
     * are converted to float32 with is_float = true; integer and bool
     * tensors have is_float = false, rank and dims set, tensor.data NULL
     * (not decoded). dtype points to a static string such as "I64". */
    conv_named_tensor *tensors;
} safetensors_file;

/* Parses and validates a whole file held in buf: header size, JSON syntax
 * (duplicate keys refused), every entry's keys and types, known dtype, rank
 * <= 4, data_offsets inside the buffer and matching the shape, and no two
 * tensors' byte ranges overlapping. Messages start with "safetensors: " and
 * name the tensor and the rule. Statuses: CONV_INVALID_PARAMETER for a
 * malformed file, CONV_INVALID_SHAPE for a negative dim or rank above 4,
 * CONV_LIMIT_EXCEEDED for oversized headers or overflowing sizes. On
 * failure *out is left empty. Free a result with safetensors_free. */
conv_status safetensors_parse(const uint8_t *buf, size_t len, safetensors_file *out, conv_error *err);
void safetensors_free(safetensors_file *f);
/* NULL if there is no tensor of that name. */
const conv_named_tensor *safetensors_find(const safetensors_file *f, const char *name);

/* Writes float tensors as F32 the way the reference writer does: entries
 * sorted by name, compact JSON padded with spaces to a multiple of 8 bytes,
 * data in the same order. *out is malloc'ed; caller frees. */
conv_status safetensors_serialize(const conv_named_tensor *tensors, size_t n, uint8_t **out, size_t *out_len,
                                  conv_error *err);

conv_status safetensors_read_file(const char *path, safetensors_file *out, conv_error *err);
/* Atomic: a reader sees either the old file or the whole new one. */
conv_status safetensors_write_file(const char *path, const conv_named_tensor *tensors, size_t n,
                                   conv_error *err);

#endif
