/* test_npy.c — the .npy codec against files written by numpy
 * (tests/data/gen_codec_fixtures.py), hand-made malformed headers, every
 * truncation of valid files, overflowing shapes, and fileio. */
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
#include "proto/npy.h"
#include "tests/unit/codec_fixtures.h"

/* ------------------------------------------------------------ helpers */

static conv_tensor parse_fixture_ok(const char *name)
{
    size_t len;
    uint8_t *bytes = read_fixture("npy", name, &len);
    conv_tensor t;
    conv_error err = {{0}};
    conv_status st = npy_parse(bytes, len, &t, &err);
    free(bytes);
    if (st != CONV_OK) fail_msg("%s: %s (%s)", name, err.message, conv_status_name(st));
    return t;
}

/* Parsing must fail with status and a message containing needle, leaving
 * the output tensor empty. */
static void expect_parse_failure(const uint8_t *bytes, size_t len, conv_status status, const char *needle)
{
    conv_tensor t;
    memset(&t, 0x5a, sizeof t);
    conv_error err = {{0}};
    conv_status st = npy_parse(bytes, len, &t, &err);
    if (st != status)
        fail_msg("expected %s, got %s: %s", conv_status_name(status), conv_status_name(st), err.message);
    assert_null(t.data);
    assert_int_equal(strncmp(err.message, "npy: ", 5), 0);
    assert_message_contains(&err, needle);
}

/* A .npy file with the given version and raw header text (no padding). */
static uint8_t *build_npy(int major, const char *header, const void *data, size_t data_len, size_t *len)
{
    size_t header_len = strlen(header);
    size_t preamble = major == 1 ? 10 : 12;
    *len = preamble + header_len + data_len;
    uint8_t *bytes = malloc(*len ? *len : 1);
    assert_non_null(bytes);
    memcpy(bytes, "\x93NUMPY", 6);
    bytes[6] = (uint8_t)major;
    bytes[7] = 0;
    for (size_t i = 0; i < preamble - 8; i++) bytes[8 + i] = (uint8_t)(header_len >> (8 * i));
    memcpy(bytes + preamble, header, header_len);
    if (data_len) memcpy(bytes + preamble + header_len, data, data_len);
    return bytes;
}

static void expect_header_failure(const char *header, size_t data_len, conv_status status, const char *needle)
{
    uint8_t data[64] = {0};
    assert_true(data_len <= sizeof data);
    size_t len;
    uint8_t *bytes = build_npy(1, header, data, data_len, &len);
    expect_parse_failure(bytes, len, status, needle);
    free(bytes);
}

/* ------------------------------------------------------------ float16 */

static void test_half_to_float_exact(void **state)
{
    (void)state;
    assert_true(npy_half_to_float(0x3c00) == 1.0f);
    assert_true(npy_half_to_float(0xc000) == -2.0f);
    assert_true(npy_half_to_float(0x7bff) == 65504.0f);
    assert_true(npy_half_to_float(0x0400) == 0x1p-14f);      /* smallest normal */
    assert_true(npy_half_to_float(0x0001) == 0x1p-24f);      /* smallest subnormal */
    assert_true(npy_half_to_float(0x03ff) == 1023 * 0x1p-24f); /* largest subnormal */
    assert_true(npy_half_to_float(0x8200) == -0x1p-15f);
    assert_int_equal(float_bits(npy_half_to_float(0x8000)), 0x80000000u);
    assert_int_equal(float_bits(npy_half_to_float(0x7c00)), 0x7f800000u);
    assert_int_equal(float_bits(npy_half_to_float(0xfc00)), 0xff800000u);
    assert_int_equal(float_bits(npy_half_to_float(0x7e00)), 0x7fc00000u);
}

/* ------------------------------------------------------------ numpy fixtures */

static void test_f32_rank0(void **state)
{
    (void)state;
    conv_tensor t = parse_fixture_ok("f32_rank0.npy");
    assert_int_equal(t.rank, 0);
    assert_int_equal(conv_tensor_numel(&t), 1);
    assert_true(t.data[0] == 3.25f);
    conv_tensor_free(&t);
}

static void test_f32_rank1(void **state)
{
    (void)state;
    conv_tensor t = parse_fixture_ok("f32_rank1.npy");
    assert_int_equal(t.rank, 1);
    assert_int_equal(t.dims[0], 5);
    for (int i = 0; i < 5; i++) assert_true(t.data[i] == i * 0.5f - 1.0f);
    conv_tensor_free(&t);
}

