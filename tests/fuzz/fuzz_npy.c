/* fuzz_npy.c — libFuzzer harness for proto/npy.c: any bytes as a .npy file;
 * an accepted array must serialize and parse back to the same bits. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    conv_tensor t;
    conv_error err;
    if (npy_parse_limited(data, size, (size_t)1 << 22, &t, &err) != CONV_OK) {
        if (t.data || t.rank) abort();
        return 0;
    }
    uint8_t *out;
    size_t out_len;
    if (npy_serialize(&t, &out, &out_len, &err) == CONV_OK) {
        conv_tensor back;
        if (npy_parse(out, out_len, &back, &err) != CONV_OK) abort();
        if (back.rank != t.rank) abort();
        size_t n = 1;
        for (int d = 0; d < t.rank; d++) {
            if (back.dims[d] != t.dims[d]) abort();
            n *= (size_t)t.dims[d];
        }
        if (n && memcmp(back.data, t.data, n * sizeof(float))) abort();
        conv_tensor_free(&back);
        free(out);
    }
    conv_tensor_free(&t);
    return 0;
}
