/* test_json_tensor.c — tensors in JSON: every accepted form, every error
 * message, limits applied before allocation, bit-exact round trips through
 * the list and base64 writers, the shortest float formatter against strtof
 * and strtod on random bit patterns, base64 vectors, and the documented
 * random-init sequence against values computed by its Python snippet. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/conv.h"
#include "proto/base64.h"
#include "proto/json_tensor.h"
#include "proto/random_init.h"

/* ------------------------------------------------------------ helpers */

static uint32_t float_bits(float f)
{
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return b;
}

static float bits_float(uint32_t b)
{
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

/* xorshift64*, deterministic so failures reproduce */
static uint64_t next_random(uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * 0x2545F4914F6CDD1Du;
}

static json_t *load(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, 0, &jerr);
    if (!v) fail_msg("bad test JSON %s: %s", text, jerr.text);
    return v;
}

static conv_status parse_text(const char *text, const int64_t *expected, int expected_rank, size_t max_elements,
                              conv_tensor *out, json_tensor_encoding *enc, conv_error *err)
{
    json_t *v = load(text);
    json_tensor_limits limits = {max_elements};
    conv_status st = json_tensor_parse(v, "input", expected, expected_rank, max_elements ? &limits : NULL, out, enc,
                                       err);
    json_decref(v);
    return st;
}

static conv_tensor parse_ok(const char *text, const int64_t *expected, int expected_rank, json_tensor_encoding want)
{
    conv_tensor t;
    conv_error err = {{0}};
    json_tensor_encoding enc = (json_tensor_encoding)-1;
    conv_status st = parse_text(text, expected, expected_rank, 0, &t, &enc, &err);
    if (st != CONV_OK) fail_msg("%s: %s (%s)", text, err.message, conv_status_name(st));
    assert_int_equal(enc, want);
    return t;
}

static void assert_same_bits(const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (float_bits(a[i]) != float_bits(b[i]))
            fail_msg("element %zu: %08x != %08x", i, float_bits(a[i]), float_bits(b[i]));
}

/* ------------------------------------------------------------ accepted forms */

static void test_list_form(void **state)
{
    (void)state;
    conv_tensor t = parse_ok("{\"shape\": [2, 3], \"data\": [1, -2, 0.5, 1e-3, -0.0, 3.4028234663852886e38]}", NULL,
                             0, JSON_TENSOR_LIST);
    assert_int_equal(t.rank, 2);
    assert_int_equal(t.dims[0], 2);
    assert_int_equal(t.dims[1], 3);
    float expect[6] = {1.0f, -2.0f, 0.5f, 1e-3f, -0.0f, 3.4028234663852886e38f};
    assert_same_bits(t.data, expect, 6);
    assert_true(t.owns_data);
    assert_int_equal((uintptr_t)t.data % CONV_ALIGNMENT, 0);
    conv_tensor_free(&t);

    /* reals round to the nearest float32 */
    t = parse_ok("{\"shape\": [1], \"data\": [0.1]}", NULL, 0, JSON_TENSOR_LIST);
    assert_int_equal(float_bits(t.data[0]), float_bits(0.1f));
    conv_tensor_free(&t);

    t = parse_ok("{\"data\": [\"NaN\", \"Infinity\", \"-Infinity\", 7], \"shape\": [1, 1, 2, 2]}", NULL, 0,
                 JSON_TENSOR_LIST);
    assert_true(isnan(t.data[0]));
    assert_true(isinf(t.data[1]) && t.data[1] > 0);
    assert_true(isinf(t.data[2]) && t.data[2] < 0);
    assert_true(t.data[3] == 7.0f);
    conv_tensor_free(&t);
}

