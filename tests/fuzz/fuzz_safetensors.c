/* fuzz_safetensors.c — libFuzzer harness for proto/safetensors.c: any bytes
 * as a safetensors file; the float tensors of an accepted file must
 * serialize and parse back to the same bits. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    safetensors_file f;
    conv_error err;
    if (safetensors_parse(data, size, &f, &err) != CONV_OK) {
        if (f.count || f.tensors) abort();
        return 0;
    }
    conv_named_tensor *floats = calloc(f.count ? f.count : 1, sizeof *floats);
    size_t n = 0;
    for (size_t i = 0; floats && i < f.count; i++)
        if (f.tensors[i].is_float) floats[n++] = f.tensors[i];
    uint8_t *out;
    size_t out_len;
    if (floats && safetensors_serialize(floats, n, &out, &out_len, &err) == CONV_OK) {
        safetensors_file back;
        if (safetensors_parse(out, out_len, &back, &err) != CONV_OK) abort();
        if (back.count != n) abort();
        for (size_t i = 0; i < n; i++) {
            const conv_named_tensor *a = safetensors_find(&f, back.tensors[i].name);
            if (!a) abort();
            const conv_tensor *ta = &a->tensor, *tb = &back.tensors[i].tensor;
            if (ta->rank != tb->rank) abort();
            size_t elems = 1;
            for (int d = 0; d < ta->rank; d++) {
                if (ta->dims[d] != tb->dims[d]) abort();
                elems *= (size_t)ta->dims[d];
            }
            if (elems && memcmp(ta->data, tb->data, elems * sizeof(float))) abort();
        }
        safetensors_free(&back);
        free(out);
    }
    free(floats);
    safetensors_free(&f);
    return 0;
}