static void test_f32_rank4(void **state)
{
    (void)state;
    conv_tensor t = parse_fixture_ok("f32_rank4.npy");
    assert_int_equal(t.rank, 4);
    int64_t dims[4] = {2, 3, 4, 5};
    for (int i = 0; i < 4; i++) assert_int_equal(t.dims[i], dims[i]);
    assert_true(((uintptr_t)t.data % CONV_ALIGNMENT) == 0);
    for (int i = 0; i < 120; i++) assert_true(t.data[i] == i * 0.25f - 7.0f);
    conv_tensor_free(&t);
}

static void test_f32_empty(void **state)
{
    (void)state;
    conv_tensor t = parse_fixture_ok("f32_empty.npy");
    assert_int_equal(t.rank, 2);
    assert_int_equal(t.dims[0], 0);
    assert_int_equal(t.dims[1], 3);
    assert_int_equal(conv_tensor_numel(&t), 0);
    conv_tensor_free(&t);
}

/* The decoded values must equal numpy's own astype(float32), bit for bit. */
static void check_against_expected(const char *npy_name, const char *expected_name)
{
    conv_tensor t = parse_fixture_ok(npy_name);
    size_t len;
    uint8_t *expected = read_fixture("npy", expected_name, &len);
    size_t numel = conv_tensor_numel(&t);
    assert_int_equal(len, numel * 4);
    for (size_t i = 0; i < numel; i++) {
        uint32_t want = (uint32_t)expected[4 * i] | (uint32_t)expected[4 * i + 1] << 8 |
                        (uint32_t)expected[4 * i + 2] << 16 | (uint32_t)expected[4 * i + 3] << 24;
        if (float_bits(t.data[i]) != want)
            fail_msg("%s element %zu: got 0x%08x, numpy gives 0x%08x", npy_name, i, float_bits(t.data[i]), want);
    }
    free(expected);
    conv_tensor_free(&t);
}

static void test_f64_converted_like_numpy(void **state)
{
    (void)state;
    check_against_expected("f64_rank2.npy", "f64_rank2.expected.f32");
}

static void test_f16_converted_like_numpy(void **state)
{
    (void)state;
    check_against_expected("f16_patterns.npy", "f16_patterns.expected.f32");
}

static void test_version_2_and_3(void **state)
{
    (void)state;
    conv_tensor t = parse_fixture_ok("v2_f32.npy");
    assert_int_equal(t.rank, 2);
    assert_int_equal(t.dims[0], 3);
    assert_int_equal(t.dims[1], 4);
    for (int i = 0; i < 12; i++) assert_true(t.data[i] == (float)i);
    conv_tensor_free(&t);

    t = parse_fixture_ok("v3_f32.npy");
    assert_int_equal(t.rank, 3);
    for (int i = 0; i < 3; i++) assert_int_equal(t.dims[i], 2);
    for (int i = 0; i < 8; i++) assert_true(t.data[i] == (float)(i - 4));
    conv_tensor_free(&t);
}

static void expect_fixture_refused(const char *name, conv_status status, const char *needle)
{
    size_t len;
    uint8_t *bytes = read_fixture("npy", name, &len);
    expect_parse_failure(bytes, len, status, needle);
    free(bytes);
}

static void test_refused_fixtures(void **state)
{
    (void)state;
    expect_fixture_refused("fortran_f32.npy", CONV_INVALID_PARAMETER,
                           "Fortran-order arrays are not supported; save with np.ascontiguousarray");
    expect_fixture_refused("int32.npy", CONV_INVALID_PARAMETER, "dtype '<i4' is not supported");
    expect_fixture_refused("big_endian_f32.npy", CONV_INVALID_PARAMETER, "dtype '>f4' is not supported");
    expect_fixture_refused("object.npy", CONV_INVALID_PARAMETER, "dtype '|O' is not supported");
    expect_fixture_refused("structured.npy", CONV_INVALID_PARAMETER,
                           "structured dtype [('a', '<f4'), ('b', '<i4')] is not supported");
    expect_fixture_refused("rank5_f32.npy", CONV_INVALID_SHAPE, "[1, 1, 1, 2, 1] has rank 5");
}

/* ------------------------------------------------------------ serialize */