static void test_b64_form_keeps_every_bit(void **state)
{
    (void)state;
    /* NaN with payload, -NaN, +-inf, -0, smallest subnormal, largest subnormal, 1.0 */
    uint32_t patterns[8] = {0x7fc01234u, 0xffa00001u, 0x7f800000u, 0xff800000u,
                            0x80000000u, 0x00000001u, 0x807fffffu, 0x3f800000u};
    uint8_t bytes[32];
    for (int i = 0; i < 8; i++)
        for (int b = 0; b < 4; b++) bytes[4 * i + b] = (uint8_t)(patterns[i] >> (8 * b));
    char b64[64];
    size_t n;
    assert_true(base64_encoded_size(32, &n));
    base64_encode(bytes, 32, b64);
    b64[n] = '\0';
    char text[256];
    snprintf(text, sizeof text, "{\"shape\": [2, 4], \"b64\": \"%s\"}", b64);
    conv_tensor t = parse_ok(text, NULL, 0, JSON_TENSOR_B64);
    for (int i = 0; i < 8; i++) assert_int_equal(float_bits(t.data[i]), patterns[i]);
    conv_tensor_free(&t);

    /* unpadded: 1 float = 4 bytes = "AACAPw==" -> "AACAPw" */
    t = parse_ok("{\"shape\": [1], \"b64\": \"AACAPw\"}", NULL, 0, JSON_TENSOR_B64);
    assert_true(t.data[0] == 1.0f);
    conv_tensor_free(&t);
}

static void test_random_form(void **state)
{
    (void)state;
    /* values from the Python snippet in random_init.h */
    conv_tensor t = parse_ok("{\"init\": \"random\", \"seed\": 42, \"shape\": [4]}", NULL, 0, JSON_TENSOR_RANDOM);
    float python42[4] = {0x1.eeb99p-2f, -0x1.5c4074p-1f, -0x1.c56cc8p-2f, -0x1.3f18f8p-2f};
    assert_same_bits(t.data, python42, 4);
    conv_tensor_free(&t);

    /* seed defaults to 0 */
    t = parse_ok("{\"init\": \"random\", \"shape\": [3]}", NULL, 0, JSON_TENSOR_RANDOM);
    float python0[3] = {0x1.8882ap-1f, -0x1.18762p-3f, -0x1.e4ee8cp-1f};
    assert_same_bits(t.data, python0, 3);
    conv_tensor_free(&t);
    assert_true(random_init_value(INT64_MAX, 5) == -0x1.8cb5e4p-1f);

    /* same seed: same values; another seed: different values; all in [-1, 1) */
    int64_t shape[4] = {2, 3, 16, 16};
    conv_tensor a = parse_ok("{\"init\": \"random\", \"seed\": 7}", shape, 4, JSON_TENSOR_RANDOM);
    conv_tensor b = parse_ok("{\"init\": \"random\", \"seed\": 7, \"shape\": [2, 3, 16, 16]}", shape, 4,
                             JSON_TENSOR_RANDOM);
    conv_tensor c = parse_ok("{\"init\": \"random\", \"seed\": 8}", shape, 4, JSON_TENSOR_RANDOM);
    size_t n = conv_tensor_numel(&a), differing = 0;
    assert_int_equal(n, 1536);
    assert_same_bits(a.data, b.data, n);
    float lo = 1, hi = -1;
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        assert_true(a.data[i] >= -1.0f && a.data[i] < 1.0f);
        assert_true(a.data[i] == random_init_value(7, i));
        differing += a.data[i] != c.data[i];
        lo = fminf(lo, a.data[i]);
        hi = fmaxf(hi, a.data[i]);
        sum += a.data[i];
    }
    assert_true(differing > n - 10);
    /* spread over the whole range, centred near 0 */
    assert_true(lo < -0.99f && hi > 0.99f);
    assert_true(fabs(sum / (double)n) < 0.1);
    conv_tensor_free(&a);
    conv_tensor_free(&b);
    conv_tensor_free(&c);
}

static void test_expected_shape_may_replace_shape(void **state)
{
    (void)state;
    int64_t shape[2] = {2, 2};
    conv_tensor t = parse_ok("{\"data\": [1, 2, 3, 4]}", shape, 2, JSON_TENSOR_LIST);
    assert_int_equal(t.rank, 2);
    assert_int_equal(t.dims[1], 2);
    assert_true(t.data[3] == 4.0f);
    conv_tensor_free(&t);
    t = parse_ok("{\"shape\": [2, 2], \"data\": [1, 2, 3, 4]}", shape, 2, JSON_TENSOR_LIST);
    conv_tensor_free(&t);
}

/* ------------------------------------------------------------ errors */

typedef struct error_case {
    const char *json;
    const char *path;
    int64_t expected[4];
    int expected_rank;
    size_t max_elements;
    conv_status status;
    const char *message;
} error_case;

