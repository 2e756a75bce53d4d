/* tensor.c — aligned float32 tensor storage with overflow-checked sizes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/conv.h"

void *conv_aligned_alloc(size_t bytes)
{
    void *p = NULL;
    /* round up so the allocation is a whole number of alignment units */
    size_t rounded;
    if (!conv_size_add(bytes, CONV_ALIGNMENT - 1, &rounded)) return NULL;
    rounded &= ~(size_t)(CONV_ALIGNMENT - 1);
    if (rounded == 0) rounded = CONV_ALIGNMENT;
    if (posix_memalign(&p, CONV_ALIGNMENT, rounded) != 0) return NULL;
    return p;
}

void conv_aligned_free(void *p) { free(p); }

conv_status conv_tensor_alloc(conv_tensor *t, int rank, const int64_t *dims, conv_error *err)
{
    memset(t, 0, sizeof *t);
    if (rank < 0 || rank > CONV_MAX_RANK)
        return conv_fail(err, CONV_INVALID_SHAPE, "tensor rank %d is outside 0..%d", rank, CONV_MAX_RANK);
    size_t numel, bytes;
    if (!conv_dims_product(dims, rank, &numel) || !conv_size_mul(numel, sizeof(float), &bytes))
        return conv_fail(err, CONV_LIMIT_EXCEEDED, "tensor size overflows");
    float *data = conv_aligned_alloc(bytes);
    if (!data) return conv_fail(err, CONV_OUT_OF_MEMORY, "out of memory allocating %zu bytes", bytes);
    memset(data, 0, bytes);
    t->rank = rank;
    for (int i = 0; i < rank; i++) t->dims[i] = dims[i];
    t->data = data;
    t->owns_data = true;
    return CONV_OK;
}

void conv_tensor_wrap(conv_tensor *t, int rank, const int64_t *dims, float *data)
{
    memset(t, 0, sizeof *t);
    t->rank = rank;
    for (int i = 0; i < rank && i < CONV_MAX_RANK; i++) t->dims[i] = dims[i];
    t->data = data;
    t->owns_data = false;
}

void conv_tensor_free(conv_tensor *t)
{
    if (!t) return;
    if (t->owns_data) conv_aligned_free(t->data);
    t->data = NULL;
    t->owns_data = false;
}

size_t conv_tensor_numel(const conv_tensor *t)
{
    size_t n = 1;
    /* shapes are validated at creation, so this cannot overflow */
    for (int i = 0; i < t->rank; i++) n *= (size_t)t->dims[i];
    return n;
}

void conv_shape_format(const int64_t *dims, int rank, char *buf, size_t len)
{
    size_t used = 0;
    if (len == 0) return;
    buf[0] = '\0';
    used += (size_t)snprintf(buf + used, len - used, "[");
    for (int i = 0; i < rank && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%lld", i ? ", " : "", (long long)dims[i]);
    if (used < len) snprintf(buf + used, len - used, "]");
}
