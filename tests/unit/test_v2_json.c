/* test_v2_json.c — Open Inference Protocol bodies: binary framing errors,
 * datatype conversions and the reply layout (proto/v2_json.c). */
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
#include "proto/v2_json.h"

#define MAX_ELEMS ((size_t)1 << 20)

/* body = json text followed by n_bin bytes of bin */
static uint8_t *make_body(const char *json, const void *bin, size_t n_bin, size_t *len)
{
    size_t lj = strlen(json);
    uint8_t *b = malloc(lj + n_bin + 1);
    assert_non_null(b);
    memcpy(b, json, lj);
    if (n_bin) memcpy(b + lj, bin, n_bin);
    *len = lj + n_bin;
    return b;
}

static conv_status parse(const char *json, const void *bin, size_t n_bin, v2_request *r, conv_error *err)
{
    size_t len;
    uint8_t *b = make_body(json, bin, n_bin, &len);
    conv_status s = v2_request_parse(b, len, strlen(json), MAX_ELEMS, r, err);
    free(b);
    return s;
}

static void test_header_length(void **state)
{
    (void)state;
    conv_error err;
    size_t n;
    assert_int_equal(v2_header_length(NULL, 40, &n, &err), CONV_OK);
    assert_int_equal(n, 40);
    assert_int_equal(v2_header_length("12", 40, &n, &err), CONV_OK);
    assert_int_equal(n, 12);
    assert_int_equal(v2_header_length("0", 40, &n, &err), CONV_OK);
    assert_int_equal(n, 0);
    assert_int_equal(v2_header_length("40", 40, &n, &err), CONV_OK);
    assert_int_equal(v2_header_length("41", 40, &n, &err), CONV_INVALID_PARAMETER);
    assert_non_null(strstr(err.message, "larger than the body"));
    assert_int_equal(v2_header_length("-1", 40, &n, &err), CONV_INVALID_PARAMETER);
    assert_int_equal(v2_header_length("", 40, &n, &err), CONV_INVALID_PARAMETER);
    assert_int_equal(v2_header_length("12abc", 40, &n, &err), CONV_INVALID_PARAMETER);
    assert_int_equal(v2_header_length("99999999999999999999999999", 40, &n, &err), CONV_INVALID_PARAMETER);
}

static void test_json_input_nested_and_flat(void **state)
{
    (void)state;
    v2_request r;
    conv_error err;
    assert_int_equal(parse("{\"id\":\"a\",\"inputs\":[{\"name\":\"input\",\"shape\":[1,1,2,2],\"datatype\":\"FP32\","
                           "\"data\":[[1.5,2],[3,-4]]}]}",
                           NULL, 0, &r, &err),
                     CONV_OK);
    assert_string_equal(r.id, "a");
    assert_int_equal(r.n_inputs, 1);
    assert_int_equal(r.inputs[0].tensor.rank, 4);
    assert_true(r.inputs[0].tensor.data[0] == 1.5f && r.inputs[0].tensor.data[3] == -4.0f);
    assert_false(r.outputs_named);
    v2_request_free(&r);

    assert_int_equal(parse("{\"inputs\":[{\"name\":\"x\",\"shape\":[3],\"datatype\":\"FP32\",\"data\":[1,2]}]}", NULL,
                           0, &r, &err),
                     CONV_INVALID_PARAMETER);
    assert_non_null(strstr(err.message, "2 values, but shape holds 3"));
    assert_int_equal(parse("{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1,2]}]}", NULL,
                           0, &r, &err),
                     CONV_INVALID_PARAMETER);
    assert_int_equal(parse("{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[\"a\"]}]}", NULL,
                           0, &r, &err),
                     CONV_INVALID_PARAMETER);
    assert_int_equal(parse("{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1e300]}]}", NULL,
                           0, &r, &err),
                     CONV_INVALID_PARAMETER);
    assert_non_null(strstr(err.message, "float32's range"));
}

