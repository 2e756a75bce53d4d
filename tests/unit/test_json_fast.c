/* test_json_fast.c — proto/json_fast.c against jansson's json_loadb: the
 * same documents accepted, the same DOM (number lists expanded) bit for bit,
 * the same error text and position, the same tensors and messages out of
 * json_tensor_parse and v2_request_parse, on hand-picked and random input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/conv.h"
#include "proto/json_fast.h"
#include "proto/json_tensor.h"
#include "proto/v2_json.h"

/* ------------------------------------------------------------ helpers */

/* xorshift64*, deterministic so failures reproduce */
static uint64_t next_random(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 2685821657736338717ull;
}

/* A growing text buffer for generated documents */
typedef struct text {
    char *s;
    size_t len, cap;
} text;

static void text_add(text *t, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        size_t room = t->cap - t->len;
        va_start(ap, fmt);
        int n = vsnprintf(t->s ? t->s + t->len : NULL, t->s ? room : 0, fmt, ap);
        va_end(ap);
        assert_true(n >= 0);
        if (t->s && (size_t)n < room) {
            t->len += (size_t)n;
            return;
        }
        t->cap = (t->cap + (size_t)n + 1) * 2;
        t->s = realloc(t->s, t->cap);
        assert_non_null(t->s);
    }
}

/* Same type, same value bit for bit (reals by their bytes), same object
 * keys in the same iteration order. */
static bool dom_identical(const json_t *a, const json_t *b)
{
    if (json_typeof(a) != json_typeof(b)) return false;
    switch (json_typeof(a)) {
    case JSON_OBJECT: {
        if (json_object_size(a) != json_object_size(b)) return false;
        void *ia = json_object_iter((json_t *)a), *ib = json_object_iter((json_t *)b);
        for (; ia && ib; ia = json_object_iter_next((json_t *)a, ia), ib = json_object_iter_next((json_t *)b, ib)) {
            if (strcmp(json_object_iter_key(ia), json_object_iter_key(ib)) != 0) return false;
            if (!dom_identical(json_object_iter_value(ia), json_object_iter_value(ib))) return false;
        }
        return !ia && !ib;
    }
    case JSON_ARRAY:
        if (json_array_size(a) != json_array_size(b)) return false;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!dom_identical(json_array_get(a, i), json_array_get(b, i))) return false;
        return true;
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
        return true;
    }
}

static size_t count_number_lists(const json_t *v)
{
    json_fast_numbers n;
    if (json_fast_numbers_view(v, &n)) return 1;
    size_t count = 0;
    if (json_is_object(v)) {
        const char *key;
        json_t *m;
        json_object_foreach((json_t *)v, key, m) count += count_number_lists(m);
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) count += count_number_lists(json_array_get(v, i));
    }
    return count;
}

/* The differential check every test uses: json_loadb, the json_fast parser
 * on its own (threshold 1, no fallback) and json_fast_loadb as shipped agree
 * on acceptance, DOM and error. Returns how many number lists the
 * threshold-1 parse made. */
static size_t check_doc_len(const char *doc, size_t len, size_t flags)
{
    json_error_t ja, jb, jc;
    json_t *a = json_loadb(doc, len, flags, &ja);
    json_fast_options strict = {.min_numbers = 1, .no_fallback = true};
    json_t *b = json_fast_loadb_opts(doc, len, flags, &strict, &jb);
    json_t *c = json_fast_loadb(doc, len, flags, &jc);
    if ((a == NULL) != (b == NULL))
        fail_msg("json_loadb %s but json_fast %s: %.*s (%s)", a ? "accepts" : "refuses", b ? "accepts" : "refuses",
                 (int)(len < 200 ? len : 200), doc, a ? "" : ja.text);
    size_t lists = 0;
    if (a) {
        lists = count_number_lists(b);
        assert_int_equal(json_fast_expand(b), 0);
        assert_int_equal(json_fast_expand(c), 0);
        if (!dom_identical(a, b) || !dom_identical(a, c))
            fail_msg("DOMs differ: %.*s", (int)(len < 200 ? len : 200), doc);
        assert_int_equal(jc.position, ja.position);
    } else {
        assert_null(c);
        assert_string_equal(jc.text, ja.text);
        assert_string_equal(jc.source, ja.source);
        assert_int_equal(jc.line, ja.line);
        assert_int_equal(jc.column, ja.column);
        assert_int_equal(jc.position, ja.position);
    }
    json_decref(a);
    json_decref(b);
    json_decref(c);
    return lists;
}