static void test_serialize_matches_numpy_bytes(void **state)
{
    (void)state;
    const char *names[] = {"f32_rank0.npy", "f32_rank1.npy", "f32_rank4.npy", "f32_empty.npy"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        size_t numpy_len;
        uint8_t *numpy_bytes = read_fixture("npy", names[i], &numpy_len);
        conv_tensor t = parse_fixture_ok(names[i]);
        uint8_t *ours;
        size_t ours_len;
        conv_error err = {{0}};
        assert_int_equal(npy_serialize(&t, &ours, &ours_len, &err), CONV_OK);
        if (ours_len != numpy_len || memcmp(ours, numpy_bytes, ours_len) != 0)
            fail_msg("%s: serialized bytes differ from numpy's np.save", names[i]);
        free(ours);
        free(numpy_bytes);
        conv_tensor_free(&t);
    }
}

static void test_round_trip_every_rank(void **state)
{
    (void)state;
    const int64_t dims[CONV_MAX_RANK] = {2, 3, 1, 5};
    const float specials[] = {0.0f, -0.0f, 1e-45f, -3.5f, 3.4028235e38f, 1.0f / 0.0f, -1.0f / 0.0f, 0.0f / 0.0f};
    for (int rank = 0; rank <= CONV_MAX_RANK; rank++) {
        conv_tensor t;
        conv_error err = {{0}};
        assert_int_equal(conv_tensor_alloc(&t, rank, dims, &err), CONV_OK);
        size_t numel = conv_tensor_numel(&t);
        for (size_t i = 0; i < numel; i++)
            t.data[i] = i < 8 ? specials[i] : (float)i * 0.37f;

        uint8_t *bytes;
        size_t len;
        assert_int_equal(npy_serialize(&t, &bytes, &len, &err), CONV_OK);
        size_t data_offset = 10 + (size_t)(bytes[8] | bytes[9] << 8);
        assert_int_equal(data_offset % 64, 0);
        assert_int_equal(bytes[6], 1);
        assert_int_equal(bytes[data_offset - 1], '\n');
        assert_int_equal(len, data_offset + numel * 4);

        conv_tensor back;
        assert_int_equal(npy_parse(bytes, len, &back, &err), CONV_OK);
        assert_int_equal(back.rank, rank);
        for (int d = 0; d < rank; d++) assert_int_equal(back.dims[d], dims[d]);
        for (size_t i = 0; i < numel; i++) assert_int_equal(float_bits(back.data[i]), float_bits(t.data[i]));
        free(bytes);
        conv_tensor_free(&back);
        conv_tensor_free(&t);
    }
}

static void test_serialize_refuses_bad_tensors(void **state)
{
    (void)state;
    uint8_t *bytes;
    size_t len;
    conv_error err = {{0}};
    conv_tensor t = {.rank = 5, .dims = {1, 1, 1, 1}};
    assert_int_equal(npy_serialize(&t, &bytes, &len, &err), CONV_INVALID_SHAPE);
    assert_null(bytes);
    conv_tensor no_data = {.rank = 1, .dims = {3}, .data = NULL};
    assert_int_equal(npy_serialize(&no_data, &bytes, &len, &err), CONV_INVALID_PARAMETER);
    assert_message_contains(&err, "no data");
    conv_tensor negative = {.rank = 1, .dims = {-1}};
    assert_int_equal(npy_serialize(&negative, &bytes, &len, &err), CONV_INVALID_SHAPE);
}

/* ------------------------------------------------------------ files */