static void test_json_integer_types(void **state)
{
    (void)state;
    v2_request r;
    conv_error err;
    assert_int_equal(parse("{\"inputs\":[{\"name\":\"x\",\"shape\":[3],\"datatype\":\"INT64\",\"data\":[-16777216,0,16777216]}]}",
                           NULL, 0, &r, &err),
                     CONV_OK);
    assert_true(r.inputs[0].tensor.data[0] == -16777216.0f && r.inputs[0].tensor.data[2] == 16777216.0f);
    v2_request_free(&r);
    assert_int_equal(parse("{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"INT64\",\"data\":[16777217]}]}",
                           NULL, 0, &r, &err),
                     CONV_INVALID_PARAMETER);
    assert_non_null(strstr(err.message, "2^24"));
    assert_int_equal(parse("{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"UINT8\",\"data\":[256]}]}", NULL, 0,
                           &r, &err),
                     CONV_INVALID_PARAMETER);
    assert_int_equal(parse("{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"INT8\",\"data\":[1.5]}]}", NULL, 0,
                           &r, &err),
                     CONV_INVALID_PARAMETER);
    assert_int_equal(parse("{\"inputs\":[{\"name\":\"x\",\"shape\":[2],\"datatype\":\"BOOL\",\"data\":[true,false]}]}",
                           NULL, 0, &r, &err),
                     CONV_OK);
    assert_true(r.inputs[0].tensor.data[0] == 1.0f && r.inputs[0].tensor.data[1] == 0.0f);
    v2_request_free(&r);
    assert_int_equal(parse("{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"BYTES\",\"data\":[\"a\"]}]}", NULL,
                           0, &r, &err),
                     CONV_INVALID_PARAMETER);
    assert_non_null(strstr(err.message, "BYTES"));
    assert_int_equal(parse("{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP8\",\"data\":[1]}]}", NULL, 0,
                           &r, &err),
                     CONV_INVALID_PARAMETER);
}

static void test_binary_conversions(void **state)
{
    (void)state;
    conv_error err;
    float out[4];
    /* FP16: 1.0, -2.0, 65504 (max), smallest subnormal */
    uint16_t h[4] = {0x3c00, 0xc000, 0x7bff, 0x0001};
    assert_int_equal(v2_convert_binary(V2_FP16, (const uint8_t *)h, 4, out, "x", &err), CONV_OK);
    assert_true(out[0] == 1.0f && out[1] == -2.0f && out[2] == 65504.0f && out[3] == ldexpf(1.0f, -24));
    uint16_t bf[1] = {0x3fc0}; /* 1.5 */
    assert_int_equal(v2_convert_binary(V2_BF16, (const uint8_t *)bf, 1, out, "x", &err), CONV_OK);
    assert_true(out[0] == 1.5f);
    double d[2] = {0.1, -3.0};
    assert_int_equal(v2_convert_binary(V2_FP64, (const uint8_t *)d, 2, out, "x", &err), CONV_OK);
    assert_true(out[0] == 0.1f && out[1] == -3.0f);
    double huge = 1e40;
    assert_int_equal(v2_convert_binary(V2_FP64, (const uint8_t *)&huge, 1, out, "x", &err), CONV_INVALID_PARAMETER);
    int64_t i64[2] = {-16777216, 16777217};
    assert_int_equal(v2_convert_binary(V2_INT64, (const uint8_t *)i64, 1, out, "x", &err), CONV_OK);
    assert_true(out[0] == -16777216.0f);
    assert_int_equal(v2_convert_binary(V2_INT64, (const uint8_t *)i64, 2, out, "x", &err), CONV_INVALID_PARAMETER);
    assert_non_null(strstr(err.message, "x[1]"));
    int8_t i8[2] = {-128, 127};
    assert_int_equal(v2_convert_binary(V2_INT8, (const uint8_t *)i8, 2, out, "x", &err), CONV_OK);
    assert_true(out[0] == -128.0f && out[1] == 127.0f);
    uint32_t u32 = 4000000000u;
    assert_int_equal(v2_convert_binary(V2_UINT32, (const uint8_t *)&u32, 1, out, "x", &err), CONV_INVALID_PARAMETER);
    uint8_t b[2] = {1, 2};
    assert_int_equal(v2_convert_binary(V2_BOOL, b, 2, out, "x", &err), CONV_INVALID_PARAMETER);
}