static size_t check_doc(const char *doc, size_t flags) { return check_doc_len(doc, strlen(doc), flags); }

/* json_tensor_parse on the DOMs of both parsers: the same status, message
 * and float bits. expect_list: whether the fast DOM must hold a number list
 * (1), must not (0), or either (-1). */
static void check_tensor_doc(const char *doc, size_t len, size_t min_numbers, int expect_list)
{
    json_error_t ja, jb;
    json_t *a = json_loadb(doc, len, JSON_REJECT_DUPLICATES, &ja);
    json_fast_options options = {.min_numbers = min_numbers, .no_fallback = true};
    json_t *b = json_fast_loadb_opts(doc, len, JSON_REJECT_DUPLICATES, &options, &jb);
    assert_true((a == NULL) == (b == NULL));
    if (!a) return;
    if (expect_list >= 0) assert_int_equal(count_number_lists(b) > 0, expect_list);
    conv_tensor ta, tb;
    conv_error ea = {0}, eb = {0};
    conv_status sa = json_tensor_parse(a, "input", NULL, 0, NULL, &ta, NULL, &ea);
    conv_status sb = json_tensor_parse(b, "input", NULL, 0, NULL, &tb, NULL, &eb);
    assert_int_equal(sa, sb);
    if (sa != CONV_OK) {
        assert_string_equal(ea.message, eb.message);
    } else {
        size_t n = conv_tensor_numel(&ta);
        assert_int_equal(n, conv_tensor_numel(&tb));
        assert_memory_equal(ta.data, tb.data, n * sizeof(float));
        conv_tensor_free(&ta);
        conv_tensor_free(&tb);
    }
    json_decref(a);
    json_decref(b);
}

/* {"shape":[n],"data":[items...]} with item i from make(i) */
static void tensor_text(text *t, size_t n, const char *(*make)(size_t i, char buf[64]))
{
    t->len = 0;
    text_add(t, "{\"shape\": [%zu], \"data\": [", n);
    char buf[64];
    for (size_t i = 0; i < n; i++) text_add(t, "%s%s", i ? ", " : "", make(i, buf));
    text_add(t, "]}");
}

/* ------------------------------------------------------------ documents */

static const char *const VALID[] = {
    "{}", "[]", " [ ] ", "\t\r\n{\n}\n", "[1]", "[-0]", "[-0.0]", "[0.0]", "[0e0]", "[-0E+00]", "[1E2]", "[1e-2]",
    "[true, false, null]", "[\"\"]", "[\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"]", "[\"\\u00e9\\u20AC\"]",
    "[\"\\ud834\\udd1e\"]", "[\"\xc3\xa9\xe2\x82\xac\xf0\x9d\x84\x9e\"]", "[\"\\uFFFF\"]", "[\"\xef\xbf\xbf\"]",
    "[\"\xf4\x8f\xbf\xbf\"]", "{\"a\": {\"b\": [1, {\"c\": null}]}}", "{\"a\": 1, \"b\": 2}",
    "[9223372036854775807, -9223372036854775808]", "[9007199254740993]", "[1.7976931348623157e308]",
    "[4.9e-324]", "[2e-324]", "[1e-400]", "[-1e-400]", "[123456789012345678901234567890]"
    /* a real written as a long integer is still an integer: refused, see INVALID */,
    "{\"data\": [1, 2.5, \"NaN\", \"Infinity\", \"-Infinity\", -0, -0.0, 1e39]}",
    "{\"data\": [[1, 2], [3, 4]]}", "{\"data\": [\"nan\", 1]}", "{\"data\": [\"N\\u0061N\", 1]}",
    "{\"data\": [1, true]}", "{\"data\": [1, null]}", "{\"data\": [1, {\"data\": [2]}]}",
    "{\"data\": []}", "{\"data\": 5}", "{\"data\": \"NaN\"}", "{\"x\": {\"data\": [1,2,3]}, \"data\": [4]}",
    "{\"data\": [9007199254740992, -9007199254740992]}", "{\"data\": [9007199254740993]}",
    "{\"data\": [1e308, 1e-320, 0.1, 1e22, 1e23, 123456789e-30]}", "{\"dat\": [1], \"datas\": [2]}",
    "{\"d\\u0061ta\": [1, 2]}", "[1.0000000000000000000000000001]", "[0.000000000000000000000000000001]",
    "[18446744073709551615.5]", "[9007199254740993.0]", "[2.2250738585072011e-308]",
};