static void test_file_round_trip_and_errors(void **state)
{
    (void)state;
    char dir[] = "/tmp/convd_test_npy_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[600];
    snprintf(path, sizeof path, "%s/t.npy", dir);

    conv_tensor t;
    conv_error err = {{0}};
    const int64_t dims[2] = {2, 2};
    assert_int_equal(conv_tensor_alloc(&t, 2, dims, &err), CONV_OK);
    for (int i = 0; i < 4; i++) t.data[i] = (float)i + 0.5f;
    assert_int_equal(npy_write_file(path, &t, &err), CONV_OK);
    /* overwriting goes through a temp file + rename and must leave no temp behind */
    t.data[3] = -9.0f;
    assert_int_equal(npy_write_file(path, &t, &err), CONV_OK);
    conv_tensor back;
    assert_int_equal(npy_read_file(path, &back, &err), CONV_OK);
    assert_true(back.data[0] == 0.5f && back.data[3] == -9.0f);
    conv_tensor_free(&back);

    /* fileio's limit is checked before reading */
    uint8_t *bytes;
    size_t len;
    assert_int_equal(fileio_read_all(path, 10, &bytes, &len, &err), CONV_LIMIT_EXCEEDED);
    assert_null(bytes);
    assert_message_contains(&err, path);
    assert_int_equal(fileio_read_all(path, 143, &bytes, &len, &err), CONV_LIMIT_EXCEEDED);
    assert_int_equal(fileio_read_all(path, 144, &bytes, &len, &err), CONV_OK);
    assert_int_equal(len, 144); /* 128-byte header + 4 floats */
    assert_int_equal(bytes[6], 1);
    free(bytes);

    char listing[700];
    snprintf(listing, sizeof listing, "ls -A %s | wc -l | grep -qx 1", dir);
    assert_int_equal(system(listing), 0);

    char missing[600];
    snprintf(missing, sizeof missing, "%s/missing.npy", dir);
    assert_int_equal(npy_read_file(missing, &back, &err), CONV_INVALID_PARAMETER);
    assert_message_contains(&err, missing);
    assert_message_contains(&err, "No such file");
    assert_null(back.data);

    assert_int_equal(fileio_read_all(dir, 1000, &bytes, &len, &err), CONV_INVALID_PARAMETER);
    assert_message_contains(&err, "directory");

    char bad_dir_path[700];
    snprintf(bad_dir_path, sizeof bad_dir_path, "%s/no/such/dir/t.npy", dir);
    assert_int_equal(npy_write_file(bad_dir_path, &t, &err), CONV_INVALID_PARAMETER);
    assert_message_contains(&err, bad_dir_path);

    conv_tensor_free(&t);
    unlink(path);
    rmdir(dir);
}

/* ------------------------------------------------------------ truncation */

static void test_every_truncation_fails(void **state)
{
    (void)state;
    const char *names[] = {"f32_rank0.npy", "f32_rank4.npy", "v2_f32.npy", "v3_f32.npy", "f64_rank2.npy"};
    for (size_t f = 0; f < sizeof names / sizeof names[0]; f++) {
        size_t len;
        uint8_t *bytes = read_fixture("npy", names[f], &len);
        for (size_t prefix = 0; prefix < len; prefix++) {
            /* an exact-size copy, so the sanitizer sees any read past the end */
            uint8_t *copy = malloc(prefix ? prefix : 1);
            assert_non_null(copy);
            memcpy(copy, bytes, prefix);
            conv_tensor t;
            conv_error err = {{0}};
            conv_status st = npy_parse(copy, prefix, &t, &err);
            if (st == CONV_OK) fail_msg("%s cut to %zu of %zu bytes was accepted", names[f], prefix, len);
            assert_null(t.data);
            assert_int_equal(strncmp(err.message, "npy: ", 5), 0);
            free(copy);
        }
        free(bytes);
    }
}

/* ------------------------------------------------------------ headers */

static void test_header_variants_accepted(void **state)
{
    (void)state;
    const char *headers[] = {
        "{\"descr\": \"<f4\", \"shape\": (2,), \"fortran_order\": False}",
        "{ 'shape' : ( 2 , ) ,\t'descr':'<f4','fortran_order':False , }\n",
        "{'fortran_order': False, 'shape': (2,), 'descr': '<f4'}     \n",
        "\n {'descr': '<f4', 'fortran_order': False, 'shape': (2, ), }",
    };
    const float data[2] = {1.5f, -2.0f};
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        size_t len;
        uint8_t *bytes = build_npy(1, headers[i], data, sizeof data, &len);
        conv_tensor t;
        conv_error err = {{0}};
        conv_status st = npy_parse(bytes, len, &t, &err);
        if (st != CONV_OK) fail_msg("header %zu refused: %s", i, err.message);
        assert_int_equal(t.rank, 1);
        assert_int_equal(t.dims[0], 2);
        assert_true(t.data[0] == 1.5f && t.data[1] == -2.0f);
        conv_tensor_free(&t);
        free(bytes);
    }
    /* the same header in a 2.0 container */
    size_t len;
    uint8_t *bytes = build_npy(2, headers[0], data, sizeof data, &len);
    conv_tensor t;
    assert_int_equal(npy_parse(bytes, len, &t, NULL), CONV_OK);
    conv_tensor_free(&t);
    free(bytes);
}