static const error_case ERROR_CASES[] = {
    {"[1, 2]", "input", {0}, 0, 0, CONV_INVALID_PARAMETER,
     "input: must be an object with \"shape\" and one of \"data\", \"b64\" or \"init\""},
    {"{\"shape\": [1], \"data\": [1], \"dtype\": \"f4\"}", "input", {0}, 0, 0, CONV_INVALID_PARAMETER,
     "input: unknown key \"dtype\" (allowed: shape, data, b64, init, seed)"},
    {"{\"shape\": [1]}", "input", {0}, 0, 0, CONV_INVALID_PARAMETER,
     "input: exactly one of \"data\", \"b64\" or \"init\" is required"},
    {"{\"shape\": [1], \"data\": [1], \"b64\": \"AACAPw==\"}", "input", {0}, 0, 0, CONV_INVALID_PARAMETER,
     "input: exactly one of \"data\", \"b64\" or \"init\" is required"},
    {"{\"shape\": [1], \"data\": [1], \"seed\": 3}", "input", {0}, 0, 0, CONV_INVALID_PARAMETER,
     "input.seed: only allowed with \"init\""},
    {"{\"data\": [1]}", "input", {0}, 0, 0, CONV_INVALID_PARAMETER, "input.shape: is required"},
    {"{\"shape\": 4, \"data\": [1]}", "input", {0}, 0, 0, CONV_INVALID_SHAPE,
     "input.shape: must be a list of 1 to 4 positive integers"},
    {"{\"shape\": [], \"data\": []}", "input", {0}, 0, 0, CONV_INVALID_SHAPE,
     "input.shape: has 0 dims, rank must be 1 to 4"},
    {"{\"shape\": [1, 1, 1, 1, 1], \"data\": [1]}", "input", {0}, 0, 0, CONV_INVALID_SHAPE,
     "input.shape: has 5 dims, rank must be 1 to 4"},
    {"{\"shape\": [1, 3, 0, 4], \"data\": []}", "input", {0}, 0, 0, CONV_INVALID_SHAPE,
     "input.shape[2]: must be a positive integer"},
    {"{\"shape\": [1, 3, -4, 4], \"data\": []}", "input", {0}, 0, 0, CONV_INVALID_SHAPE,
     "input.shape[2]: must be a positive integer"},
    {"{\"shape\": [1, 3.0], \"data\": [1, 2, 3]}", "input", {0}, 0, 0, CONV_INVALID_SHAPE,
     "input.shape[1]: must be a positive integer"},
    {"{\"shape\": [1, \"3\"], \"data\": [1, 2, 3]}", "input", {0}, 0, 0, CONV_INVALID_SHAPE,
     "input.shape[1]: must be a positive integer"},
    {"{\"shape\": [10, 3, 3, 2], \"data\": [1]}", "weight", {10, 3, 3, 3}, 4, 0, CONV_INVALID_SHAPE,
     "weight.shape: [10, 3, 3, 2] does not match the expected [10, 3, 3, 3]"},
    {"{\"shape\": [10, 3, 9], \"data\": [1]}", "weight", {10, 3, 3, 3}, 4, 0, CONV_INVALID_SHAPE,
     "weight.shape: [10, 3, 9] does not match the expected [10, 3, 3, 3]"},
    {"{\"shape\": [10, 3, 3, 3], \"data\": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, "
     "21, 22, 23, 24, 25, 26]}",
     "weight", {0}, 0, 0, CONV_INVALID_SHAPE, "weight.data: has 26 numbers, shape [10, 3, 3, 3] needs 270"},
    {"{\"data\": [1, 2]}", "weight", {3}, 1, 0, CONV_INVALID_SHAPE, "weight.data: has 2 numbers, shape [3] needs 3"},
    {"{\"shape\": [2], \"data\": {\"a\": 1}}", "input", {0}, 0, 0, CONV_INVALID_PARAMETER,
     "input.data: must be a list of numbers"},
    {"{\"shape\": [6], \"data\": [0, 1, 2, 3, 4, null]}", "input", {0}, 0, 0, CONV_INVALID_PARAMETER,
     "input.data[5]: must be a number"},
    {"{\"shape\": [6], \"data\": [0, 1, 2, 3, 4, [5]]}", "input", {0}, 0, 0, CONV_INVALID_PARAMETER,
     "input.data[5]: must be a number"},
    {"{\"shape\": [2], \"data\": [true, 1]}", "input", {0}, 0, 0, CONV_INVALID_PARAMETER,
     "input.data[0]: must be a number"},
    {"{\"shape\": [2], \"data\": [1, \"nan\"]}", "input", {0}, 0, 0, CONV_INVALID_PARAMETER,
     "input.data[1]: must be a number (or \"NaN\", \"Infinity\", \"-Infinity\")"},
    {"{\"shape\": [2], \"data\": [1, -1e39]}", "input", {0}, 0, 0, CONV_INVALID_PARAMETER,
     "input.data[1]: -1e+39 is outside the float32 range (use \"Infinity\" for infinity)"},
    {"{\"shape\": [1], \"b64\": 5}", "input", {0}, 0, 0, CONV_INVALID_PARAMETER, "input.b64: must be a base64 string"},
    {"{\"shape\": [2], \"b64\": \"AACAPwAAgD\"}", "input", {0}, 0, 0, CONV_INVALID_SHAPE,
     "input.b64: decodes to 7 bytes, shape [2] needs 8 (4 per float32)"},
    {"{\"shape\": [1, 3, 4, 4], \"b64\": \"AACAPw==\"}", "input", {0}, 0, 0, CONV_INVALID_SHAPE,
     "input.b64: decodes to 4 bytes, shape [1, 3, 4, 4] needs 192 (4 per float32)"},
    {"{\"shape\": [6], \"b64\": \"AAAAAAAAAAAAAAAAA*AAAAAAAAAAAAAA\"}", "input", {0}, 0, 0, CONV_INVALID_PARAMETER,
     "input.b64: invalid base64 at offset 17"},
    {"{\"shape\": [6], \"b64\": \"AAAAAAAAAAAA AAAAAAAAAAAAAAAAAAA\"}", "input", {0}, 0, 0, CONV_INVALID_PARAMETER,
     "input.b64: invalid base64 at offset 12"},
    {"{\"shape\": [2], \"b64\": \"AACAP=AAgD8=\"}", "input", {0}, 0, 0, CONV_INVALID_PARAMETER,
     "input.b64: invalid base64 at offset 5"},
    {"{\"shape\": [1], \"b64\": \"AACAPwA\"}", "input", {0}, 0, 0, CONV_INVALID_SHAPE,
     "input.b64: decodes to 5 bytes, shape [1] needs 4 (4 per float32)"},
    {"{\"shape\": [1], \"b64\": \"AACAPwAAA\"}", "input", {0}, 0, 0, CONV_INVALID_PARAMETER,
     "input.b64: invalid base64 at offset 8"},
    {"{\"shape\": [1], \"init\": \"zeros\"}", "input", {0}, 0, 0, CONV_INVALID_PARAMETER,
     "input.init: must be \"random\""},
    {"{\"shape\": [1], \"init\": \"random\", \"seed\": -1}", "input", {0}, 0, 0, CONV_INVALID_PARAMETER,
     "input.seed: must be a non-negative integer"},
    {"{\"shape\": [1], \"init\": \"random\", \"seed\": 1.5}", "input", {0}, 0, 0, CONV_INVALID_PARAMETER,
     "input.seed: must be a non-negative integer"},
    {"{\"shape\": [1073741824, 1073741824], \"init\": \"random\"}", "input", {0}, 0, 1000000, CONV_LIMIT_EXCEEDED,
     "input.shape: [1073741824, 1073741824] has 1152921504606846976 elements, more than the limit of 1000000"},
    /* the limit is checked before the data: a short list does not matter */
    {"{\"shape\": [1073741824, 1073741824], \"data\": [1]}", "input", {0}, 0, 1000000, CONV_LIMIT_EXCEEDED,
     "input.shape: [1073741824, 1073741824] has 1152921504606846976 elements, more than the limit of 1000000"},
    {"{\"init\": \"random\"}", "weight", {1000, 1000, 3, 3}, 4, 1000000, CONV_LIMIT_EXCEEDED,
     "weight.shape: [1000, 1000, 3, 3] has 9000000 elements, more than the limit of 1000000"},
    {"{\"shape\": [4611686018427387904, 4611686018427387904, 4], \"init\": \"random\"}", "input", {0}, 0, 0,
     CONV_LIMIT_EXCEEDED, "input.shape: [4611686018427387904, 4611686018427387904, 4] has too many elements"},
    {"{\"shape\": [4611686018427387904], \"init\": \"random\"}", "input", {0}, 0, 0, CONV_LIMIT_EXCEEDED,
     "input.shape: [4611686018427387904] has too many elements"},
};