/* the invalid ones whose text is a C string (see the tests for NUL bytes) */
static const char *const INVALID[] = {
    "", " ", "1", "\"a\"", "true", "null", "[", "]", "{", "}", "[1,]", "[,1]", "[1 2]", "{\"a\"}", "{\"a\":}",
    "{\"a\" 1}", "{1: 2}", "{\"a\": 1,}", "[01]", "[-]", "[-01]", "[1.]", "[.5]", "[1.e5]", "[1e]", "[1e+]",
    "[+1]", "[0x10]", "[1e309]", "[-1e309]", "[1.8e308]", "[9223372036854775808]", "[-9223372036854775809]",
    "[123456789012345678901234567890]", "[NaN]", "[Infinity]", "[tru]", "[truex]", "[nul]", "[True]",
    "[\"\\x\"]", "[\"\\u12\"]", "[\"\\u12g4\"]", "[\"\\ud834\"]", "[\"\\udd1e\"]", "[\"\\ud834\\u0041\"]",
    "[\"\\ud834x\"]", "[\"\\u0000\"]", "{\"\\u0000\": 1}", "[\"a\nb\"]", "[\"a\tb\"]", "[\"\x1f\"]", "[\"abc]",
    "[\"\xc0\x80\"]", "[\"\xc1\xbf\"]", "[\"\xe0\x80\x80\"]", "[\"\xe0\x9f\xbf\"]", "[\"\xf0\x8f\xbf\xbf\"]", "[\"\xed\xa0\x80\"]", "[\"\xf0\x80\x80\x80\"]",
    "[\"\xf4\x90\x80\x80\"]", "[\"\xf5\x80\x80\x80\"]", "[\"\xff\"]", "[\"\x80\"]", "[\"\xc3\"]", "[\"\xe2\x82\"]",
    "[1] x", "[1] [2]", "{} {}", "[1]\xc3\xa9", "\xef\xbb\xbf[1]", "[1,\n2,\n\"\xc3\x28\"]",
    "{\"data\": [1, 2, 3,]}", "{\"data\": [1, 2 3]}", "{\"data\": [1, 2, 1e999]}", "{\"data\": [1, 2, 01]}",
    "{\"data\": [1, 2, 99999999999999999999]}", "{\"data\": [1, \"NaN]}", "{\"data\": [1, 2",
    "{\"data\": [1, 2]", "{\"data\": [1, \"\\u0000\"]}", "[1]\v", "[1]\f",
};

static void test_valid_documents(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof VALID / sizeof VALID[0]; i++) {
        json_error_t jerr;
        json_t *a = json_loadb(VALID[i], strlen(VALID[i]), 0, &jerr);
        if (!a) continue; /* a few above are there to show where the line is; INVALID checks them too */
        json_decref(a);
        check_doc(VALID[i], 0);
        check_doc(VALID[i], JSON_REJECT_DUPLICATES);
        check_doc(VALID[i], JSON_DECODE_ANY);
    }
    /* the lists the threshold-1 parser makes */
    assert_int_equal(check_doc("{\"data\": [1, 2.5, \"NaN\", \"Infinity\", \"-Infinity\", -0, -0.0, 1e39]}", 0), 1);
    assert_int_equal(check_doc("{\"data\": [[1, 2], [3, 4]]}", 0), 2);
    assert_int_equal(check_doc("{\"data\": [\"N\\u0061N\", 1]}", 0), 0);
    assert_int_equal(check_doc("{\"data\": [1, true]}", 0), 0);
    assert_int_equal(check_doc("{\"data\": [1, {\"data\": [2]}]}", 0), 1);
    assert_int_equal(check_doc("{\"data\": [9007199254740993]}", 0), 0);
    assert_int_equal(check_doc("{\"data\": [9007199254740992, -9007199254740992]}", 0), 1);
    assert_int_equal(check_doc("{\"d\\u0061ta\": [1, 2]}", 0), 1);
    assert_int_equal(check_doc("{\"dat\": [1], \"datas\": [2]}", 0), 0);
    assert_int_equal(check_doc("[{\"data\": [1]}, [2]]", 0), 1);
}