static void test_binary_framing(void **state)
{
    (void)state;
    v2_request r;
    conv_error err;
    float f[2] = {1.25f, -7.0f};
    const char *json = "{\"inputs\":[{\"name\":\"input\",\"shape\":[2],\"datatype\":\"FP32\","
                       "\"parameters\":{\"binary_data_size\":8}},"
                       "{\"name\":\"b\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[3]}],"
                       "\"outputs\":[{\"name\":\"output\",\"parameters\":{\"binary_data\":true}}]}";
    assert_int_equal(parse(json, f, 8, &r, &err), CONV_OK);
    assert_true(r.inputs[0].was_binary && !r.inputs[1].was_binary);
    assert_true(r.inputs[0].tensor.data[1] == -7.0f && r.inputs[1].tensor.data[0] == 3.0f);
    assert_true(r.outputs_named && r.n_outputs == 1 && r.outputs[0].binary);
    v2_request_free(&r);
    /* missing bytes */
    assert_int_equal(parse(json, f, 7, &r, &err), CONV_INVALID_PARAMETER);
    assert_non_null(strstr(err.message, "only 7 are left"));
    /* extra bytes */
    float g[3] = {1, 2, 3};
    assert_int_equal(parse(json, g, 12, &r, &err), CONV_INVALID_PARAMETER);
    assert_non_null(strstr(err.message, "4 bytes after the JSON header"));
    /* binary_data_size that does not match the shape */
    assert_int_equal(parse("{\"inputs\":[{\"name\":\"input\",\"shape\":[2],\"datatype\":\"FP64\","
                           "\"parameters\":{\"binary_data_size\":8}}]}",
                           f, 8, &r, &err),
                     CONV_INVALID_PARAMETER);
    assert_non_null(strstr(err.message, "need 16"));
    /* a JSON length past the body */
    uint8_t body[4] = "{}  ";
    assert_int_equal(v2_request_parse(body, 4, 5, MAX_ELEMS, &r, &err), CONV_INVALID_PARAMETER);
    /* the JSON part cut in the middle */
    size_t len;
    uint8_t *b = make_body(json, f, 8, &len);
    assert_int_equal(v2_request_parse(b, len, 10, MAX_ELEMS, &r, &err), CONV_INVALID_PARAMETER);
    free(b);
    /* over the element limit */
    assert_int_equal(parse("{\"inputs\":[{\"name\":\"x\",\"shape\":[1024,1024,2],\"datatype\":\"FP32\",\"data\":[]}]}",
                           NULL, 0, &r, &err),
                     CONV_LIMIT_EXCEEDED);
    /* request-level binary_data_output is the default of named outputs */
    assert_int_equal(parse("{\"parameters\":{\"binary_data_output\":true},\"inputs\":[{\"name\":\"x\",\"shape\":[1],"
                           "\"datatype\":\"FP32\",\"data\":[1]}],\"outputs\":[{\"name\":\"output\"}]}",
                           NULL, 0, &r, &err),
                     CONV_OK);
    assert_true(r.binary_data_output && r.outputs[0].binary);
    v2_request_free(&r);
}

static void test_response_layout(void **state)
{
    (void)state;
    conv_error err;
    int64_t dims[2] = {1, 3};
    float data[3] = {0.5f, -1.0f, 2.0f};
    v2_output o = {.name = "output", .rank = 2, .dims = dims, .data = data, .binary = true};
    uint8_t *body;
    size_t len, json_len;
    assert_int_equal(v2_response_build("m", "1", "r1", json_pack("{s:i}", "convd_flops", 6), &o, 1, &body, &len,
                                       &json_len, &err),
                     CONV_OK);
    assert_int_equal(len, json_len + sizeof data);
    assert_memory_equal(body + json_len, data, sizeof data);
    json_t *doc = json_loadb((const char *)body, json_len, 0, NULL);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "id")), "r1");
    json_t *out0 = json_array_get(json_object_get(doc, "outputs"), 0);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(out0, "parameters"), "binary_data_size")), 12);
    assert_null(json_object_get(out0, "data"));
    json_decref(doc);
    free(body);

    float odd[3] = {1.0f, NAN, 0.1f};
    o.binary = false;
    o.data = odd;
    assert_int_equal(v2_response_build("m", "1", NULL, NULL, &o, 1, &body, &len, &json_len, &err), CONV_OK);
    assert_int_equal(len, json_len);
    doc = json_loadb((const char *)body, len, 0, NULL);
    assert_non_null(doc);
    assert_null(json_object_get(doc, "id"));
    json_t *d = json_object_get(json_array_get(json_object_get(doc, "outputs"), 0), "data");
    assert_int_equal(json_array_size(d), 3);
    assert_true(json_is_null(json_array_get(d, 1)));
    assert_true((float)json_real_value(json_array_get(d, 2)) == 0.1f);
    json_decref(doc);
    free(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_length),       cmocka_unit_test(test_json_input_nested_and_flat),
        cmocka_unit_test(test_json_integer_types),  cmocka_unit_test(test_binary_conversions),
        cmocka_unit_test(test_binary_framing),      cmocka_unit_test(test_response_layout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
