/* test_safetensors.c — the safetensors codec against fixtures written by the
 * format writer in tests/data/gen_codec_fixtures.py, every validation rule
 * on hand-made headers, every truncation of a valid file, and round trips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/conv.h"
#include "proto/fileio.h"
#include "proto/safetensors.h"
#include "tests/unit/codec_fixtures.h"

/* ------------------------------------------------------------ helpers */

/* header length (u64 LE) + header text + data */
static uint8_t *build_file(const char *header, size_t header_len, const void *data, size_t data_len, size_t *len)
{
    *len = 8 + header_len + data_len;
    uint8_t *bytes = malloc(*len);
    assert_non_null(bytes);
    for (int i = 0; i < 8; i++) bytes[i] = (uint8_t)((uint64_t)header_len >> (8 * i));
    memcpy(bytes + 8, header, header_len);
    if (data_len) memcpy(bytes + 8 + header_len, data, data_len);
    return bytes;
}

static void expect_parse_failure(const uint8_t *bytes, size_t len, conv_status status, const char *needle)
{
    safetensors_file f;
    memset(&f, 0x5a, sizeof f);
    conv_error err = {{0}};
    conv_status st = safetensors_parse(bytes, len, &f, &err);
    if (st != status)
        fail_msg("expected %s, got %s: %s", conv_status_name(status), conv_status_name(st), err.message);
    assert_int_equal(f.count, 0);
    assert_null(f.tensors);
    assert_int_equal(strncmp(err.message, "safetensors: ", 13), 0);
    assert_message_contains(&err, needle);
}

static void expect_header_failure(const char *header, size_t data_len, conv_status status, const char *needle)
{
    uint8_t data[64] = {0};
    assert_true(data_len <= sizeof data);
    size_t len;
    uint8_t *bytes = build_file(header, strlen(header), data, data_len, &len);
    expect_parse_failure(bytes, len, status, needle);
    free(bytes);
}

static const conv_named_tensor *find_ok(const safetensors_file *f, const char *name)
{
    const conv_named_tensor *t = safetensors_find(f, name);
    if (!t) fail_msg("tensor '%s' not found", name);
    return t;
}

/* ------------------------------------------------------------ fixtures */

static void test_model_fixture(void **state)
{
    (void)state;
    size_t len;
    uint8_t *bytes = read_fixture("safetensors", "model.safetensors", &len);
    safetensors_file f;
    conv_error err = {{0}};
    conv_status st = safetensors_parse(bytes, len, &f, &err);
    if (st != CONV_OK) fail_msg("%s", err.message);
    free(bytes);
    assert_int_equal(f.count, 7);
    /* header order is kept: the writer put the 8-byte dtypes first */
    assert_string_equal(f.tensors[0].name, "1.num_batches_tracked");
    assert_string_equal(f.tensors[1].name, "1.running_mean");

    const conv_named_tensor *w = find_ok(&f, "0.weight");
    assert_true(w->is_float);
    assert_string_equal(w->dtype, "F32");
    assert_int_equal(w->tensor.rank, 4);
    const int64_t dims[4] = {2, 1, 3, 3};
    for (int i = 0; i < 4; i++) assert_int_equal(w->tensor.dims[i], dims[i]);
    for (int i = 0; i < 18; i++) assert_true(w->tensor.data[i] == i * 0.125f - 1.0f);

    const conv_named_tensor *b = find_ok(&f, "0.bias");
    assert_true(b->tensor.data[0] == 0.5f && b->tensor.data[1] == -0.5f);

    const conv_named_tensor *half = find_ok(&f, "1.weight");
    assert_string_equal(half->dtype, "F16");
    assert_true(half->is_float);
    assert_true(half->tensor.data[0] == 1.5f);
    assert_true(half->tensor.data[1] == 0x1p-24f); /* a float16 subnormal, exact */

    const conv_named_tensor *bf = find_ok(&f, "1.bias");
    assert_string_equal(bf->dtype, "BF16");
    assert_true(bf->tensor.data[0] == -3.0f && bf->tensor.data[1] == 0.15625f);

    const conv_named_tensor *mean = find_ok(&f, "1.running_mean");
    assert_string_equal(mean->dtype, "F64");
    assert_int_equal(float_bits(mean->tensor.data[0]), float_bits((float)0.1));
    assert_int_equal(float_bits(mean->tensor.data[1]), 0xff800000u); /* -1e300 is -inf in float32 */

    const conv_named_tensor *var = find_ok(&f, "1.running_var");
    assert_true(var->tensor.data[0] == 1.0f && var->tensor.data[1] == 4.0f);

    const conv_named_tensor *tracked = find_ok(&f, "1.num_batches_tracked");
    assert_false(tracked->is_float);
    assert_string_equal(tracked->dtype, "I64");
    assert_int_equal(tracked->tensor.rank, 0);
    assert_null(tracked->tensor.data);

    assert_null(safetensors_find(&f, "__metadata__"));
    assert_null(safetensors_find(&f, "1.weigh"));
    safetensors_free(&f);
    assert_int_equal(f.count, 0);
    safetensors_free(&f); /* idempotent */
}