static void test_malformed_headers(void **state)
{
    (void)state;
    const struct {
        const char *header;
        size_t data_len;
        conv_status status;
        const char *needle;
    } cases[] = {
        {"", 8, CONV_INVALID_PARAMETER, "header ends at byte 10"},
        {"'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", 8, CONV_INVALID_PARAMETER, "expected '{'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), ", 8, CONV_INVALID_PARAMETER, "header ends at byte"},
        {"{'descr' '<f4', 'fortran_order': False, 'shape': (2,)}", 8, CONV_INVALID_PARAMETER,
         "at byte 19: expected ':' after a key"},
        {"{'descr': '<f4' 'fortran_order': False, 'shape': (2,)}", 8, CONV_INVALID_PARAMETER,
         "expected ',' or '}'"},
        {"{'descr': '<f4', 'fortran_order': False}", 8, CONV_INVALID_PARAMETER, "no 'shape' key"},
        {"{'fortran_order': False, 'shape': (2,)}", 8, CONV_INVALID_PARAMETER, "no 'descr' key"},
        {"{'descr': '<f4', 'shape': (2,)}", 8, CONV_INVALID_PARAMETER, "no 'fortran_order' key"},
        {"{'descr': '<f4', 'order': 'C', 'fortran_order': False, 'shape': (2,)}", 8, CONV_INVALID_PARAMETER,
         "unexpected key 'order' at byte 27"},
        {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", 8, CONV_INVALID_PARAMETER,
         "duplicate key 'descr' at byte 27"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2)}", 8, CONV_INVALID_PARAMETER, "trailing comma"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': [2]}", 8, CONV_INVALID_PARAMETER, "a tuple"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,,)}", 8, CONV_INVALID_PARAMETER, "an integer"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2.0,)}", 8, CONV_INVALID_PARAMETER, "',' or ')'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, -1)}", 8, CONV_INVALID_SHAPE, "negative"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 2)}", 8, CONV_INVALID_SHAPE, "rank 5"},
        {"{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}", 8, CONV_INVALID_PARAMETER, "True or False"},
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (2,)}", 8, CONV_INVALID_PARAMETER, "Fortran-order"},
        {"{'descr': <f4, 'fortran_order': False, 'shape': (2,)}", 8, CONV_INVALID_PARAMETER, "a quoted string"},
        {"{'descr': '<f4, 'fortran_order': False, 'shape': (2,)}", 8, CONV_INVALID_PARAMETER,
         "at byte 27: expected ',' or '}' in the header dict, found 'f'"},
        {"{'descr': '<f4", 8, CONV_INVALID_PARAMETER, "string opened at byte 20 is not closed"},
        {"{'descr': '<f\\x34', 'fortran_order': False, 'shape': (2,)}", 8, CONV_INVALID_PARAMETER, "escapes"},
        {"{'descr': [('a', '<f4'), 'fortran_order': False, 'shape': (2,)}", 8, CONV_INVALID_PARAMETER,
         "list opened at byte 20 is not closed"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} x", 8, CONV_INVALID_PARAMETER,
         "unexpected text after the dict"},
        {"{'descr': 'float32', 'fortran_order': False, 'shape': (2,)}", 8, CONV_INVALID_PARAMETER,
         "dtype 'float32' is not supported"},
        {"{'descr': '<f4\x01', 'fortran_order': False, 'shape': (2,)}", 8, CONV_INVALID_PARAMETER, "dtype '<f4?'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", 4, CONV_INVALID_PARAMETER,
         "data is 4 bytes, shape [2] needs 8"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", 9, CONV_INVALID_PARAMETER,
         "data is 9 bytes, shape [2] needs 8"},
        {"{'descr': '<f2', 'fortran_order': False, 'shape': (2,)}", 8, CONV_INVALID_PARAMETER,
         "data is 8 bytes, shape [2] needs 4"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': ()}", 0, CONV_INVALID_PARAMETER,
         "data is 0 bytes, shape [] needs 4"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        print_message("case %zu: %s\n", i, cases[i].header);
        expect_header_failure(cases[i].header, cases[i].data_len, cases[i].status, cases[i].needle);
    }
}