static void test_invalid_documents(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof INVALID / sizeof INVALID[0]; i++) {
        json_error_t jerr;
        json_t *a = json_loadb(INVALID[i], strlen(INVALID[i]), 0, &jerr);
        if (a) fail_msg("expected jansson to refuse %s", INVALID[i]);
        check_doc(INVALID[i], 0);
        check_doc(INVALID[i], JSON_REJECT_DUPLICATES);
    }
    /* scalars at the top need JSON_DECODE_ANY, in both */
    check_doc("1", JSON_DECODE_ANY);
    check_doc("\"NaN\"", JSON_DECODE_ANY);
    check_doc(" -0.0 ", JSON_DECODE_ANY);
    check_doc("\"\\u0000\"", JSON_DECODE_ANY);
    /* NUL bytes in the text, inside and outside strings */
    check_doc_len("[1]\0", 4, 0);
    check_doc_len("[\"a\0b\"]", 7, 0);
    check_doc_len("{\"data\": [1, \0 2]}", 18, 0);
    check_doc_len("\0", 1, 0);
    /* jansson drops one NUL right after a number or literal (see json_fast.c) */
    check_doc_len(" -0.0\0", 6, JSON_DECODE_ANY);
    check_doc_len("[1\0]", 4, 0);
    check_doc_len("[1\0\0]", 5, 0);
    check_doc_len("[true\0, null\0, false\0]", 22, 0);
    check_doc_len("{\"data\": [1\0, 2.5\0, 3]}", 23, 0);
    check_doc_len("{\"data\": [1\0, \"NaN\"\0, 3]}", 25, 0);
    check_doc_len("[\"a\"\0]", 6, 0);
    check_doc_len("[1\0 ]", 5, 0);
    /* the error position reads as jansson's, also deep inside a long list */
    text t = {0};
    text_add(&t, "{\"shape\": [100], \"data\": [");
    for (int i = 0; i < 100; i++) text_add(&t, i == 77 ? "%d,\n 1.5e999, " : "%d, ", i);
    text_add(&t, "1]}");
    check_doc_len(t.s, t.len, 0);
    free(t.s);
}

static void test_duplicate_keys(void **state)
{
    (void)state;
    const char *docs[] = {
        "{\"a\": 1, \"a\": 2}", "{\"a\": 1, \"b\": 2, \"a\": [3]}", "{\"data\": [1, 2], \"data\": [3, 4, 5]}",
        "{\"x\": {\"a\": 1, \"a\": 1}}", "{\"a\": 1, \"\\u0061\": 2}", "{\"a\": {}, \"b\": {\"a\": 1}}",
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        check_doc(docs[i], 0);
        check_doc(docs[i], JSON_REJECT_DUPLICATES);
    }
    json_error_t jerr;
    json_t *v = json_fast_loadb("{\"a\": 1, \"a\": 2}", 16, JSON_REJECT_DUPLICATES, &jerr);
    assert_null(v);
    assert_non_null(strstr(jerr.text, "duplicate object key"));
}

/* 2048 nested values is jansson's limit, scalars counted */
static void test_depth_limit(void **state)
{
    (void)state;
    size_t depths[] = {1, 2, 100, JSON_PARSER_MAX_DEPTH - 2, JSON_PARSER_MAX_DEPTH - 1, JSON_PARSER_MAX_DEPTH,
                       JSON_PARSER_MAX_DEPTH + 1, 5000};
    for (size_t d = 0; d < sizeof depths / sizeof depths[0]; d++) {
        size_t n = depths[d];
        for (int form = 0; form < 4; form++) {
            text t = {0};
            /* form 0: [[...[1]...]]  1: [[...[]...]]  2: {"data": [[...[1, 2]...]]}  3: {"a":{"a":...1}} */
            if (form == 2) text_add(&t, "{\"data\": ");
            for (size_t i = 0; i < n; i++) text_add(&t, form == 3 ? "{\"a\": " : "[");
            text_add(&t, form == 0 ? "1" : form == 1 ? "" : form == 2 ? "1, 2" : "1");
            for (size_t i = 0; i < n; i++) text_add(&t, form == 3 ? "}" : "]");
            if (form == 2) text_add(&t, "}");
            check_doc_len(t.s, t.len, 0);
            free(t.s);
        }
    }
}

/* ------------------------------------------------------------ numbers */

