/* fuzz_json_tensor.c — libFuzzer harness for proto/json_tensor.c (lists,
 * base64, random init) and proto/base64.c. The first byte picks an expected
 * shape (none, or one of a few), the rest is the JSON value. An accepted
 * tensor must write back through both writers and read again bit for bit
 * (b64) or value for value (list). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/json_tensor.h"

static void check_round_trip(const conv_tensor *t, json_tensor_encoding enc)
{
    char *text;
    size_t len;
    conv_status s = enc == JSON_TENSOR_B64 ? json_tensor_write_b64(t, &text, &len) : json_tensor_write_list(t, &text, &len);
    if (s != CONV_OK) return; /* out of memory */
    json_error_t jerr;
    json_t *doc = json_loadb(text, len, 0, &jerr);
    if (!doc) abort();
    conv_tensor back;
    conv_error err;
    if (json_tensor_parse(doc, "back", NULL, 0, NULL, &back, NULL, &err) != CONV_OK) abort();
    if (back.rank != t->rank) abort();
    size_t n = 1;
    for (int d = 0; d < t->rank; d++) {
        if (back.dims[d] != t->dims[d]) abort();
        n *= (size_t)t->dims[d];
    }
    for (size_t i = 0; i < n; i++) {
        float a = t->data[i], b = back.data[i];
        if (isnan(a) ? !isnan(b) : memcmp(&a, &b, sizeof a) != 0) abort();
    }
    conv_tensor_free(&back);
    json_decref(doc);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    static const int64_t shapes[][4] = {{1, 1, 2, 2}, {1, 3, 4, 4}, {2, 2, 1, 1}};
    const int64_t *expected = NULL;
    int rank = 0;
    if (data[0] % 4) {
        expected = shapes[data[0] % 4 - 1];
        rank = 4;
    }
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)data + 1, size - 1, JSON_DECODE_ANY, &jerr);
    if (!doc) return 0;
    /* 65536 elements reach every branch; bigger tensors only slow the
     * round trip past the timeout (a 544x442 random fill took 11 s under ASan) */
    json_tensor_limits limits = {.max_elements = (size_t)1 << 16};
    conv_tensor t;
    json_tensor_encoding enc;
    conv_error err;
    if (json_tensor_parse(doc, "input", expected, rank, &limits, &t, &enc, &err) == CONV_OK) {
        check_round_trip(&t, JSON_TENSOR_B64);
        check_round_trip(&t, JSON_TENSOR_LIST);
        conv_tensor_free(&t);
    } else if (t.data || t.rank) {
        abort(); /* documented: empty on failure */
    }
    json_decref(doc);
    return 0;
}