static void test_error_messages(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof ERROR_CASES / sizeof ERROR_CASES[0]; i++) {
        const error_case *c = &ERROR_CASES[i];
        json_t *v = load(c->json);
        json_tensor_limits limits = {c->max_elements};
        conv_tensor t;
        t.data = (float *)&t; /* must be cleared on failure */
        conv_error err = {{0}};
        conv_status st = json_tensor_parse(v, c->path, c->expected_rank ? c->expected : NULL, c->expected_rank,
                                           c->max_elements ? &limits : NULL, &t, NULL, &err);
        json_decref(v);
        if (st != c->status || strcmp(err.message, c->message) != 0)
            fail_msg("case %zu %s:\n  got  %s \"%s\"\n  want %s \"%s\"", i, c->json, conv_status_name(st), err.message,
                     conv_status_name(c->status), c->message);
        assert_null(t.data);
        assert_int_equal(t.rank, 0);
    }
}

static void test_unknown_key_is_quoted_safely(void **state)
{
    (void)state;
    json_t *v = json_object();
    char key[300];
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    key[3] = '\n';
    json_object_set_new(v, "shape", json_pack("[i]", 1));
    json_object_set_new(v, key, json_integer(1));
    conv_error err = {{0}};
    conv_tensor t;
    assert_int_equal(json_tensor_parse(v, "x", NULL, 0, NULL, &t, NULL, &err), CONV_INVALID_PARAMETER);
    json_decref(v);
    assert_non_null(strstr(err.message, "x: unknown key \"kkk?kkk"));
    assert_non_null(strstr(err.message, "...\""));
    assert_null(strchr(err.message, '\n'));
    assert_true(strlen(err.message) < 120);
}