/* a random number in JSON syntax, biased to the hard cases */
static void random_number(uint64_t *rng, char *out, size_t cap)
{
    uint64_t r = next_random(rng);
    int form = (int)(r % 8);
    if (form == 0) {
        /* what convd's writer emits */
        uint32_t bits = (uint32_t)(next_random(rng) >> 32);
        float f;
        memcpy(&f, &bits, sizeof f);
        if (!isfinite(f)) f = 1.5f;
        json_tensor_format_float(f, out);
        return;
    }
    if (form == 1) {
        uint64_t bits = next_random(rng);
        double d;
        memcpy(&d, &bits, sizeof d);
        if (!isfinite(d)) d = 0.25;
        snprintf(out, cap, "%.*g", 1 + (int)(next_random(rng) % 17), d);
        /* %g may write "inf" or "1e+300": fine, only valid JSON matters below */
        if (!strchr("-0123456789", out[0])) snprintf(out, cap, "1");
        return;
    }
    if (form == 2) {
        /* halfway cases between floats and doubles: many digits */
        snprintf(out, cap, "%.25e", ldexp((double)(next_random(rng) >> 11) + 0.5, (int)(next_random(rng) % 200) - 150));
        return;
    }
    char *p = out;
    if (next_random(rng) % 2) *p++ = '-';
    int int_digits = (int)(next_random(rng) % (form == 3 ? 25 : 8));
    if (int_digits == 0) {
        *p++ = '0';
    } else {
        *p++ = (char)('1' + next_random(rng) % 9);
        for (int i = 1; i < int_digits; i++) *p++ = (char)('0' + next_random(rng) % 10);
    }
    if (form >= 4 || next_random(rng) % 2) {
        int frac = 1 + (int)(next_random(rng) % (form == 4 ? 30 : 10));
        *p++ = '.';
        for (int i = 0; i < frac; i++) *p++ = (char)('0' + (next_random(rng) % 3 ? next_random(rng) % 10 : 0));
    }
    if (form >= 5) {
        *p++ = next_random(rng) % 2 ? 'e' : 'E';
        int sign = (int)(next_random(rng) % 3);
        if (sign) *p++ = sign == 1 ? '+' : '-';
        int range = form == 5 ? 50 : form == 6 ? 330 : 2000;
        p += sprintf(p, "%d", (int)(next_random(rng) % (uint64_t)range));
    }
    *p = '\0';
}

static void test_numbers_bit_exact(void **state)
{
    (void)state;
    static const char *const edges[] = {
        "0", "-0", "0.0", "-0.0", "1", "-1", "1e39", "-1e39", "3.4028235e38", "3.4028236e38", "3.40282357e38",
        "1.4e-45", "7e-46", "7.038531e-26", "7.0385307e-26", "2.2250738585072014e-308", "2.2250738585072011e-308",
        "4.9406564584124654e-324", "2.4703282292062327e-324", "2.4703282292062328e-324", "1e-400",
        "1.7976931348623157e308", "1.7976931348623158e308", "1.7976931348623159e308", "9007199254740991",
        "9007199254740992", "9007199254740993", "-9007199254740993", "9223372036854775807", "-9223372036854775808",
        "9223372036854775808", "0.1", "0.30000000000000004", "1e22", "1e23", "9007199254740993e0", "8.5e-1",
        "123456789012345678e-5", "1234567890123456789", "12345678901234567890", "1234567890123456789.0",
        "0.0000000000000000000000000000001e31", "1e0000000000000000000000000001", "1e-99999999999999999999",
        "1e99999999999999999999", "0e99999999999999999999", "4503599627370497.5", "2.5e-324",
    };
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    char num[128], doc[512];
    for (size_t i = 0; i < sizeof edges / sizeof edges[0] + 200000; i++) {
        if (i < sizeof edges / sizeof edges[0])
            snprintf(num, sizeof num, "%s", edges[i]);
        else
            random_number(&rng, num, sizeof num);
        snprintf(doc, sizeof doc, "[%s]", num);
        check_doc(doc, 0);
        snprintf(doc, sizeof doc, "{\"data\": [%s, 1]}", num);
        check_doc(doc, 0);
    }
}

/* ------------------------------------------------------------ tensors */

static const char *item_writer(size_t i, char buf[64])
{
    uint64_t s = i * 0x9e3779b97f4a7c15ull + 1;
    uint32_t bits = (uint32_t)(next_random(&s) >> 32);
    float f;
    memcpy(&f, &bits, sizeof f);
    json_tensor_format_float(f, buf);
    return buf;
}

static const char *item_ints(size_t i, char buf[64])
{
    snprintf(buf, 64, "%lld", (long long)(i * 7919) - 100000);
    return buf;
}

/* a list that is valid except at one position, chosen by the global below */
static size_t bad_position;
static const char *bad_item;
static const char *item_one_bad(size_t i, char buf[64])
{
    if (i == bad_position) return bad_item;
    return item_writer(i, buf);
}