static void test_scalar_empty_and_bool(void **state)
{
    (void)state;
    char path[512];
    fixture_path("safetensors", "scalar_and_empty.safetensors", path, sizeof path);
    safetensors_file f;
    conv_error err = {{0}};
    conv_status st = safetensors_read_file(path, &f, &err);
    if (st != CONV_OK) fail_msg("%s", err.message);
    assert_int_equal(f.count, 3);
    const conv_named_tensor *scalar = find_ok(&f, "scalar");
    assert_int_equal(scalar->tensor.rank, 0);
    assert_true(scalar->tensor.data[0] == 2.5f);
    const conv_named_tensor *empty = find_ok(&f, "empty");
    assert_int_equal(empty->tensor.rank, 2);
    assert_int_equal(empty->tensor.dims[0], 0);
    assert_int_equal(empty->tensor.dims[1], 4);
    assert_int_equal(conv_tensor_numel(&empty->tensor), 0);
    const conv_named_tensor *mask = find_ok(&f, "mask");
    assert_false(mask->is_float);
    assert_string_equal(mask->dtype, "BOOL");
    assert_int_equal(mask->tensor.rank, 1);
    assert_int_equal(mask->tensor.dims[0], 3);
    assert_null(mask->tensor.data);
    safetensors_free(&f);
}

static void test_read_file_errors(void **state)
{
    (void)state;
    safetensors_file f;
    conv_error err = {{0}};
    assert_int_equal(safetensors_read_file("/nonexistent/dir/w.safetensors", &f, &err), CONV_INVALID_PARAMETER);
    assert_message_contains(&err, "/nonexistent/dir/w.safetensors");
    assert_int_equal(f.count, 0);
}

static void test_every_truncation_fails(void **state)
{
    (void)state;
    const char *names[] = {"model.safetensors", "scalar_and_empty.safetensors"};
    for (size_t n = 0; n < sizeof names / sizeof names[0]; n++) {
        size_t len;
        uint8_t *bytes = read_fixture("safetensors", names[n], &len);
        for (size_t prefix = 0; prefix < len; prefix++) {
            /* exact-size copies so the sanitizer catches any over-read */
            uint8_t *copy = malloc(prefix ? prefix : 1);
            assert_non_null(copy);
            memcpy(copy, bytes, prefix);
            safetensors_file f;
            conv_error err = {{0}};
            if (safetensors_parse(copy, prefix, &f, &err) == CONV_OK)
                fail_msg("%s cut to %zu of %zu bytes was accepted", names[n], prefix, len);
            assert_int_equal(f.count, 0);
            assert_null(f.tensors);
            assert_int_equal(strncmp(err.message, "safetensors: ", 13), 0);
            free(copy);
        }
        free(bytes);
    }
}

/* ------------------------------------------------------------ validation */