static void test_malformed_preamble(void **state)
{
    (void)state;
    const char *header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)}";
    uint8_t data[8] = {0};
    size_t len;
    uint8_t *bytes = build_npy(1, header, data, sizeof data, &len);

    bytes[0] = 0x92;
    expect_parse_failure(bytes, len, CONV_INVALID_PARAMETER, "magic");
    bytes[0] = 0x93;
    bytes[6] = 4;
    expect_parse_failure(bytes, len, CONV_INVALID_PARAMETER, "format version 4.0 is not supported");
    bytes[6] = 1;
    bytes[7] = 1;
    expect_parse_failure(bytes, len, CONV_INVALID_PARAMETER, "format version 1.1");
    bytes[7] = 0;
    bytes[8] = 0xff; /* header length 0x..ff runs past the file */
    expect_parse_failure(bytes, len, CONV_INVALID_PARAMETER, "runs past the end");
    free(bytes);

    /* NUL padding is not Python whitespace */
    bytes = build_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} ", data, sizeof data, &len);
    bytes[len - sizeof data - 1] = '\0';
    expect_parse_failure(bytes, len, CONV_INVALID_PARAMETER, "unexpected text after the dict at byte 65");
    free(bytes);

    bytes = build_npy(2, header, data, sizeof data, &len);
    bytes[11] = 0x80; /* a 2 GiB header length in a tiny file */
    expect_parse_failure(bytes, len, CONV_INVALID_PARAMETER, "runs past the end");
    free(bytes);
}

/* ------------------------------------------------------------ limits */

static void test_overflowing_shapes(void **state)
{
    (void)state;
    /* numel fits in 64 bits but the byte size does not */
    expect_header_failure("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 8)}", 8,
                          CONV_LIMIT_EXCEEDED, "overflows");
    expect_header_failure("{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904,)}", 8,
                          CONV_LIMIT_EXCEEDED, "overflows");
    /* '<f2' data fits, its float32 copy would not */
    expect_header_failure("{'descr': '<f2', 'fortran_order': False, 'shape': (4611686018427387904,)}", 8,
                          CONV_LIMIT_EXCEEDED, "overflows");
    expect_header_failure("{'descr': '<f4', 'fortran_order': False, 'shape': (2147483648, 2147483648, 2147483648)}",
                          8, CONV_LIMIT_EXCEEDED, "overflows");
    expect_header_failure("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}", 8,
                          CONV_LIMIT_EXCEEDED, "does not fit in 64 bits");
    expect_header_failure("{'descr': '<f4', 'fortran_order': False, 'shape': (9223372036854775808,)}", 8,
                          CONV_LIMIT_EXCEEDED, "does not fit in 64 bits");
    /* large but representable: refused by the data length, before allocating */
    expect_header_failure("{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776,)}", 8,
                          CONV_INVALID_PARAMETER, "data is 8 bytes, shape [1099511627776] needs 4398046511104");
}

static void test_element_limit(void **state)
{
    (void)state;
    size_t len;
    uint8_t *bytes = read_fixture("npy", "f32_rank4.npy", &len);
    conv_tensor t;
    conv_error err = {{0}};
    assert_int_equal(npy_parse_limited(bytes, len, 119, &t, &err), CONV_LIMIT_EXCEEDED);
    assert_message_contains(&err, "120 elements, more than the limit of 119");
    assert_null(t.data);
    assert_int_equal(npy_parse_limited(bytes, len, 120, &t, &err), CONV_OK);
    conv_tensor_free(&t);
    free(bytes);

    /* the limit applies before the data length is even looked at */
    bytes = build_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000,)}", NULL, 0, &len);
    assert_int_equal(npy_parse_limited(bytes, len, 1000, &t, &err), CONV_LIMIT_EXCEEDED);
    assert_message_contains(&err, "more than the limit of 1000");
    free(bytes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_half_to_float_exact),
        cmocka_unit_test(test_f32_rank0),
        cmocka_unit_test(test_f32_rank1),
        cmocka_unit_test(test_f32_rank4),
        cmocka_unit_test(test_f32_empty),
        cmocka_unit_test(test_f64_converted_like_numpy),
        cmocka_unit_test(test_f16_converted_like_numpy),
        cmocka_unit_test(test_version_2_and_3),
        cmocka_unit_test(test_refused_fixtures),
        cmocka_unit_test(test_serialize_matches_numpy_bytes),
        cmocka_unit_test(test_round_trip_every_rank),
        cmocka_unit_test(test_serialize_refuses_bad_tensors),
        cmocka_unit_test(test_file_round_trip_and_errors),
        cmocka_unit_test(test_every_truncation_fails),
        cmocka_unit_test(test_header_variants_accepted),
        cmocka_unit_test(test_malformed_headers),
        cmocka_unit_test(test_malformed_preamble),
        cmocka_unit_test(test_overflowing_shapes),
        cmocka_unit_test(test_element_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