static void test_tensor_values(void **state)
{
    (void)state;
    text t = {0};
    size_t sizes[] = {1, 2, 63, 64, 65, 1000, 4097};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        tensor_text(&t, sizes[s], item_writer);
        check_tensor_doc(t.s, t.len, JSON_FAST_MIN_NUMBERS, sizes[s] >= JSON_FAST_MIN_NUMBERS);
        check_tensor_doc(t.s, t.len, 1, true);
        check_doc_len(t.s, t.len, 0);
        tensor_text(&t, sizes[s], item_ints);
        check_tensor_doc(t.s, t.len, JSON_FAST_MIN_NUMBERS, sizes[s] >= JSON_FAST_MIN_NUMBERS);
    }
    /* json_fast_loadb as shipped makes a list from 64 elements on */
    json_error_t jerr;
    tensor_text(&t, 64, item_writer);
    json_t *v = json_fast_loadb(t.s, t.len, 0, &jerr);
    json_fast_numbers n;
    assert_true(json_fast_numbers_view(json_object_get(v, "data"), &n));
    assert_int_equal(n.count, 64);
    json_decref(v);
    tensor_text(&t, 63, item_writer);
    v = json_fast_loadb(t.s, t.len, 0, &jerr);
    assert_true(json_is_array(json_object_get(v, "data")));
    json_decref(v);

    /* one bad or special element at any position: same values, same message */
    static const char *const specials[] = {
        "1e39", "-1e39", "3.4028235e38", "3.4028236e38", "1e-46", "-0", "-0.0", "1.4e-45", "\"NaN\"",
        "\"Infinity\"", "\"-Infinity\"", "\"nan\"", "\"N\\u0061N\"", "\"\"", "true", "null", "[1]", "{}",
        "9007199254740993", "-9223372036854775808", "9223372036854775807", "123456789012345678e-5",
        "7.038531e-26", "1e-400", "0.1",
    };
    size_t positions[] = {0, 1, 62, 63, 64, 99};
    for (size_t k = 0; k < sizeof specials / sizeof specials[0]; k++) {
        for (size_t p = 0; p < sizeof positions / sizeof positions[0]; p++) {
            bad_item = specials[k];
            bad_position = positions[p];
            tensor_text(&t, 100, item_one_bad);
            check_tensor_doc(t.s, t.len, JSON_FAST_MIN_NUMBERS, -1);
        }
    }
    /* a nested list long enough to be a number list is still an array to json_tensor_parse */
    t.len = 0;
    text_add(&t, "{\"shape\": [3], \"data\": [1, [");
    for (int i = 0; i < 70; i++) text_add(&t, "%s%d", i ? "," : "", i);
    text_add(&t, "], 2]}");
    check_tensor_doc(t.s, t.len, JSON_FAST_MIN_NUMBERS, 1);
    check_tensor_doc(t.s, t.len, 1, 1);
    free(t.s);
}

/* count mismatches, shapes and messages with lists */
static void test_tensor_messages(void **state)
{
    (void)state;
    text t = {0};
    text_add(&t, "{\"shape\": [2, 50], \"data\": [");
    for (int i = 0; i < 99; i++) text_add(&t, "%s%d.5", i ? "," : "", i);
    text_add(&t, "]}");
    json_error_t jerr;
    json_t *v = json_fast_loadb(t.s, t.len, 0, &jerr);
    assert_non_null(v);
    conv_tensor out;
    conv_error err;
    assert_int_equal(json_tensor_parse(v, "input", NULL, 0, NULL, &out, NULL, &err), CONV_INVALID_SHAPE);
    assert_string_equal(err.message, "input.data: has 99 numbers, shape [2, 50] needs 100");
    json_decref(v);
    free(t.s);

    t = (text){0};
    text_add(&t, "{\"data\": [");
    for (int i = 0; i < 100; i++) text_add(&t, "%s%s", i ? "," : "", i == 70 ? "1e39" : "0.5");
    text_add(&t, "], \"shape\": [100]}");
    v = json_fast_loadb(t.s, t.len, 0, &jerr);
    assert_int_equal(json_tensor_parse(v, "input", NULL, 0, NULL, &out, NULL, &err), CONV_INVALID_PARAMETER);
    assert_string_equal(err.message,
                        "input.data[70]: 1e+39 is outside the float32 range (use \"Infinity\" for infinity)");
    json_decref(v);
    free(t.s);
}