static void test_validation_rules(void **state)
{
    (void)state;
    const struct {
        const char *header;
        size_t data_len;
        conv_status status;
        const char *needle;
    } cases[] = {
        {"", 0, CONV_INVALID_PARAMETER, "not valid JSON at byte 8"},
        {"{\"a\":", 0, CONV_INVALID_PARAMETER, "not valid JSON"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
         8, CONV_INVALID_PARAMETER, "duplicate"},
        {"{} x", 0, CONV_INVALID_PARAMETER, "not valid JSON"},
        {"[]", 0, CONV_INVALID_PARAMETER, "header must be a JSON object"},
        {"{\"a\":[1]}", 0, CONV_INVALID_PARAMETER, "tensor 'a': entry must be an object"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"extra\":1}}", 4, CONV_INVALID_PARAMETER,
         "tensor 'a': unexpected key 'extra'"},
        {"{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, CONV_INVALID_PARAMETER, "tensor 'a': missing key 'dtype'"},
        {"{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, CONV_INVALID_PARAMETER,
         "tensor 'a': missing key 'shape'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, CONV_INVALID_PARAMETER, "tensor 'a': missing key 'data_offsets'"},
        {"{\"a\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, CONV_INVALID_PARAMETER,
         "tensor 'a': 'dtype' must be a string"},
        {"{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, CONV_INVALID_PARAMETER,
         "tensor 'a': unknown dtype 'F8_E4M3'"},
        {"{\"a\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, CONV_INVALID_PARAMETER,
         "unknown dtype 'f32'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":1,\"data_offsets\":[0,4]}}", 4, CONV_INVALID_PARAMETER,
         "tensor 'a': 'shape' must be an array"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", 4, CONV_INVALID_PARAMETER,
         "tensor 'a': 'shape' element 0 must be an integer"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,\"2\"],\"data_offsets\":[0,8]}}", 8, CONV_INVALID_PARAMETER,
         "'shape' element 1 must be an integer"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,4]}}", 4, CONV_INVALID_SHAPE,
         "tensor 'a': 'shape' element 1 is negative"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, CONV_INVALID_SHAPE,
         "tensor 'a': 'shape' has rank 5; at most 4"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":4}}", 4, CONV_INVALID_PARAMETER,
         "tensor 'a': 'data_offsets' must be an array [begin, end]"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8, CONV_INVALID_PARAMETER,
         "'data_offsets' must be an array [begin, end]"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4, CONV_INVALID_PARAMETER,
         "'data_offsets' must hold two non-negative integers"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,\"4\"]}}", 4, CONV_INVALID_PARAMETER,
         "'data_offsets' must hold two non-negative integers"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,0]}}", 4, CONV_INVALID_PARAMETER,
         "tensor 'a': 'data_offsets' end 0 is before begin 4"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, CONV_INVALID_PARAMETER,
         "tensor 'a': 'data_offsets' [0, 8] run past the 4-byte data buffer"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,9223372036854775807]}}", 4,
         CONV_INVALID_PARAMETER, "run past the 4-byte data buffer"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 8, CONV_INVALID_PARAMETER,
         "tensor 'a': 'data_offsets' [0, 4] span 4 bytes, but F32 with shape [2] needs 8"},
        {"{\"a\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,4]}}", 8, CONV_INVALID_PARAMETER,
         "span 4 bytes, but F16 with shape [3] needs 6"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,4]}}", 4,
         CONV_LIMIT_EXCEEDED, "tensor 'a': shape [4611686018427387904, 4] is too large"},
        {"{\"a\":{\"dtype\":\"F16\",\"shape\":[4611686018427387904],\"data_offsets\":[0,4]}}", 4, CONV_LIMIT_EXCEEDED,
         "is too large"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,4]}}", 4,
         CONV_INVALID_PARAMETER, "not valid JSON"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
         8, CONV_INVALID_PARAMETER, "tensors 'a' [0, 8] and 'b' [4, 8]: byte ranges overlap"},
        {"{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]},"
         "\"c\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[2,2]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
         12, CONV_INVALID_PARAMETER, "tensors 'a' [0, 4] and 'c' [2, 2]: byte ranges overlap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"b\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
         4, CONV_INVALID_PARAMETER, "byte ranges overlap"},
        {"{\"__metadata__\":[\"pt\"]}", 0, CONV_INVALID_PARAMETER, "'__metadata__' must be an object of strings"},
        {"{\"__metadata__\":{\"format\":1}}", 0, CONV_INVALID_PARAMETER, "'__metadata__' value of 'format' must be a string"},
        {"{\"line\\nbreak\":1}", 0, CONV_INVALID_PARAMETER, "tensor 'line?break': entry must be an object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        print_message("case %zu: %s\n", i, cases[i].header);
        expect_header_failure(cases[i].header, cases[i].data_len, cases[i].status, cases[i].needle);
    }
}

static void test_header_length_rules(void **state)
{
    (void)state;
    uint8_t short_file[7] = {2, 0, 0, 0, 0, 0, 0};
    expect_parse_failure(short_file, sizeof short_file, CONV_INVALID_PARAMETER, "too short for the 8-byte header length");

    size_t len;
    uint8_t *bytes = build_file("{}", 2, NULL, 0, &len);
    bytes[0] = 3; /* one byte more than there is */
    expect_parse_failure(bytes, len, CONV_INVALID_PARAMETER, "header length 3 runs past the end of the 10-byte file");
    bytes[0] = 0;
    bytes[7] = 0x80; /* 2^63 */
    expect_parse_failure(bytes, len, CONV_LIMIT_EXCEEDED, "more than the limit of 100000000 bytes");
    free(bytes);

    /* a header just over 100 MB is refused before it is parsed, even though the file holds it */
    size_t big = SAFETENSORS_MAX_HEADER_BYTES + 1;
    uint8_t *huge = calloc(1, 8 + big);
    assert_non_null(huge);
    for (int i = 0; i < 8; i++) huge[i] = (uint8_t)((uint64_t)big >> (8 * i));
    expect_parse_failure(huge, 8 + big, CONV_LIMIT_EXCEEDED, "header length 100000001 is more than the limit");
    free(huge);

    /* NUL bytes are not JSON (and not space padding) */
    const char nul_header[] = "{}\0\0\0\0\0\0";
    bytes = build_file(nul_header, 8, NULL, 0, &len);
    expect_parse_failure(bytes, len, CONV_INVALID_PARAMETER, "not valid JSON");
    free(bytes);
}

