/* status.c — status names, the error-message helper and checked size arithmetic
 * shared by every module of the core. */
#include <stdarg.h>
#include <stdio.h>

#include "core/conv.h"

const char *conv_status_name(conv_status status)
{
    switch (status) {
    case CONV_OK: return "ok";
    case CONV_INVALID_PARAMETER: return "invalid_parameter";
    case CONV_INVALID_SHAPE: return "invalid_shape";
    case CONV_INVALID_WEIGHTS: return "invalid_weights";
    case CONV_UNSUPPORTED_ALGORITHM: return "unsupported_algorithm";
    case CONV_LIMIT_EXCEEDED: return "limit_exceeded";
    case CONV_OUT_OF_MEMORY: return "out_of_memory";
    case CONV_INVALID_STATE: return "invalid_state";
    }
    return "unknown";
}

conv_status conv_fail(conv_error *err, conv_status status, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return status;
}

bool conv_size_mul(size_t a, size_t b, size_t *out)
{
    size_t r;
    if (__builtin_mul_overflow(a, b, &r)) return false;
    *out = r;
    return true;
}

bool conv_size_add(size_t a, size_t b, size_t *out)
{
    size_t r;
    if (__builtin_add_overflow(a, b, &r)) return false;
    *out = r;
    return true;
}

bool conv_dims_product(const int64_t *dims, int n, size_t *out)
{
    size_t total = 1;
    for (int i = 0; i < n; i++) {
        if (dims[i] < 0) return false;
        if (!conv_size_mul(total, (size_t)dims[i], &total)) return false;
    }
    *out = total;
    return true;
}