static void test_null_path_and_null_err(void **state)
{
    (void)state;
    json_t *v = load("{\"shape\": [0], \"data\": []}");
    conv_tensor t;
    conv_error err = {{0}};
    assert_int_equal(json_tensor_parse(v, NULL, NULL, 0, NULL, &t, NULL, &err), CONV_INVALID_SHAPE);
    assert_string_equal(err.message, "tensor.shape[0]: must be a positive integer");
    assert_int_equal(json_tensor_parse(v, NULL, NULL, 0, NULL, &t, NULL, NULL), CONV_INVALID_SHAPE);
    json_decref(v);
}

/* ------------------------------------------------------------ float formatting */

static void assert_formats(float v, const char *want)
{
    char buf[JSON_TENSOR_FLOAT_MAX];
    size_t n = json_tensor_format_float(v, buf);
    assert_string_equal(buf, want);
    assert_int_equal(n, strlen(want));
}

static void test_format_float_examples(void **state)
{
    (void)state;
    assert_formats(0.0f, "0");
    assert_formats(-0.0f, "-0.0");
    assert_formats(1.0f, "1");
    assert_formats(-2.5f, "-2.5");
    assert_formats(0.1f, "0.1");
    assert_formats(1.0f / 3.0f, "0.33333334");
    assert_formats(100.0f, "100");
    assert_formats(1000.0f, "1e3");
    assert_formats(123456.7f, "123456.7");
    assert_formats(16777216.0f, "16777216");
    assert_formats(1e-7f, "1e-7");
    assert_formats(-2.5e-5f, "-2.5e-5");
    assert_formats(3.4028235e38f, "3.4028235e38");
    assert_formats(bits_float(1), "1e-45");                /* smallest subnormal */
    assert_formats(bits_float(0x00800000u), "1.1754944e-38"); /* smallest normal */
    /* the one float whose shortest form, 7.038531e-26, reads back wrong through double */
    assert_formats(bits_float(0x15ae43fdu), "7.0385307e-26");
    assert_formats(bits_float(0x95ae43fdu), "-7.0385307e-26");
    assert_true((float)strtod("7.038531e-26", NULL) != bits_float(0x15ae43fdu));
    assert_formats(NAN, "\"NaN\"");
    assert_formats(INFINITY, "\"Infinity\"");
    assert_formats(-INFINITY, "\"-Infinity\"");
}