static void test_lenient_but_valid_layouts(void **state)
{
    (void)state;
    /* an empty state_dict, space padding, a gap between tensors and trailing
     * bytes are all accepted: only overlaps and out-of-range offsets are not */
    const char *header = "{\"__metadata__\":{\"format\":\"pt\"},"
                         "\"z\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[8,12]},"
                         "\"e1\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
                         "\"e2\":{\"dtype\":\"U8\",\"shape\":[0,3],\"data_offsets\":[4,4]},"
                         "\"y\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}    ";
    const float data[4] = {1.0f, -7.0f, 2.0f, 99.0f};
    size_t len;
    uint8_t *bytes = build_file(header, strlen(header), data, sizeof data, &len);
    safetensors_file f;
    conv_error err = {{0}};
    conv_status st = safetensors_parse(bytes, len, &f, &err);
    if (st != CONV_OK) fail_msg("%s", err.message);
    assert_int_equal(f.count, 4);
    assert_true(find_ok(&f, "z")->tensor.data[0] == 2.0f);
    assert_true(find_ok(&f, "y")->tensor.data[0] == 1.0f);
    assert_int_equal(find_ok(&f, "e2")->tensor.dims[1], 3);
    safetensors_free(&f);
    free(bytes);

    bytes = build_file("{}      ", 8, NULL, 0, &len);
    assert_int_equal(safetensors_parse(bytes, len, &f, NULL), CONV_OK);
    assert_int_equal(f.count, 0);
    safetensors_free(&f);
    free(bytes);
}

/* ------------------------------------------------------------ serialize */

static void test_serialize_layout(void **state)
{
    (void)state;
    float b_data[2] = {1.0f, 2.0f}, a_data[1] = {-1.0f};
    const int64_t b_dims[1] = {2};
    conv_named_tensor tensors[2] = {{.name = "b", .is_float = true}, {.name = "a", .is_float = true}};
    conv_tensor_wrap(&tensors[0].tensor, 1, b_dims, b_data);
    conv_tensor_wrap(&tensors[1].tensor, 0, NULL, a_data);
    uint8_t *bytes;
    size_t len;
    conv_error err = {{0}};
    assert_int_equal(safetensors_serialize(tensors, 2, &bytes, &len, &err), CONV_OK);
    /* what the reference writer produces: sorted keys, compact JSON, spaces to a multiple of 8 */
    const char expected_header[] = "{\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
                                   "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}";
    size_t json_len = sizeof expected_header - 1;
    size_t padded = (json_len + 7) / 8 * 8;
    assert_int_equal(len, 8 + padded + 12);
    uint64_t header_len = 0;
    for (int i = 0; i < 8; i++) header_len |= (uint64_t)bytes[i] << (8 * i);
    assert_int_equal(header_len, padded);
    assert_memory_equal(bytes + 8, expected_header, json_len);
    for (size_t i = json_len; i < padded; i++) assert_int_equal(bytes[8 + i], ' ');
    const float expected_data[3] = {-1.0f, 1.0f, 2.0f};
    assert_memory_equal(bytes + 8 + padded, expected_data, sizeof expected_data); /* little-endian host */
    free(bytes);
}