/* ------------------------------------------------------------ v2 */

/* The same request with "data" flat (a number list) and cut in rows of 50
 * (ordinary arrays, < 64): flattening must not tell them apart. */
static void check_v2(const char *datatype, size_t n, const char *(*make)(size_t i, char buf[64]))
{
    text flat = {0}, rows = {0};
    char buf[64];
    for (int form = 0; form < 2; form++) {
        text *t = form ? &rows : &flat;
        text_add(t, "{\"inputs\": [{\"name\": \"x\", \"datatype\": \"%s\", \"shape\": [%zu], \"data\": [", datatype, n);
        for (size_t i = 0; i < n; i++) {
            if (form && i % 50 == 0) text_add(t, "%s[", i ? "," : "");
            text_add(t, "%s%s", (form ? i % 50 : i) ? "," : "", make(i, buf));
            if (form && (i % 50 == 49 || i == n - 1)) text_add(t, "]");
        }
        text_add(t, "]}]}");
    }
    v2_request ra, rb;
    conv_error ea = {0}, eb = {0};
    conv_status sa = v2_request_parse((const uint8_t *)flat.s, flat.len, flat.len, 1 << 20, &ra, &ea);
    conv_status sb = v2_request_parse((const uint8_t *)rows.s, rows.len, rows.len, 1 << 20, &rb, &eb);
    assert_int_equal(sa, sb);
    if (sa == CONV_OK) {
        assert_true(count_number_lists(ra.doc) == 1 || n < JSON_FAST_MIN_NUMBERS);
        assert_int_equal(conv_tensor_numel(&ra.inputs[0].tensor), conv_tensor_numel(&rb.inputs[0].tensor));
        assert_memory_equal(ra.inputs[0].tensor.data, rb.inputs[0].tensor.data, n * sizeof(float));
    } else {
        assert_string_equal(ea.message, eb.message);
    }
    v2_request_free(&ra);
    v2_request_free(&rb);
    free(flat.s);
    free(rows.s);
}

static void test_v2_lists(void **state)
{
    (void)state;
    static const char *const types[] = {"FP32", "FP64", "FP16", "BF16", "INT8", "INT32", "UINT8", "INT64", "BOOL"};
    static const char *const specials[] = {"1e39", "\"NaN\"", "2.5", "-1", "300", "16777217", "-0", "1e-46", "70000"};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        check_v2(types[k], 100, item_writer);
        check_v2(types[k], 100, item_ints);
        check_v2(types[k], 64, item_ints);
        for (size_t s = 0; s < sizeof specials / sizeof specials[0]; s++) {
            bad_item = specials[s];
            for (size_t p = 0; p < 3; p++) {
                bad_position = p == 0 ? 0 : p == 1 ? 63 : 99;
                check_v2(types[k], 100, item_one_bad);
            }
        }
    }
    /* more values than the shape holds, from a list */
    text t = {0};
    text_add(&t, "{\"inputs\": [{\"name\": \"x\", \"datatype\": \"FP32\", \"shape\": [70], \"data\": [");
    for (int i = 0; i < 80; i++) text_add(&t, "%s%d", i ? "," : "", i);
    text_add(&t, "]}]}");
    v2_request r;
    conv_error err;
    assert_int_equal(v2_request_parse((const uint8_t *)t.s, t.len, t.len, 1 << 20, &r, &err), CONV_INVALID_PARAMETER);
    assert_string_equal(err.message, "inputs[0].data: more than the 70 values its shape holds");
    v2_request_free(&r);
    free(t.s);
}

/* ------------------------------------------------------------ API */