/* shortest number of significant digits that reads back as v, the slow way */
static int shortest_digits(float v)
{
    char buf[64];
    for (int p = 1; p < 9; p++) {
        snprintf(buf, sizeof buf, "%.*e", p - 1, (double)v);
        if (strtof(buf, NULL) == v) return p;
    }
    return 9;
}

static int significant_digits(const char *s)
{
    int digits = 0, pending_zeros = 0;
    bool started = false;
    for (; *s && *s != 'e'; s++) {
        if (*s < '0' || *s > '9') continue;
        if (*s == '0') {
            if (started) pending_zeros++;
            continue;
        }
        started = true;
        digits += pending_zeros + 1;
        pending_zeros = 0;
    }
    return digits;
}

static void test_format_float_round_trips_random_bits(void **state)
{
    (void)state;
    uint64_t rng = 0x9e3779b97f4a7c15u;
    for (int i = 0; i < 2000000; i++) {
        uint32_t bits = (uint32_t)next_random(&rng);
        /* also sweep the exponent extremes and small mantissas, where the rare paths are */
        if (i % 4 == 1) bits &= 0x807fffffu;
        if (i % 4 == 2) bits = (bits & 0xff800000u) | (bits & 0xfu);
        float v = bits_float(bits);
        if (!isfinite(v)) continue;
        char buf[JSON_TENSOR_FLOAT_MAX];
        size_t n = json_tensor_format_float(v, buf);
        assert_true(n <= 15);
        assert_int_equal(strlen(buf), n);
        float via_strtof = strtof(buf, NULL);
        float via_strtod = (float)strtod(buf, NULL);
        if (float_bits(via_strtof) != bits || float_bits(via_strtod) != bits)
            fail_msg("%08x -> %s -> %08x / %08x", bits, buf, float_bits(via_strtof), float_bits(via_strtod));
        bool trap = (bits & 0x7fffffffu) == 0x15ae43fdu; /* gets 8 digits on purpose, see above */
        if (i % 64 == 0 && v != 0 && !trap && significant_digits(buf) > shortest_digits(v))
            fail_msg("%08x -> %s is longer than %d digits", bits, buf, shortest_digits(v));
    }
}

/* ------------------------------------------------------------ round trips */

static conv_tensor parse_json_text(const char *text, size_t len)
{
    json_error_t jerr;
    json_t *v = json_loadb(text, len, 0, &jerr);
    if (!v) fail_msg("writer produced invalid JSON: %s (at %d)", jerr.text, jerr.position);
    conv_tensor t;
    conv_error err = {{0}};
    conv_status st = json_tensor_parse(v, "output", NULL, 0, NULL, &t, NULL, &err);
    json_decref(v);
    if (st != CONV_OK) fail_msg("%s", err.message);
    return t;
}

static void fill_random_finite(float *data, size_t n, uint64_t seed)
{
    uint64_t rng = seed;
    for (size_t i = 0; i < n; i++) {
        do data[i] = bits_float((uint32_t)next_random(&rng));
        while (!isfinite(data[i]));
    }
}