static void test_round_trip(void **state)
{
    (void)state;
    const char *names[] = {"features.0.weight", "features.0.bias", "scalar", "empty", "classifier.weight"};
    const int ranks[] = {4, 1, 0, 2, 2};
    const int64_t dims[][4] = {{4, 3, 3, 3}, {4}, {0}, {0, 5}, {10, 7}};
    conv_named_tensor tensors[5];
    conv_error err = {{0}};
    for (int i = 0; i < 5; i++) {
        tensors[i] = (conv_named_tensor){.name = names[i], .is_float = true, .dtype = "F32"};
        assert_int_equal(conv_tensor_alloc(&tensors[i].tensor, ranks[i], dims[i], &err), CONV_OK);
        size_t numel = conv_tensor_numel(&tensors[i].tensor);
        for (size_t k = 0; k < numel; k++) tensors[i].tensor.data[k] = (float)(i * 1000 + (int)k) * 0.01f - 3.0f;
    }
    tensors[0].tensor.data[1] = 0.0f / 0.0f;
    tensors[0].tensor.data[2] = -0.0f;
    tensors[0].tensor.data[3] = 1e-45f;

    char dir[] = "/tmp/convd_test_st_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[600];
    snprintf(path, sizeof path, "%s/w.safetensors", dir);
    assert_int_equal(safetensors_write_file(path, tensors, 5, &err), CONV_OK);
    safetensors_file f;
    assert_int_equal(safetensors_read_file(path, &f, &err), CONV_OK);
    assert_int_equal(f.count, 5);
    /* written sorted by name */
    assert_string_equal(f.tensors[0].name, "classifier.weight");
    assert_string_equal(f.tensors[4].name, "scalar");
    for (int i = 0; i < 5; i++) {
        const conv_named_tensor *t = find_ok(&f, names[i]);
        assert_true(t->is_float);
        assert_string_equal(t->dtype, "F32");
        assert_int_equal(t->tensor.rank, ranks[i]);
        for (int d = 0; d < ranks[i]; d++) assert_int_equal(t->tensor.dims[d], dims[i][d]);
        size_t numel = conv_tensor_numel(&t->tensor);
        for (size_t k = 0; k < numel; k++)
            assert_int_equal(float_bits(t->tensor.data[k]), float_bits(tensors[i].tensor.data[k]));
    }
    safetensors_free(&f);
    for (int i = 0; i < 5; i++) conv_tensor_free(&tensors[i].tensor);
    unlink(path);
    rmdir(dir);

    uint8_t *bytes;
    size_t len;
    assert_int_equal(safetensors_serialize(NULL, 0, &bytes, &len, &err), CONV_OK);
    assert_int_equal(len, 16);
    assert_memory_equal(bytes + 8, "{}      ", 8);
    free(bytes);
}

static void expect_serialize_failure(const conv_named_tensor *tensors, size_t n, conv_status status,
                                     const char *needle)
{
    uint8_t *bytes;
    size_t len;
    conv_error err = {{0}};
    conv_status st = safetensors_serialize(tensors, n, &bytes, &len, &err);
    if (st != status) fail_msg("expected %s, got %s: %s", conv_status_name(status), conv_status_name(st), err.message);
    assert_null(bytes);
    assert_message_contains(&err, needle);
}

static void test_serialize_refusals(void **state)
{
    (void)state;
    float data[2] = {1.0f, 2.0f};
    const int64_t dims[1] = {2};
    conv_named_tensor t[2] = {{.name = "x", .is_float = true}, {.name = "y", .is_float = true}};
    conv_tensor_wrap(&t[0].tensor, 1, dims, data);
    conv_tensor_wrap(&t[1].tensor, 1, dims, data);

    t[1].name = "x";
    expect_serialize_failure(t, 2, CONV_INVALID_PARAMETER, "duplicate tensor name 'x'");
    t[1].name = "__metadata__";
    expect_serialize_failure(t, 2, CONV_INVALID_PARAMETER, "'__metadata__' is reserved");
    t[1].name = "bad\xff";
    expect_serialize_failure(t, 2, CONV_INVALID_PARAMETER, "not valid UTF-8");
    t[1].name = NULL;
    expect_serialize_failure(t, 2, CONV_INVALID_PARAMETER, "tensor 1 has no name");
    t[1].name = "y";
    t[1].is_float = false;
    expect_serialize_failure(t, 2, CONV_INVALID_PARAMETER, "tensor 'y': only float tensors");
    t[1].is_float = true;
    t[1].tensor.data = NULL;
    expect_serialize_failure(t, 2, CONV_INVALID_PARAMETER, "tensor 'y': has no data");
    t[1].tensor.data = data;
    t[1].tensor.rank = 5;
    expect_serialize_failure(t, 2, CONV_INVALID_SHAPE, "tensor 'y': rank 5");
    t[1].tensor.rank = 1;
    t[1].tensor.dims[0] = -2;
    expect_serialize_failure(t, 2, CONV_INVALID_SHAPE, "tensor 'y': negative");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_fixture),
        cmocka_unit_test(test_scalar_empty_and_bool),
        cmocka_unit_test(test_read_file_errors),
        cmocka_unit_test(test_every_truncation_fails),
        cmocka_unit_test(test_validation_rules),
        cmocka_unit_test(test_header_length_rules),
        cmocka_unit_test(test_lenient_but_valid_layouts),
        cmocka_unit_test(test_serialize_layout),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_serialize_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