static void test_views_and_expansion(void **state)
{
    (void)state;
    json_t *plain = json_string("NaN");
    json_fast_numbers n;
    assert_false(json_fast_numbers_view(plain, &n));
    assert_false(json_fast_numbers_view(NULL, &n));
    assert_null(json_fast_numbers_to_array(plain));
    json_decref(plain);
    /* a string with the magic but a wrong length is not a list */
    json_t *forged = json_stringn_nocheck("\0jsonnum\x05\0\0\0\0\0\0\0", 16);
    assert_false(json_fast_numbers_view(forged, &n));
    json_decref(forged);

    const char *doc = "{\"a\": [{\"data\": [1, -0.0, \"NaN\", \"Infinity\", \"-Infinity\", 2.5]}]}";
    json_fast_options options = {.min_numbers = 1};
    json_error_t jerr;
    json_t *v = json_fast_loadb_opts(doc, strlen(doc), 0, &options, &jerr);
    json_t *list = json_object_get(json_array_get(json_object_get(v, "a"), 0), "data");
    assert_true(json_fast_numbers_view(list, &n));
    assert_int_equal(n.count, 6);
    assert_int_equal(json_fast_numbers_kind(&n, 0), JSON_FAST_INTEGER);
    assert_true(json_fast_numbers_value(&n, 0) == 1.0);
    assert_int_equal(json_fast_numbers_kind(&n, 1), JSON_FAST_REAL);
    assert_true(signbit(json_fast_numbers_value(&n, 1)));
    assert_int_equal(json_fast_numbers_kind(&n, 2), JSON_FAST_NAN);
    assert_true(isnan(json_fast_numbers_value(&n, 2)));
    assert_int_equal(json_fast_numbers_kind(&n, 3), JSON_FAST_INFINITY);
    assert_int_equal(json_fast_numbers_kind(&n, 4), JSON_FAST_NEG_INFINITY);
    assert_true(json_fast_numbers_value(&n, 5) == 2.5);
    /* code unaware of lists sees a string, never an array */
    assert_false(json_is_array(list));
    /* a deep copy carries its own values */
    json_t *copy = json_deep_copy(v);
    json_decref(v);
    json_t *copied = json_object_get(json_array_get(json_object_get(copy, "a"), 0), "data");
    assert_true(json_fast_numbers_view(copied, &n));
    assert_true(json_fast_numbers_value(&n, 5) == 2.5);
    assert_int_equal(json_fast_expand(copy), 0);
    char *dumped = json_dumps(copy, JSON_COMPACT);
    assert_string_equal(dumped, "{\"a\":[{\"data\":[1,-0.0,\"NaN\",\"Infinity\",\"-Infinity\",2.5]}]}");
    free(dumped);
    json_decref(copy);

    /* flags json_fast does not handle go to json_loadb whole */
    json_t *any = json_fast_loadb("[1.5]", 5, JSON_DECODE_INT_AS_REAL, &jerr);
    assert_non_null(any);
    json_decref(any);
    assert_null(json_fast_loadb(NULL, 0, 0, &jerr));
}

/* random documents built from pieces, valid and mangled */
static void test_random_documents(void **state)
{
    (void)state;
    static const char *const pieces[] = {
        "{", "}", "[", "]", ",", ":", "\"data\"", "\"shape\"", "\"a\"", "1", "-2.5e3", "0", "-0", "1e39", "\"NaN\"",
        "\"Infinity\"", "\"-Infinity\"", "true", "false", "null", " ", "\n", "\"\\u00e9\"", "\"\\ud834\\udd1e\"",
        "\"\\u0000\"", "\xc3\xa9", "\"x\"", "9007199254740993", "1.", "01", "\"\\ud800\"",
    };
    uint64_t rng = 42;
    char doc[256];
    for (int iter = 0; iter < 200000; iter++) {
        size_t len = 0;
        int count = 1 + (int)(next_random(&rng) % 24);
        for (int i = 0; i < count; i++) {
            const char *p = pieces[next_random(&rng) % (sizeof pieces / sizeof pieces[0])];
            size_t n = strlen(p);
            if (len + n >= sizeof doc) break;
            memcpy(doc + len, p, n);
            len += n;
        }
        check_doc_len(doc, len, next_random(&rng) % 2 ? JSON_REJECT_DUPLICATES : JSON_DECODE_ANY);
    }
    /* well-formed tensors with random contents */
    text t = {0};
    for (int iter = 0; iter < 300; iter++) {
        size_t n = 1 + next_random(&rng) % 200;
        t.len = 0;
        text_add(&t, "{\"shape\": [%zu], \"data\": [", n);
        char num[128];
        for (size_t i = 0; i < n; i++) {
            random_number(&rng, num, sizeof num);
            text_add(&t, "%s%s", i ? "," : "", num);
        }
        text_add(&t, "]}");
        check_doc_len(t.s, t.len, 0);
        check_tensor_doc(t.s, t.len, 1, -1);
    }
    free(t.s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_documents),     cmocka_unit_test(test_invalid_documents),
        cmocka_unit_test(test_duplicate_keys),      cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_numbers_bit_exact),   cmocka_unit_test(test_tensor_values),
        cmocka_unit_test(test_tensor_messages),     cmocka_unit_test(test_v2_lists),
        cmocka_unit_test(test_views_and_expansion), cmocka_unit_test(test_random_documents),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