static void test_write_list_round_trip(void **state)
{
    (void)state;
    int64_t dims[4] = {2, 3, 17, 19};
    conv_tensor t;
    assert_int_equal(conv_tensor_alloc(&t, 4, dims, NULL), CONV_OK);
    size_t n = conv_tensor_numel(&t);
    fill_random_finite(t.data, n, 12345);
    t.data[0] = -0.0f;
    t.data[1] = bits_float(1);
    t.data[2] = 3.4028235e38f;
    t.data[3] = 0.0f;
    t.data[4] = 16777216.0f;
    char *text;
    size_t len;
    assert_int_equal(json_tensor_write_list(&t, &text, &len), CONV_OK);
    assert_int_equal(strlen(text), len);
    assert_memory_equal(text, "{\"shape\":[2,3,17,19],\"data\":[-0.0,1e-45,3.4028235e38,0,16777216,", 64);
    assert_memory_equal(text + len - 2, "]}", 2);
    conv_tensor back = parse_json_text(text, len);
    free(text);
    assert_int_equal(back.rank, 4);
    assert_memory_equal(back.dims, dims, sizeof dims);
    assert_same_bits(t.data, back.data, n);
    conv_tensor_free(&back);

    /* non-finite values travel as strings */
    t.data[5] = NAN;
    t.data[6] = -INFINITY;
    t.data[7] = INFINITY;
    assert_int_equal(json_tensor_write_list(&t, &text, &len), CONV_OK);
    assert_non_null(strstr(text, ",\"NaN\",\"-Infinity\",\"Infinity\","));
    back = parse_json_text(text, len);
    free(text);
    assert_true(isnan(back.data[5]));
    assert_true(isinf(back.data[6]) && back.data[6] < 0);
    assert_true(isinf(back.data[7]) && back.data[7] > 0);
    assert_same_bits(t.data + 8, back.data + 8, n - 8);
    conv_tensor_free(&back);
    conv_tensor_free(&t);
}

static void test_write_b64_round_trip(void **state)
{
    (void)state;
    /* every length mod 3 of the byte stream: 1, 2 and 3 floats = 4, 8, 12 bytes */
    for (int64_t count = 1; count <= 7; count++) {
        conv_tensor t;
        assert_int_equal(conv_tensor_alloc(&t, 1, &count, NULL), CONV_OK);
        uint64_t rng = (uint64_t)count * 77;
        for (int64_t i = 0; i < count; i++) t.data[i] = bits_float((uint32_t)next_random(&rng));
        t.data[0] = bits_float(0x7fc0beefu); /* a NaN payload survives */
        if (count > 1) t.data[1] = -0.0f;
        if (count > 2) t.data[2] = bits_float(0x007fffffu);
        char *text;
        size_t len;
        assert_int_equal(json_tensor_write_b64(&t, &text, &len), CONV_OK);
        assert_int_equal(strlen(text), len);
        char head[64];
        snprintf(head, sizeof head, "{\"shape\":[%d],\"b64\":\"", (int)count);
        assert_memory_equal(text, head, strlen(head));
        conv_tensor back = parse_json_text(text, len);
        free(text);
        assert_same_bits(t.data, back.data, (size_t)count);
        conv_tensor_free(&back);
        conv_tensor_free(&t);
    }
}

static void test_to_json_both_encodings(void **state)
{
    (void)state;
    int64_t dims[3] = {3, 5, 7};
    conv_tensor t;
    assert_int_equal(conv_tensor_alloc(&t, 3, dims, NULL), CONV_OK);
    size_t n = conv_tensor_numel(&t);
    fill_random_finite(t.data, n, 99);
    t.data[10] = -0.0f;
    t.data[11] = NAN;
    t.data[12] = -INFINITY;
    json_tensor_encoding encodings[2] = {JSON_TENSOR_LIST, JSON_TENSOR_B64};
    for (int e = 0; e < 2; e++) {
        json_t *v = json_tensor_to_json(&t, encodings[e]);
        assert_non_null(v);
        assert_non_null(json_object_get(v, e == 0 ? "data" : "b64"));
        char *text = json_dumps(v, JSON_COMPACT);
        json_decref(v);
        conv_tensor back = parse_json_text(text, strlen(text));
        free(text);
        assert_int_equal(back.rank, 3);
        assert_memory_equal(back.dims, dims, sizeof dims);
        assert_true(isnan(back.data[11]));
        assert_same_bits(t.data, back.data, 11);
        assert_same_bits(t.data + 12, back.data + 12, n - 12);
        conv_tensor_free(&back);
    }
    assert_null(json_tensor_to_json(&t, JSON_TENSOR_RANDOM));
    conv_tensor_free(&t);
}

/* ------------------------------------------------------------ base64 */

