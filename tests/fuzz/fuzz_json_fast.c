/* fuzz_json_fast.c — differential libFuzzer harness for proto/json_fast.c
 * against jansson's json_loadb. Byte 0 picks the flags and the number-list
 * threshold, the rest is the document. Both parsers must accept the same
 * documents; accepted ones must give the same DOM bit for bit once the
 * number lists are expanded, and the same json_tensor_parse result (status,
 * message, float bits); refused ones the same error from json_fast_loadb. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/json_fast.h"
#include "proto/json_tensor.h"

static int identical(const json_t *a, const json_t *b)
{
    if (json_typeof(a) != json_typeof(b)) return 0;
    switch (json_typeof(a)) {
    case JSON_OBJECT: {
        if (json_object_size(a) != json_object_size(b)) return 0;
        void *ia = json_object_iter((json_t *)a), *ib = json_object_iter((json_t *)b);
        for (; ia && ib; ia = json_object_iter_next((json_t *)a, ia), ib = json_object_iter_next((json_t *)b, ib))
            if (strcmp(json_object_iter_key(ia), json_object_iter_key(ib)) != 0 ||
                !identical(json_object_iter_value(ia), json_object_iter_value(ib)))
                return 0;
        return !ia && !ib;
    }
    case JSON_ARRAY:
        if (json_array_size(a) != json_array_size(b)) return 0;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!identical(json_array_get(a, i), json_array_get(b, i))) return 0;
        return 1;
    case JSON_STRING:
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    case JSON_INTEGER:
        return json_integer_value(a) == json_integer_value(b);
    case JSON_REAL: {
        double x = json_real_value(a), y = json_real_value(b);
        return memcmp(&x, &y, sizeof x) == 0;
    }
    default:
        return 1;
    }
}

/* json_tensor_parse on every object of both DOMs (walked in step) */
static void same_tensors(const json_t *a, const json_t *b)
{
    if (json_is_object(a)) {
        conv_tensor ta, tb;
        conv_error ea = {0}, eb = {0};
        json_tensor_limits limits = {.max_elements = (size_t)1 << 20};
        conv_status sa = json_tensor_parse(a, "t", NULL, 0, &limits, &ta, NULL, &ea);
        conv_status sb = json_tensor_parse(b, "t", NULL, 0, &limits, &tb, NULL, &eb);
        if (sa != sb) abort();
        if (sa != CONV_OK) {
            if (strcmp(ea.message, eb.message) != 0) abort();
        } else {
            size_t n = conv_tensor_numel(&ta);
            if (n != conv_tensor_numel(&tb) || memcmp(ta.data, tb.data, n * sizeof(float)) != 0) abort();
            conv_tensor_free(&ta);
            conv_tensor_free(&tb);
        }
        void *ia = json_object_iter((json_t *)a), *ib = json_object_iter((json_t *)b);
        for (; ia && ib; ia = json_object_iter_next((json_t *)a, ia), ib = json_object_iter_next((json_t *)b, ib))
            same_tensors(json_object_iter_value(ia), json_object_iter_value(ib));
    } else if (json_is_array(a) && json_is_array(b)) {
        for (size_t i = 0; i < json_array_size(a) && i < json_array_size(b); i++)
            same_tensors(json_array_get(a, i), json_array_get(b, i));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t flags = (data[0] & 1 ? JSON_REJECT_DUPLICATES : 0) | (data[0] & 2 ? JSON_DECODE_ANY : 0);
    json_fast_options options = {.min_numbers = 1 + (data[0] >> 2) % 4, .no_fallback = true};
    const char *text = (const char *)data + 1;
    size_t len = size - 1;

    json_error_t ja, jb, jc;
    json_t *a = json_loadb(text, len, flags, &ja);
    json_t *b = json_fast_loadb_opts(text, len, flags, &options, &jb);
    if ((a == NULL) != (b == NULL)) abort();
    json_t *c = json_fast_loadb(text, len, flags, &jc);
    if ((a == NULL) != (c == NULL)) abort();
    if (a) {
        same_tensors(a, b);
        if (json_fast_expand(b) != 0) abort();
        if (!identical(a, b)) abort();
        if (json_fast_expand(c) != 0 || !identical(a, c)) abort();
    } else if (strcmp(ja.text, jc.text) != 0 || ja.line != jc.line || ja.column != jc.column ||
               ja.position != jc.position) {
        abort();
    }
    json_decref(a);
    json_decref(b);
    json_decref(c);
    return 0;
}