static void test_base64_vectors(void **state)
{
    (void)state;
    /* RFC 4648 section 10 */
    const char *plain[7] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *coded[7] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    const char *unpadded[7] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        size_t n = strlen(plain[i]), chars, size, bad = 999;
        char out[16] = {0};
        assert_true(base64_encoded_size(n, &chars));
        assert_int_equal(chars, strlen(coded[i]));
        base64_encode((const uint8_t *)plain[i], n, out);
        assert_memory_equal(out, coded[i], chars);
        const char *forms[2] = {coded[i], unpadded[i]};
        for (int f = 0; f < 2; f++) {
            uint8_t decoded[16] = {0};
            assert_true(base64_decoded_size(forms[f], strlen(forms[f]), &size, &bad));
            assert_int_equal(size, n);
            assert_true(base64_decode(forms[f], strlen(forms[f]), decoded, &bad));
            assert_memory_equal(decoded, plain[i], n);
        }
    }
    /* every byte value through both directions, "+" and "/" included */
    uint8_t all[256], back[256];
    for (int i = 0; i < 256; i++) all[i] = (uint8_t)i;
    char text[344];
    size_t chars, size, bad;
    assert_true(base64_encoded_size(256, &chars));
    assert_int_equal(chars, 344);
    base64_encode(all, 256, text);
    assert_non_null(memchr(text, '+', chars));
    assert_non_null(memchr(text, '/', chars));
    assert_true(base64_decoded_size(text, chars, &size, &bad));
    assert_int_equal(size, 256);
    assert_true(base64_decode(text, chars, back, &bad));
    assert_memory_equal(all, back, 256);
    assert_false(base64_encoded_size(SIZE_MAX, &chars));
}

static void test_base64_rejects(void **state)
{
    (void)state;
    struct {
        const char *text;
        size_t bad_offset;
    } cases[] = {
        {"Zm9vY", 4},      /* one dangling character */
        {"Zm9v\nYmFy", 4}, /* whitespace is not skipped */
        {"Zm-v", 2},       /* URL-safe alphabet is not base64 */
        {"Zm9vYm_y", 6},
        {"Z===", 1},       /* at most two padding characters */
        {"====", 0},
        {"Zg==Zg==", 2},   /* padding only at the end */
        {"Zm9vYmF\x80", 7},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len = strlen(cases[i].text), size = 0, bad = 999;
        uint8_t out[16];
        bool sized = base64_decoded_size(cases[i].text, len, &size, &bad);
        if (sized) {
            assert_true(size <= sizeof out);
            assert_false(base64_decode(cases[i].text, len, out, &bad));
        }
        if (bad != cases[i].bad_offset)
            fail_msg("case %zu \"%s\": offset %zu, want %zu", i, cases[i].text, bad, cases[i].bad_offset);
    }
}

/* ------------------------------------------------------------ speed */

/* A loose floor (a tenth of the 50 MB/s target, for slow CI and sanitizer
 * builds) that still catches an accidental quadratic path. */
static void test_write_list_is_not_slow(void **state)
{
    (void)state;
    int64_t dims[4] = {1, 16, 64, 64};
    conv_tensor t;
    assert_int_equal(conv_tensor_alloc(&t, 4, dims, NULL), CONV_OK);
    random_init_fill(3, t.data, conv_tensor_numel(&t));
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    char *text;
    size_t len;
    assert_int_equal(json_tensor_write_list(&t, &text, &len), CONV_OK);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double seconds = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) * 1e-9;
    double mb_per_s = (double)len / 1e6 / seconds;
    free(text);
    conv_tensor_free(&t);
    if (mb_per_s < 5.0) fail_msg("json_tensor_write_list: %.1f MB/s", mb_per_s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_form),
        cmocka_unit_test(test_b64_form_keeps_every_bit),
        cmocka_unit_test(test_random_form),
        cmocka_unit_test(test_expected_shape_may_replace_shape),
        cmocka_unit_test(test_error_messages),
        cmocka_unit_test(test_unknown_key_is_quoted_safely),
        cmocka_unit_test(test_null_path_and_null_err),
        cmocka_unit_test(test_format_float_examples),
        cmocka_unit_test(test_format_float_round_trips_random_bits),
        cmocka_unit_test(test_write_list_round_trip),
        cmocka_unit_test(test_write_b64_round_trip),
        cmocka_unit_test(test_to_json_both_encodings),
        cmocka_unit_test(test_base64_vectors),
        cmocka_unit_test(test_base64_rejects),
        cmocka_unit_test(test_write_list_is_not_slow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
