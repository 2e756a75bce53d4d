/* test_model_json.c — model.json parsing (every argument form, default and
 * error message), layer_spec_to_json round trips, and model folders loaded
 * from disk and from buffers with hand-built safetensors. */
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
#include "proto/model_dir.h"
#include "proto/model_json.h"

/* ------------------------------------------------------------ helpers */

static void assert_contains(const char *message, const char *needle)
{
    if (!strstr(message, needle)) fail_msg("message \"%s\" lacks \"%s\"", message, needle);
}

static void assert_spec_equal(const conv_layer_spec *a, const conv_layer_spec *b)
{
#define SAME(field)                                                                                  \
    if (a->field != b->field)                                                                        \
        fail_msg("%s differs: %lld vs %lld", #field, (long long)a->field, (long long)b->field);
    SAME(type) SAME(in_channels) SAME(out_channels) SAME(kernel_size[0]) SAME(kernel_size[1]) SAME(stride[0])
    SAME(stride[1]) SAME(padding[0]) SAME(padding[1]) SAME(dilation[0]) SAME(dilation[1]) SAME(padding_kind)
    SAME(padding_mode) SAME(groups) SAME(depth_multiplier) SAME(bias) SAME(algorithm) SAME(num_features)
    SAME(affine) SAME(ceil_mode) SAME(count_include_pad) SAME(divisor_override)
#undef SAME
    if (a->eps != b->eps) fail_msg("eps differs: %.17g vs %.17g", a->eps, b->eps);
}

/* Parses {"layers": [layer]} and returns its only spec. */
static conv_layer_spec parse_layer(const char *layer)
{
    char text[2048];
    snprintf(text, sizeof text, "{\"layers\": [%s]}", layer);
    model_json m;
    conv_error err = {{0}};
    conv_status st = model_json_parse(text, strlen(text), &m, &err);
    if (st != CONV_OK) fail_msg("%s: %s", layer, err.message);
    assert_int_equal(m.n_layers, 1);
    conv_layer_spec spec = m.layers[0];
    model_json_free(&m);
    return spec;
}

static void expect_doc_error(const char *text, conv_status status, const char *needle)
{
    model_json m;
    memset(&m, 0x5a, sizeof m);
    conv_error err = {{0}};
    conv_status st = model_json_parse(text, strlen(text), &m, &err);
    if (st != status)
        fail_msg("%s: expected %s, got %s (%s)", text, conv_status_name(status), conv_status_name(st), err.message);
    /* a failed parse leaves nothing to free */
    assert_null(m.layers);
    assert_int_equal(m.n_layers, 0);
    assert_contains(err.message, needle);
}

static void expect_layer_error(const char *layer, conv_status status, const char *needle)
{
    char text[2048];
    snprintf(text, sizeof text, "{\"layers\": [%s]}", layer);
    expect_doc_error(text, status, needle);
}

static conv_layer_spec init_spec(conv_layer_type type)
{
    conv_layer_spec s;
    conv_layer_spec_init(&s, type);
    return s;
}

/* ------------------------------------------------------------ defaults and forms */

static void test_defaults(void **state)
{
    (void)state;
    conv_layer_spec want = init_spec(CONV_LAYER_CONV2D);
    want.in_channels = 3;
    want.out_channels = 8;
    want.kernel_size[0] = want.kernel_size[1] = 3;
    conv_layer_spec got = parse_layer("{\"type\": \"Conv2d\", \"in_channels\": 3, \"out_channels\": 8, \"kernel_size\": 3}");
    assert_spec_equal(&got, &want);

    want = init_spec(CONV_LAYER_SEPARABLE_CONV2D);
    want.in_channels = 4;
    want.out_channels = 6;
    want.kernel_size[0] = want.kernel_size[1] = 5;
    got = parse_layer("{\"type\": \"SeparableConv2d\", \"in_channels\": 4, \"out_channels\": 6, \"kernel_size\": 5}");
    assert_spec_equal(&got, &want);

    want = init_spec(CONV_LAYER_BATCHNORM2D);
    want.num_features = 16;
    got = parse_layer("{\"type\": \"BatchNorm2d\", \"num_features\": 16}");
    assert_spec_equal(&got, &want);
    assert_true(got.eps == 1e-5 && got.affine);

    want = init_spec(CONV_LAYER_RELU);
    got = parse_layer("{\"type\": \"ReLU\"}");
    assert_spec_equal(&got, &want);
    want = init_spec(CONV_LAYER_RELU6);
    got = parse_layer("{\"type\": \"ReLU6\"}");
    assert_spec_equal(&got, &want);

    want = init_spec(CONV_LAYER_MAXPOOL2D);
    want.kernel_size[0] = want.kernel_size[1] = 2;
    got = parse_layer("{\"type\": \"MaxPool2d\", \"kernel_size\": 2}");
    assert_spec_equal(&got, &want);
    assert_int_equal(got.stride[0], 0); /* None: the kernel size */

    want = init_spec(CONV_LAYER_AVGPOOL2D);
    want.kernel_size[0] = want.kernel_size[1] = 3;
    got = parse_layer("{\"type\": \"AvgPool2d\", \"kernel_size\": 3}");
    assert_spec_equal(&got, &want);
    assert_true(got.count_include_pad);
    assert_int_equal(got.divisor_override, 0);
}

static void test_conv_arguments(void **state)
{
    (void)state;
    conv_layer_spec s = parse_layer("{\"type\": \"Conv2d\", \"in_channels\": 4, \"out_channels\": 6, "
                                    "\"kernel_size\": [3, 5], \"stride\": [2, 1], \"padding\": [1, 2], "
                                    "\"dilation\": [1, 2], \"groups\": 2, \"bias\": false, "
                                    "\"padding_mode\": \"reflect\", \"algorithm\": \"direct\"}");
    assert_int_equal(s.type, CONV_LAYER_CONV2D);
    assert_int_equal(s.in_channels, 4);
    assert_int_equal(s.out_channels, 6);
    assert_int_equal(s.kernel_size[0], 3);
    assert_int_equal(s.kernel_size[1], 5);
    assert_int_equal(s.stride[0], 2);
    assert_int_equal(s.stride[1], 1);
    assert_int_equal(s.padding_kind, CONV_PADDING_EXPLICIT);
    assert_int_equal(s.padding[0], 1);
    assert_int_equal(s.padding[1], 2);
    assert_int_equal(s.dilation[0], 1);
    assert_int_equal(s.dilation[1], 2);
    assert_int_equal(s.groups, 2);
    assert_false(s.bias);
    assert_int_equal(s.padding_mode, CONV_PAD_REFLECT);
    assert_int_equal(s.algorithm, CONV_ALGO_DIRECT);

    s = parse_layer("{\"type\": \"Conv2d\", \"in_channels\": 1, \"out_channels\": 1, \"kernel_size\": 3, "
                    "\"stride\": 2, \"padding\": 2, \"dilation\": 3, \"padding_mode\": \"replicate\", "
                    "\"algorithm\": \"auto\"}");
    assert_int_equal(s.stride[0], 2);
    assert_int_equal(s.stride[1], 2);
    assert_int_equal(s.padding[0], 2);
    assert_int_equal(s.padding[1], 2);
    assert_int_equal(s.dilation[0], 3);
    assert_int_equal(s.dilation[1], 3);
    assert_int_equal(s.padding_mode, CONV_PAD_REPLICATE);
    assert_int_equal(s.algorithm, CONV_ALGO_AUTO);

    s = parse_layer("{\"type\": \"Conv2d\", \"in_channels\": 1, \"out_channels\": 1, \"kernel_size\": 3, "
                    "\"padding\": \"same\", \"padding_mode\": \"circular\"}");
    assert_int_equal(s.padding_kind, CONV_PADDING_SAME);
    assert_int_equal(s.padding_mode, CONV_PAD_CIRCULAR);

    s = parse_layer("{\"type\": \"Conv2d\", \"in_channels\": 1, \"out_channels\": 1, \"kernel_size\": 3, "
                    "\"padding\": \"valid\", \"padding_mode\": \"zeros\"}");
    assert_int_equal(s.padding_kind, CONV_PADDING_VALID);
    assert_int_equal(s.padding[0], 0);
    assert_int_equal(s.padding[1], 0);
    assert_int_equal(s.padding_mode, CONV_PAD_ZEROS);

    s = parse_layer("{\"type\": \"SeparableConv2d\", \"in_channels\": 3, \"out_channels\": 7, \"kernel_size\": [3, 1], "
                    "\"stride\": 1, \"padding\": \"same\", \"dilation\": [2, 1], \"depth_multiplier\": 2, "
                    "\"bias\": false, \"padding_mode\": \"reflect\", \"algorithm\": \"fused_separable\"}");
    assert_int_equal(s.type, CONV_LAYER_SEPARABLE_CONV2D);
    assert_int_equal(s.kernel_size[0], 3);
    assert_int_equal(s.kernel_size[1], 1);
    assert_int_equal(s.padding_kind, CONV_PADDING_SAME);
    assert_int_equal(s.dilation[0], 2);
    assert_int_equal(s.dilation[1], 1);
    assert_int_equal(s.depth_multiplier, 2);
    assert_false(s.bias);
    assert_int_equal(s.padding_mode, CONV_PAD_REFLECT);
    assert_int_equal(s.algorithm, CONV_ALGO_FUSED_SEPARABLE);
    assert_int_equal(s.groups, 1); /* untouched: not a SeparableConv2d argument */
}

static void test_other_layer_arguments(void **state)
{
    (void)state;
    conv_layer_spec s = parse_layer("{\"type\": \"BatchNorm2d\", \"num_features\": 8, \"eps\": 0.001, "
                                    "\"momentum\": null, \"affine\": false, \"track_running_stats\": true}");
    assert_int_equal(s.num_features, 8);
    assert_true(s.eps == 0.001);
    assert_false(s.affine);
    s = parse_layer("{\"type\": \"BatchNorm2d\", \"num_features\": 8, \"eps\": 1, \"momentum\": 0.1}");
    assert_true(s.eps == 1.0); /* an integer is a number too */

    s = parse_layer("{\"type\": \"ReLU\", \"inplace\": true}");
    assert_int_equal(s.type, CONV_LAYER_RELU);
    s = parse_layer("{\"type\": \"ReLU6\", \"inplace\": false}");
    assert_int_equal(s.type, CONV_LAYER_RELU6);

    s = parse_layer("{\"type\": \"MaxPool2d\", \"kernel_size\": [3, 2], \"stride\": null, \"padding\": [1, 1], "
                    "\"dilation\": 2, \"ceil_mode\": true, \"return_indices\": false}");
    assert_int_equal(s.kernel_size[0], 3);
    assert_int_equal(s.kernel_size[1], 2);
    assert_int_equal(s.stride[0], 0);
    assert_int_equal(s.stride[1], 0);
    assert_int_equal(s.padding[0], 1);
    assert_int_equal(s.padding[1], 1);
    assert_int_equal(s.dilation[0], 2);
    assert_int_equal(s.dilation[1], 2);
    assert_true(s.ceil_mode);
    s = parse_layer("{\"type\": \"MaxPool2d\", \"kernel_size\": 3, \"stride\": [2, 1]}");
    assert_int_equal(s.stride[0], 2);
    assert_int_equal(s.stride[1], 1);
    s = parse_layer("{\"type\": \"MaxPool2d\", \"kernel_size\": 3, \"stride\": 1}");
    assert_int_equal(s.stride[0], 1);
    assert_int_equal(s.stride[1], 1);

    s = parse_layer("{\"type\": \"AvgPool2d\", \"kernel_size\": 3, \"stride\": 2, \"padding\": 1, "
                    "\"ceil_mode\": true, \"count_include_pad\": false, \"divisor_override\": 5}");
    assert_int_equal(s.stride[0], 2);
    assert_int_equal(s.padding[1], 1);
    assert_true(s.ceil_mode);
    assert_false(s.count_include_pad);
    assert_int_equal(s.divisor_override, 5);
    s = parse_layer("{\"type\": \"AvgPool2d\", \"kernel_size\": 2, \"stride\": null, \"divisor_override\": null}");
    assert_int_equal(s.stride[0], 0);
    assert_int_equal(s.divisor_override, 0);
}

static void test_document(void **state)
{
    (void)state;
    const char *text = "{\"name\": \"tiny\", \"description\": \"two layers\", \"input\": {\"shape\": [2, 3, 32, 24]},\n"
                       " \"layers\": [{\"type\": \"Conv2d\", \"in_channels\": 3, \"out_channels\": 4, \"kernel_size\": 3},\n"
                       "            {\"type\": \"ReLU\"}]}  trailing ignored";
    size_t len = strstr(text, "  trailing") - text; /* only len bytes are read */
    model_json m;
    conv_error err = {{0}};
    conv_status st = model_json_parse(text, len, &m, &err);
    if (st) fail_msg("%s", err.message);
    assert_string_equal(m.name, "tiny");
    assert_true(m.has_input_shape);
    const int64_t shape[4] = {2, 3, 32, 24};
    for (int i = 0; i < 4; i++) assert_int_equal(m.input_shape[i], shape[i]);
    assert_int_equal(m.n_layers, 2);
    assert_int_equal(m.layers[0].type, CONV_LAYER_CONV2D);
    assert_int_equal(m.layers[1].type, CONV_LAYER_RELU);
    model_json_free(&m);
    assert_null(m.layers);
    model_json_free(&m); /* twice is harmless */

    /* no name, no input */
    const char *bare = "{\"layers\": [{\"type\": \"ReLU\"}]}";
    assert_int_equal(model_json_parse(bare, strlen(bare), &m, NULL), CONV_OK);
    assert_string_equal(m.name, "");
    assert_false(m.has_input_shape);
    model_json_free(&m);

    /* the jansson entry point, as the server uses it */
    json_t *root = json_pack("{s:s, s:[{s:s, s:i}]}", "name", "v", "layers", "type", "MaxPool2d", "kernel_size", 2);
    assert_non_null(root);
    assert_int_equal(model_json_from_value(root, &m, &err), CONV_OK);
    assert_string_equal(m.name, "v");
    assert_int_equal(m.layers[0].kernel_size[1], 2);
    model_json_free(&m);
    json_decref(root);

    /* the limits themselves are accepted */
    char name[200];
    memset(name, 'n', 127);
    name[127] = '\0';
    char doc[400];
    snprintf(doc, sizeof doc, "{\"name\": \"%s\", \"layers\": [{\"type\": \"ReLU\"}]}", name);
    assert_int_equal(model_json_parse(doc, strlen(doc), &m, &err), CONV_OK);
    assert_int_equal(strlen(m.name), 127);
    model_json_free(&m);
}

static char *many_layers(size_t n)
{
    const char *layer = "{\"type\": \"ReLU\"},";
    size_t cap = 32 + n * strlen(layer);
    char *text = malloc(cap);
    assert_non_null(text);
    strcpy(text, "{\"layers\": [");
    size_t used = strlen(text);
    for (size_t i = 0; i < n; i++) {
        memcpy(text + used, layer, strlen(layer));
        used += strlen(layer);
    }
    strcpy(text + used - 1, "]}");
    return text;
}

static void test_layer_count_limit(void **state)
{
    (void)state;
    char *text = many_layers(MODEL_JSON_MAX_LAYERS);
    model_json m;
    conv_error err = {{0}};
    assert_int_equal(model_json_parse(text, strlen(text), &m, &err), CONV_OK);
    assert_int_equal(m.n_layers, MODEL_JSON_MAX_LAYERS);
    model_json_free(&m);
    free(text);
    text = many_layers(MODEL_JSON_MAX_LAYERS + 1);
    expect_doc_error(text, CONV_LIMIT_EXCEEDED, "layers: has 1025 layers, more than the limit of 1024");
    free(text);
}

/* ------------------------------------------------------------ errors */

static void test_messages_quoted_in_the_spec(void **state)
{
    (void)state;
    model_json m;
    conv_error err = {{0}};
    const char *text = "{\"layers\": [{\"type\": \"ReLU\"}, {\"type\": \"Conv3d\"}]}";
    assert_int_equal(model_json_parse(text, strlen(text), &m, &err), CONV_INVALID_PARAMETER);
    assert_string_equal(err.message, "layers[1].type: unknown layer type \"Conv3d\" (expected one of Conv2d, "
                                     "SeparableConv2d, BatchNorm2d, ReLU, ReLU6, MaxPool2d, AvgPool2d)");
    expect_layer_error("{\"type\": \"Conv2d\", \"in_channels\": 3, \"out_channels\": 4, \"kernal_size\": 3}",
                       CONV_INVALID_PARAMETER, "layers[0]: unknown argument \"kernal_size\" for Conv2d");
    expect_layer_error("{\"type\": \"Conv2d\", \"out_channels\": 4, \"kernel_size\": 3}", CONV_INVALID_PARAMETER,
                       "layers[0].in_channels: required for Conv2d");
    text = "{\"layers\": [{\"type\": \"ReLU\"}, {\"type\": \"ReLU\"}, "
           "{\"type\": \"Conv2d\", \"in_channels\": 3, \"out_channels\": 4, \"kernel_size\": 3.0}]}";
    assert_int_equal(model_json_parse(text, strlen(text), &m, &err), CONV_INVALID_PARAMETER);
    assert_string_equal(err.message,
                        "layers[2].kernel_size: must be a positive integer or a list of 2 positive integers");
}

typedef struct error_case {
    const char *layer;
    conv_status status;
    const char *needle;
} error_case;

#define CONV3(extra) "{\"type\": \"Conv2d\", \"in_channels\": 4, \"out_channels\": 4, \"kernel_size\": 3" extra "}"
#define SEP3(extra) "{\"type\": \"SeparableConv2d\", \"in_channels\": 4, \"out_channels\": 4, \"kernel_size\": 3" extra "}"
#define BN(extra) "{\"type\": \"BatchNorm2d\", \"num_features\": 4" extra "}"
#define MAXP(extra) "{\"type\": \"MaxPool2d\", \"kernel_size\": 3" extra "}"
#define AVGP(extra) "{\"type\": \"AvgPool2d\", \"kernel_size\": 3" extra "}"

static const error_case layer_errors[] = {
    /* the layer object and its type */
    {"3", CONV_INVALID_PARAMETER, "layers[0]: must be an object"},
    {"[]", CONV_INVALID_PARAMETER, "layers[0]: must be an object"},
    {"{\"in_channels\": 3}", CONV_INVALID_PARAMETER, "layers[0].type: required"},
    {"{\"type\": 3}", CONV_INVALID_PARAMETER, "layers[0].type: must be a string"},
    {"{\"type\": \"conv2d\"}", CONV_INVALID_PARAMETER, "layers[0].type: unknown layer type \"conv2d\""},
    /* unknown and refused arguments */
    {CONV3(", \"device\": \"cuda\""), CONV_INVALID_PARAMETER, "layers[0]: argument \"device\" is not accepted"},
    {CONV3(", \"dtype\": \"float16\""), CONV_INVALID_PARAMETER, "layers[0]: argument \"dtype\" is not accepted"},
    {CONV3(", \"depth_multiplier\": 2"), CONV_INVALID_PARAMETER, "unknown argument \"depth_multiplier\" for Conv2d"},
    {SEP3(", \"groups\": 2"), CONV_INVALID_PARAMETER, "unknown argument \"groups\" for SeparableConv2d"},
    {AVGP(", \"dilation\": 1"), CONV_INVALID_PARAMETER, "unknown argument \"dilation\" for AvgPool2d"},
    {"{\"type\": \"ReLU\", \"negative_slope\": 0.1}", CONV_INVALID_PARAMETER,
     "layers[0]: unknown argument \"negative_slope\" for ReLU"},
    {BN(", \"weight\": [1]"), CONV_INVALID_PARAMETER, "unknown argument \"weight\" for BatchNorm2d"},
    /* required arguments */
    {"{\"type\": \"Conv2d\", \"in_channels\": 4, \"kernel_size\": 3}", CONV_INVALID_PARAMETER,
     "layers[0].out_channels: required for Conv2d"},
    {"{\"type\": \"Conv2d\", \"in_channels\": 4, \"out_channels\": 4}", CONV_INVALID_PARAMETER,
     "layers[0].kernel_size: required for Conv2d"},
    {"{\"type\": \"SeparableConv2d\", \"in_channels\": 4, \"out_channels\": 4}", CONV_INVALID_PARAMETER,
     "layers[0].kernel_size: required for SeparableConv2d"},
    {"{\"type\": \"BatchNorm2d\"}", CONV_INVALID_PARAMETER, "layers[0].num_features: required for BatchNorm2d"},
    {"{\"type\": \"MaxPool2d\"}", CONV_INVALID_PARAMETER, "layers[0].kernel_size: required for MaxPool2d"},
    {"{\"type\": \"AvgPool2d\", \"stride\": 2}", CONV_INVALID_PARAMETER, "layers[0].kernel_size: required for AvgPool2d"},
    /* integers must be JSON integers */
    {"{\"type\": \"Conv2d\", \"in_channels\": 4.0, \"out_channels\": 4, \"kernel_size\": 3}", CONV_INVALID_PARAMETER,
     "layers[0].in_channels: must be an integer"},
    {"{\"type\": \"Conv2d\", \"in_channels\": \"4\", \"out_channels\": 4, \"kernel_size\": 3}", CONV_INVALID_PARAMETER,
     "layers[0].in_channels: must be an integer"},
    {"{\"type\": \"Conv2d\", \"in_channels\": 4, \"out_channels\": true, \"kernel_size\": 3}", CONV_INVALID_PARAMETER,
     "layers[0].out_channels: must be an integer"},
    {CONV3(", \"groups\": 2.5"), CONV_INVALID_PARAMETER, "layers[0].groups: must be an integer"},
    {CONV3(", \"groups\": null"), CONV_INVALID_PARAMETER, "layers[0].groups: must be an integer"},
    {SEP3(", \"depth_multiplier\": \"2\""), CONV_INVALID_PARAMETER, "layers[0].depth_multiplier: must be an integer"},
    {"{\"type\": \"BatchNorm2d\", \"num_features\": [4]}", CONV_INVALID_PARAMETER,
     "layers[0].num_features: must be an integer"},
    {"{\"type\": \"Conv2d\", \"in_channels\": 4294967296, \"out_channels\": 4, \"kernel_size\": 3}",
     CONV_LIMIT_EXCEEDED, "layers[0].in_channels: 4294967296 is out of range"},
    {"{\"type\": \"Conv2d\", \"in_channels\": 4, \"out_channels\": 4, \"kernel_size\": [3, -3000000000]}",
     CONV_LIMIT_EXCEEDED, "layers[0].kernel_size: -3000000000 is out of range"},
    /* pairs */
    {"{\"type\": \"Conv2d\", \"in_channels\": 4, \"out_channels\": 4, \"kernel_size\": [3]}", CONV_INVALID_PARAMETER,
     "layers[0].kernel_size: must be a positive integer or a list of 2 positive integers, got a list of 1"},
    {"{\"type\": \"Conv2d\", \"in_channels\": 4, \"out_channels\": 4, \"kernel_size\": [3, 3, 3]}",
     CONV_INVALID_PARAMETER, "got a list of 3"},
    {"{\"type\": \"Conv2d\", \"in_channels\": 4, \"out_channels\": 4, \"kernel_size\": [3, 3.0]}",
     CONV_INVALID_PARAMETER, "layers[0].kernel_size: must be a positive integer or a list of 2 positive integers"},
    {"{\"type\": \"Conv2d\", \"in_channels\": 4, \"out_channels\": 4, \"kernel_size\": \"3\"}", CONV_INVALID_PARAMETER,
     "layers[0].kernel_size: must be a positive integer or a list of 2 positive integers"},
    {CONV3(", \"stride\": \"2\""), CONV_INVALID_PARAMETER,
     "layers[0].stride: must be a positive integer or a list of 2 positive integers"},
    {CONV3(", \"stride\": null"), CONV_INVALID_PARAMETER, "layers[0].stride: must be a positive integer"},
    {CONV3(", \"dilation\": [1, [2]]"), CONV_INVALID_PARAMETER,
     "layers[0].dilation: must be a positive integer or a list of 2 positive integers"},
    {CONV3(", \"padding\": \"full\""), CONV_INVALID_PARAMETER,
     "layers[0].padding: must be a non-negative integer, a list of 2 non-negative integers, \"same\" or \"valid\", "
     "got \"full\""},
    {CONV3(", \"padding\": true"), CONV_INVALID_PARAMETER,
     "layers[0].padding: must be a non-negative integer, a list of 2 non-negative integers, \"same\" or \"valid\""},
    {CONV3(", \"padding\": [1, 1, 1, 1]"), CONV_INVALID_PARAMETER,
     "layers[0].padding: must be a non-negative integer or a list of 2 non-negative integers, got a list of 4"},
    /* booleans, strings */
    {CONV3(", \"bias\": 1"), CONV_INVALID_PARAMETER, "layers[0].bias: must be true or false"},
    {CONV3(", \"bias\": \"false\""), CONV_INVALID_PARAMETER, "layers[0].bias: must be true or false"},
    {CONV3(", \"padding_mode\": \"mirror\""), CONV_INVALID_PARAMETER,
     "layers[0].padding_mode: must be one of \"zeros\", \"reflect\", \"replicate\", \"circular\""},
    {CONV3(", \"padding_mode\": 0"), CONV_INVALID_PARAMETER, "layers[0].padding_mode: must be one of"},
    {CONV3(", \"algorithm\": \"fast\""), CONV_INVALID_PARAMETER,
     "layers[0].algorithm: must be one of auto, direct, im2col, gemm_1x1, winograd, depthwise, fused_separable"},
    {CONV3(", \"algorithm\": 1"), CONV_INVALID_PARAMETER, "layers[0].algorithm: must be one of"},
    {"{\"type\": \"ReLU\", \"inplace\": 1}", CONV_INVALID_PARAMETER, "layers[0].inplace: must be true or false"},
    {"{\"type\": \"ReLU6\", \"inplace\": null}", CONV_INVALID_PARAMETER, "layers[0].inplace: must be true or false"},
    /* BatchNorm2d */
    {BN(", \"eps\": \"1e-5\""), CONV_INVALID_PARAMETER, "layers[0].eps: must be a number"},
    {BN(", \"eps\": null"), CONV_INVALID_PARAMETER, "layers[0].eps: must be a number"},
    {BN(", \"momentum\": \"0.1\""), CONV_INVALID_PARAMETER, "layers[0].momentum: must be a number or null"},
    {BN(", \"affine\": \"yes\""), CONV_INVALID_PARAMETER, "layers[0].affine: must be true or false"},
    {BN(", \"track_running_stats\": false"), CONV_INVALID_PARAMETER,
     "layers[0].track_running_stats: must be true (inference needs the running statistics)"},
    {BN(", \"track_running_stats\": 0"), CONV_INVALID_PARAMETER, "layers[0].track_running_stats: must be true or false"},
    /* pools */
    {MAXP(", \"return_indices\": true"), CONV_INVALID_PARAMETER, "layers[0].return_indices: must be false"},
    {MAXP(", \"return_indices\": \"no\""), CONV_INVALID_PARAMETER, "layers[0].return_indices: must be true or false"},
    {MAXP(", \"stride\": 0"), CONV_INVALID_PARAMETER, "layers[0].stride: must be positive, got 0 (null means the kernel size)"},
    {MAXP(", \"stride\": [0, 0]"), CONV_INVALID_PARAMETER, "layers[0].stride: must be positive, got 0"},
    {MAXP(", \"stride\": \"2\""), CONV_INVALID_PARAMETER,
     "layers[0].stride: must be null, a positive integer or a list of 2 positive integers"},
    {MAXP(", \"stride\": [2]"), CONV_INVALID_PARAMETER, "layers[0].stride: must be a positive integer or a list of 2 positive integers, got a list of 1"},
    {MAXP(", \"padding\": \"same\""), CONV_INVALID_PARAMETER,
     "layers[0].padding: must be a non-negative integer or a list of 2 non-negative integers"},
    {MAXP(", \"ceil_mode\": \"no\""), CONV_INVALID_PARAMETER, "layers[0].ceil_mode: must be true or false"},
    {MAXP(", \"dilation\": 1.5"), CONV_INVALID_PARAMETER, "layers[0].dilation: must be a positive integer"},
    {AVGP(", \"count_include_pad\": 1"), CONV_INVALID_PARAMETER, "layers[0].count_include_pad: must be true or false"},
    {AVGP(", \"divisor_override\": 0"), CONV_INVALID_PARAMETER, "layers[0].divisor_override: must be null or a positive integer"},
    {AVGP(", \"divisor_override\": -2"), CONV_INVALID_PARAMETER, "layers[0].divisor_override: must be null or a positive integer"},
    {AVGP(", \"divisor_override\": 2.0"), CONV_INVALID_PARAMETER, "layers[0].divisor_override: must be null or a positive integer"},
    {AVGP(", \"divisor_override\": 4294967296"), CONV_LIMIT_EXCEEDED, "layers[0].divisor_override: 4294967296 is out of range"},
    {AVGP(", \"stride\": 0"), CONV_INVALID_PARAMETER, "layers[0].stride: must be positive, got 0"},
    /* torch's rules, from the core, prefixed with the path */
    {CONV3(", \"groups\": 3"), CONV_INVALID_PARAMETER, "layers[0]: in_channels must be divisible by groups"},
    {CONV3(", \"groups\": 0"), CONV_INVALID_PARAMETER, "layers[0]: groups must be a positive integer"},
    {"{\"type\": \"Conv2d\", \"in_channels\": 4, \"out_channels\": 4, \"kernel_size\": [3, 0]}", CONV_INVALID_PARAMETER,
     "layers[0]: kernel_size must be positive, got [3, 0]"},
    {"{\"type\": \"Conv2d\", \"in_channels\": 0, \"out_channels\": 4, \"kernel_size\": 3}", CONV_INVALID_PARAMETER,
     "layers[0]: in_channels must be positive, got 0"},
    {CONV3(", \"padding\": -1"), CONV_INVALID_PARAMETER, "layers[0]: padding must be non-negative, got [-1, -1]"},
    {CONV3(", \"stride\": 2, \"padding\": \"same\""), CONV_INVALID_PARAMETER,
     "layers[0]: padding='same' is not supported for strided convolutions"},
    {SEP3(", \"algorithm\": \"im2col\""), CONV_UNSUPPORTED_ALGORITHM,
     "layers[0]: algorithm \"im2col\" cannot run a SeparableConv2d"},
    {SEP3(", \"depth_multiplier\": 0"), CONV_INVALID_PARAMETER, "layers[0]: depth_multiplier must be positive"},
    {BN(", \"eps\": 0"), CONV_INVALID_PARAMETER, "layers[0]: eps must be a positive finite number"},
    {"{\"type\": \"BatchNorm2d\", \"num_features\": -1}", CONV_INVALID_PARAMETER, "layers[0]: num_features must be positive"},
    {MAXP(", \"padding\": 2"), CONV_INVALID_PARAMETER, "layers[0]: pad should be at most half of kernel size"},
    {MAXP(", \"stride\": [0, 2]"), CONV_INVALID_PARAMETER, "layers[0]: stride must be positive, got [0, 2]"},
};

static void test_layer_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof layer_errors / sizeof *layer_errors; i++)
        expect_layer_error(layer_errors[i].layer, layer_errors[i].status, layer_errors[i].needle);
}

static void test_error_names_the_failing_layer(void **state)
{
    (void)state;
    expect_doc_error("{\"layers\": [{\"type\": \"ReLU\"}, {\"type\": \"ReLU\"}, {\"type\": \"ReLU\"}, "
                     "{\"type\": \"MaxPool2d\", \"kernel_size\": 2, \"return_indices\": true}]}",
                     CONV_INVALID_PARAMETER, "layers[3].return_indices: must be false");
    /* layer_spec_from_json uses the caller's path */
    json_t *obj = json_pack("{s:s, s:i}", "type", "BatchNorm2d", "num_features", 0);
    conv_layer_spec spec = init_spec(CONV_LAYER_RELU);
    conv_error err = {{0}};
    assert_int_equal(layer_spec_from_json(obj, "layer", &spec, &err), CONV_INVALID_PARAMETER);
    assert_contains(err.message, "layer: num_features must be positive");
    assert_int_equal(spec.type, CONV_LAYER_RELU); /* untouched on failure */
    json_decref(obj);
}

static void test_document_errors(void **state)
{
    (void)state;
    expect_doc_error("[]", CONV_INVALID_PARAMETER, "the model must be a JSON object");
    expect_doc_error("\"layers\"", CONV_INVALID_PARAMETER, "invalid JSON"); /* jansson wants an object or array */
    model_json m;
    json_t *scalar = json_string("layers");
    conv_error err = {{0}};
    assert_int_equal(model_json_from_value(scalar, &m, &err), CONV_INVALID_PARAMETER);
    assert_contains(err.message, "the model must be a JSON object");
    json_decref(scalar);
    expect_doc_error("{}", CONV_INVALID_PARAMETER, "layers: required");
    expect_doc_error("{\"layers\": {}}", CONV_INVALID_PARAMETER, "layers: must be a list of layer objects");
    expect_doc_error("{\"layers\": []}", CONV_INVALID_PARAMETER, "layers: must not be empty");
    expect_doc_error("{\"layers\": [{\"type\": \"ReLU\"}], \"nmae\": \"x\"}", CONV_INVALID_PARAMETER,
                     "unknown top-level key \"nmae\"");
    expect_doc_error("{\"name\": 3, \"layers\": [{\"type\": \"ReLU\"}]}", CONV_INVALID_PARAMETER,
                     "name: must be a string");
    char name[200], doc[400];
    memset(name, 'n', 128);
    name[128] = '\0';
    snprintf(doc, sizeof doc, "{\"name\": \"%s\", \"layers\": [{\"type\": \"ReLU\"}]}", name);
    expect_doc_error(doc, CONV_INVALID_PARAMETER, "name: must be at most 127 bytes, got 128");
    expect_doc_error("{\"description\": [], \"layers\": [{\"type\": \"ReLU\"}]}", CONV_INVALID_PARAMETER,
                     "description: must be a string");
    expect_doc_error("{\"input\": [1, 3, 8, 8], \"layers\": [{\"type\": \"ReLU\"}]}", CONV_INVALID_PARAMETER,
                     "input: must be an object");
    expect_doc_error("{\"input\": {}, \"layers\": [{\"type\": \"ReLU\"}]}", CONV_INVALID_PARAMETER,
                     "input.shape: required");
    expect_doc_error("{\"input\": {\"shape\": [1, 3, 8, 8], \"dtype\": \"f32\"}, \"layers\": [{\"type\": \"ReLU\"}]}",
                     CONV_INVALID_PARAMETER, "input: unknown key \"dtype\"");
    expect_doc_error("{\"input\": {\"shape\": [1, 3, 8]}, \"layers\": [{\"type\": \"ReLU\"}]}", CONV_INVALID_PARAMETER,
                     "input.shape: must be a list of 4 positive integers");
    expect_doc_error("{\"input\": {\"shape\": [1, 3, 0, 8]}, \"layers\": [{\"type\": \"ReLU\"}]}",
                     CONV_INVALID_PARAMETER, "input.shape[2]: must be a positive integer");
    expect_doc_error("{\"input\": {\"shape\": [1, 3, 8, 8.0]}, \"layers\": [{\"type\": \"ReLU\"}]}",
                     CONV_INVALID_PARAMETER, "input.shape[3]: must be a positive integer");
    expect_doc_error("{\"input\": {\"shape\": [1, 4294967296, 8, 8]}, \"layers\": [{\"type\": \"ReLU\"}]}",
                     CONV_LIMIT_EXCEEDED, "input.shape[1]: 4294967296 is out of range");
    /* a failure after the name was read still leaves *out empty */
    expect_doc_error("{\"name\": \"x\", \"layers\": [{\"type\": \"ReLU\"}, 3]}", CONV_INVALID_PARAMETER,
                     "layers[1]: must be an object");
}

static void test_json_syntax_errors(void **state)
{
    (void)state;
    expect_doc_error("{\n  \"layers\": [\n    {\"type\": \"ReLU\",}\n  ]\n}", CONV_INVALID_PARAMETER,
                     "invalid JSON at line 3, column ");
    expect_doc_error("{\n  \"layers\": [\n    {\"type\": \"ReLU\",}\n  ]\n}", CONV_INVALID_PARAMETER, "(byte ");
    expect_doc_error("", CONV_INVALID_PARAMETER, "invalid JSON at line 1");
    expect_doc_error("{\"layers\": [{\"type\": \"ReLU\"}]} {}", CONV_INVALID_PARAMETER, "invalid JSON");
    expect_doc_error("{\"layers\": [{\"type\": \"ReLU\"}], \"name\": \"a\", \"name\": \"b\"}", CONV_INVALID_PARAMETER,
                     "duplicate");
    expect_doc_error("{\"layers\": [{\"type\": \"ReLU\", \"type\": \"ReLU6\"}]}", CONV_INVALID_PARAMETER,
                     "duplicate object key");

    /* the position is that of the error: a syntax error on the second line */
    model_json m;
    conv_error err = {{0}};
    const char *text = "{\"layers\": [{\"type\": \"ReLU\"}],\n \"name\": nope}";
    assert_int_equal(model_json_parse(text, strlen(text), &m, &err), CONV_INVALID_PARAMETER);
    assert_contains(err.message, "line 2");
}

/* ------------------------------------------------------------ writing */

static conv_layer_spec round_trip(const conv_layer_spec *spec)
{
    json_t *obj = layer_spec_to_json(spec);
    assert_non_null(obj);
    /* through text, as the server and the CLI send it */
    char *text = json_dumps(obj, JSON_COMPACT);
    assert_non_null(text);
    json_decref(obj);
    json_error_t jerr;
    json_t *back = json_loads(text, 0, &jerr);
    assert_non_null(back);
    conv_layer_spec out;
    conv_error err = {{0}};
    if (layer_spec_from_json(back, "layer", &out, &err)) fail_msg("%s: %s", text, err.message);
    json_decref(back);
    free(text);
    return out;
}

static const char *const round_trip_layers[] = {
    "{\"type\": \"Conv2d\", \"in_channels\": 3, \"out_channels\": 8, \"kernel_size\": 3}",
    "{\"type\": \"Conv2d\", \"in_channels\": 4, \"out_channels\": 6, \"kernel_size\": [3, 5], \"stride\": [2, 1], "
    "\"padding\": [1, 2], \"dilation\": [1, 2], \"groups\": 2, \"bias\": false, \"padding_mode\": \"reflect\", "
    "\"algorithm\": \"im2col\"}",
    "{\"type\": \"Conv2d\", \"in_channels\": 4, \"out_channels\": 4, \"kernel_size\": 3, \"padding\": \"same\", "
    "\"groups\": 4, \"padding_mode\": \"circular\", \"algorithm\": \"depthwise\"}",
    "{\"type\": \"Conv2d\", \"in_channels\": 4, \"out_channels\": 4, \"kernel_size\": 1, \"padding\": \"valid\"}",
    "{\"type\": \"SeparableConv2d\", \"in_channels\": 3, \"out_channels\": 7, \"kernel_size\": [3, 1], "
    "\"padding\": \"same\", \"dilation\": [2, 1], \"depth_multiplier\": 2, \"bias\": false, "
    "\"padding_mode\": \"replicate\", \"algorithm\": \"fused_separable\"}",
    "{\"type\": \"SeparableConv2d\", \"in_channels\": 3, \"out_channels\": 7, \"kernel_size\": 3, \"stride\": 2}",
    "{\"type\": \"BatchNorm2d\", \"num_features\": 8}",
    "{\"type\": \"BatchNorm2d\", \"num_features\": 8, \"eps\": 0.0012345678901234567, \"affine\": false}",
    "{\"type\": \"ReLU\"}",
    "{\"type\": \"ReLU6\"}",
    "{\"type\": \"MaxPool2d\", \"kernel_size\": 2}",
    "{\"type\": \"MaxPool2d\", \"kernel_size\": [3, 2], \"stride\": [2, 1], \"padding\": [1, 0], \"dilation\": 2, "
    "\"ceil_mode\": true}",
    "{\"type\": \"AvgPool2d\", \"kernel_size\": 3}",
    "{\"type\": \"AvgPool2d\", \"kernel_size\": [3, 4], \"stride\": 2, \"padding\": [1, 2], \"ceil_mode\": true, "
    "\"count_include_pad\": false, \"divisor_override\": 7}",
};

static void test_round_trip(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof round_trip_layers / sizeof *round_trip_layers; i++) {
        conv_layer_spec spec = parse_layer(round_trip_layers[i]);
        conv_layer_spec back = round_trip(&spec);
        assert_spec_equal(&back, &spec);
    }
    /* a spec built in code, not parsed */
    conv_layer_spec s = init_spec(CONV_LAYER_CONV2D);
    s.in_channels = 16;
    s.out_channels = 32;
    s.kernel_size[0] = 1;
    s.kernel_size[1] = 7;
    s.padding[0] = 0;
    s.padding[1] = 3;
    s.algorithm = CONV_ALGO_DIRECT;
    conv_layer_spec back = round_trip(&s);
    assert_spec_equal(&back, &s);
}

static void test_written_form(void **state)
{
    (void)state;
    conv_layer_spec s = parse_layer(round_trip_layers[1]);
    json_t *obj = layer_spec_to_json(&s);
    assert_non_null(obj);
    assert_string_equal(json_string_value(json_object_get(obj, "type")), "Conv2d");
    json_t *k = json_object_get(obj, "kernel_size");
    assert_true(json_is_array(k) && json_array_size(k) == 2);
    assert_int_equal(json_integer_value(json_array_get(k, 0)), 3);
    assert_int_equal(json_integer_value(json_array_get(k, 1)), 5);
    assert_true(json_is_integer(json_object_get(obj, "in_channels")));
    assert_int_equal(json_integer_value(json_object_get(obj, "groups")), 2);
    assert_true(json_is_false(json_object_get(obj, "bias")));
    assert_string_equal(json_string_value(json_object_get(obj, "padding_mode")), "reflect");
    assert_string_equal(json_string_value(json_object_get(obj, "algorithm")), "im2col");
    assert_null(json_object_get(obj, "depth_multiplier"));
    assert_null(json_object_get(obj, "num_features"));
    json_decref(obj);

    /* every argument written; sizes as ints when square; auto algorithm left out */
    s = parse_layer(round_trip_layers[0]);
    obj = layer_spec_to_json(&s);
    const char *keys[] = {"type", "in_channels", "out_channels", "kernel_size", "stride", "padding",
                          "dilation", "groups", "bias", "padding_mode"};
    assert_int_equal(json_object_size(obj), sizeof keys / sizeof *keys);
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) assert_non_null(json_object_get(obj, keys[i]));
    assert_true(json_is_integer(json_object_get(obj, "kernel_size")));
    assert_int_equal(json_integer_value(json_object_get(obj, "stride")), 1);
    assert_int_equal(json_integer_value(json_object_get(obj, "padding")), 0);
    assert_null(json_object_get(obj, "algorithm"));
    json_decref(obj);

    s = parse_layer(round_trip_layers[2]);
    obj = layer_spec_to_json(&s);
    assert_string_equal(json_string_value(json_object_get(obj, "padding")), "same");
    json_decref(obj);
    s = parse_layer(round_trip_layers[3]);
    obj = layer_spec_to_json(&s);
    assert_string_equal(json_string_value(json_object_get(obj, "padding")), "valid");
    json_decref(obj);

    s = parse_layer(round_trip_layers[7]);
    obj = layer_spec_to_json(&s);
    assert_true(json_is_real(json_object_get(obj, "eps")));
    assert_true(json_real_value(json_object_get(obj, "eps")) == 0.0012345678901234567);
    assert_true(json_is_false(json_object_get(obj, "affine")));
    assert_true(json_is_true(json_object_get(obj, "track_running_stats")));
    json_decref(obj);

    s = parse_layer(round_trip_layers[10]);
    obj = layer_spec_to_json(&s);
    assert_true(json_is_null(json_object_get(obj, "stride")));
    assert_true(json_is_false(json_object_get(obj, "return_indices")));
    assert_int_equal(json_integer_value(json_object_get(obj, "dilation")), 1);
    json_decref(obj);

    s = parse_layer(round_trip_layers[12]);
    obj = layer_spec_to_json(&s);
    assert_true(json_is_null(json_object_get(obj, "stride")));
    assert_true(json_is_null(json_object_get(obj, "divisor_override")));
    assert_true(json_is_true(json_object_get(obj, "count_include_pad")));
    assert_null(json_object_get(obj, "dilation"));
    json_decref(obj);
    s = parse_layer(round_trip_layers[13]);
    obj = layer_spec_to_json(&s);
    assert_int_equal(json_integer_value(json_object_get(obj, "divisor_override")), 7);
    assert_int_equal(json_integer_value(json_object_get(obj, "stride")), 2);
    json_decref(obj);

    s = parse_layer(round_trip_layers[9]);
    obj = layer_spec_to_json(&s);
    assert_string_equal(json_string_value(json_object_get(obj, "type")), "ReLU6");
    json_decref(obj);
}

/* ------------------------------------------------------------ model folders */

typedef struct temp_dir {
    char path[256];
} temp_dir;

static void temp_dir_create(temp_dir *d)
{
    snprintf(d->path, sizeof d->path, "/tmp/convd_test_model_XXXXXX");
    if (!mkdtemp(d->path)) fail_msg("mkdtemp failed");
}

static void temp_dir_write(const temp_dir *d, const char *name, const void *data, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", d->path, name);
    conv_error err = {{0}};
    if (fileio_write_all(path, data, len, &err)) fail_msg("%s", err.message);
}

static void temp_dir_remove(const temp_dir *d)
{
    const char *names[] = {"model.json", "weights.safetensors"};
    char path[512];
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", d->path, names[i]);
        unlink(path);
    }
    rmdir(d->path);
}

/* A safetensors file: u64 LE header length, the header, then the data. */
static uint8_t *build_safetensors(const char *header, const float *data, size_t n_floats, size_t *len)
{
    size_t header_len = strlen(header);
    *len = 8 + header_len + n_floats * sizeof(float);
    uint8_t *bytes = malloc(*len);
    assert_non_null(bytes);
    for (int i = 0; i < 8; i++) bytes[i] = (uint8_t)((uint64_t)header_len >> (8 * i));
    memcpy(bytes + 8, header, header_len);
    if (n_floats) memcpy(bytes + 8 + header_len, data, n_floats * sizeof(float)); /* the test host is little-endian */
    return bytes;
}

static const char conv_model_json[] =
    "{\"name\": \"ones\", \"input\": {\"shape\": [1, 3, 5, 5]}, \"layers\": [\n"
    "  {\"type\": \"Conv2d\", \"in_channels\": 3, \"out_channels\": 10, \"kernel_size\": 3, \"padding\": 1}]}";
static const char conv_weights_header[] =
    "{\"0.weight\":{\"dtype\":\"F32\",\"shape\":[10,3,3,3],\"data_offsets\":[0,1080]},"
    "\"0.bias\":{\"dtype\":\"F32\",\"shape\":[10],\"data_offsets\":[1080,1120]}}";

/* weights all 1, bias = channel index */
static uint8_t *conv_weights(size_t *len)
{
    float data[280];
    for (int i = 0; i < 270; i++) data[i] = 1.0f;
    for (int i = 0; i < 10; i++) data[270 + i] = (float)i;
    return build_safetensors(conv_weights_header, data, 280, len);
}

static void expect_dir_error(const char *dir, const conv_model_options *opts, conv_status status, const char *prefix)
{
    model_dir md;
    memset(&md, 0x5a, sizeof md);
    conv_error err = {{0}};
    conv_status st = model_dir_load(dir, opts, &md, &err);
    if (st != status)
        fail_msg("%s: expected %s, got %s (%s)", dir, conv_status_name(status), conv_status_name(st), err.message);
    if (strncmp(err.message, prefix, strlen(prefix)) != 0)
        fail_msg("message \"%s\" does not start with \"%s\"", err.message, prefix);
    assert_null(md.model);
    assert_null(md.spec.layers);
    model_dir_free(&md); /* harmless on a failed load */
}

static void test_model_dir_runs(void **state)
{
    (void)state;
    temp_dir d;
    temp_dir_create(&d);
    size_t len;
    uint8_t *weights = conv_weights(&len);
    temp_dir_write(&d, "model.json", conv_model_json, strlen(conv_model_json));
    temp_dir_write(&d, "weights.safetensors", weights, len);
    free(weights);

    model_dir md;
    conv_error err = {{0}};
    if (model_dir_load(d.path, NULL, &md, &err)) fail_msg("%s", err.message);
    assert_string_equal(md.spec.name, "ones");
    assert_int_equal(md.spec.n_layers, 1);
    assert_non_null(md.model);
    assert_int_equal(conv_model_layer_count(md.model), 1);

    /* the weights were really loaded: all-ones 3x3x3 kernel on an all-ones input */
    const int64_t dims[4] = {1, 3, 5, 5};
    conv_tensor in, out = {0};
    assert_int_equal(conv_tensor_alloc(&in, 4, dims, &err), CONV_OK);
    for (size_t i = 0; i < conv_tensor_numel(&in); i++) in.data[i] = 1.0f;
    if (conv_model_run_alloc(md.model, &in, &out, NULL, NULL, &err)) fail_msg("%s", err.message);
    assert_int_equal(out.dims[1], 10);
    for (int c = 0; c < 10; c++) {
        const float *plane = out.data + c * 25;
        assert_true(plane[2 * 5 + 2] == 27.0f + c); /* centre: the full window */
        assert_true(plane[0] == 12.0f + c);         /* corner: 2x2 of the window inside */
    }
    conv_tensor_free(&in);
    conv_tensor_free(&out);
    model_dir_free(&md);
    assert_null(md.model);

    temp_dir_remove(&d);
}

static void test_model_dir_name_from_folder(void **state)
{
    (void)state;
    temp_dir d;
    temp_dir_create(&d);
    const char *json = "{\"layers\": [{\"type\": \"ReLU\"}]}";
    temp_dir_write(&d, "model.json", json, strlen(json));
    size_t len;
    uint8_t *empty = build_safetensors("{}", NULL, 0, &len);
    temp_dir_write(&d, "weights.safetensors", empty, len);
    free(empty);

    const char *base = strrchr(d.path, '/') + 1;
    model_dir md;
    conv_error err = {{0}};
    if (model_dir_load(d.path, NULL, &md, &err)) fail_msg("%s", err.message);
    assert_string_equal(md.spec.name, base);
    model_dir_free(&md);

    char slashed[300];
    snprintf(slashed, sizeof slashed, "%s//", d.path);
    if (model_dir_load(slashed, NULL, &md, &err)) fail_msg("%s", err.message);
    assert_string_equal(md.spec.name, base);
    model_dir_free(&md);

    /* "." resolves to the folder's own name */
    char cwd[1024];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(d.path), 0);
    conv_status st = model_dir_load(".", NULL, &md, &err);
    assert_int_equal(chdir(cwd), 0);
    if (st) fail_msg("%s", err.message);
    assert_string_equal(md.spec.name, base);
    model_dir_free(&md);

    /* from buffers there is no folder: the name stays empty */
    if (model_dir_load_buffers(json, strlen(json), (const uint8_t *)"\x02\0\0\0\0\0\0\0{}", 10, NULL, &md, &err))
        fail_msg("%s", err.message);
    assert_string_equal(md.spec.name, "");
    model_dir_free(&md);
    temp_dir_remove(&d);
}

static void test_model_dir_errors(void **state)
{
    (void)state;
    temp_dir d;
    temp_dir_create(&d);
    conv_model_options structure;
    conv_model_options_init(&structure);
    structure.structure_only = true;

    expect_dir_error(d.path, NULL, CONV_INVALID_PARAMETER, "model.json: ");
    conv_error err = {{0}};
    model_dir md;
    assert_int_not_equal(model_dir_load(d.path, NULL, &md, &err), CONV_OK);
    assert_contains(err.message, "model.json");
    assert_contains(err.message, "No such file");

    /* model.json without weights: fine for analysis, an error for running */
    temp_dir_write(&d, "model.json", conv_model_json, strlen(conv_model_json));
    expect_dir_error(d.path, NULL, CONV_INVALID_PARAMETER, "weights.safetensors: ");
    if (model_dir_load(d.path, &structure, &md, &err)) fail_msg("%s", err.message);
    assert_non_null(md.model);
    model_dir_free(&md);

    /* a missing weight */
    size_t len;
    uint8_t *bytes = build_safetensors("{\"0.weight\":{\"dtype\":\"F32\",\"shape\":[10,3,3,3],\"data_offsets\":[0,1080]}}",
                                       (const float[270]){0}, 270, &len);
    temp_dir_write(&d, "weights.safetensors", bytes, len);
    free(bytes);
    expect_dir_error(d.path, NULL, CONV_INVALID_WEIGHTS, "weights.safetensors: ");
    assert_int_equal(model_dir_load(d.path, NULL, &md, &err), CONV_INVALID_WEIGHTS);
    assert_contains(err.message, "0.bias");
    assert_contains(err.message, "[10]");

    /* a mis-shaped weight */
    bytes = build_safetensors("{\"0.weight\":{\"dtype\":\"F32\",\"shape\":[10,3,3],\"data_offsets\":[0,360]},"
                              "\"0.bias\":{\"dtype\":\"F32\",\"shape\":[10],\"data_offsets\":[360,400]}}",
                              (const float[100]){0}, 100, &len);
    temp_dir_write(&d, "weights.safetensors", bytes, len);
    free(bytes);
    assert_int_equal(model_dir_load(d.path, NULL, &md, &err), CONV_INVALID_WEIGHTS);
    assert_int_equal(strncmp(err.message, "weights.safetensors: ", 21), 0);
    assert_contains(err.message, "0.weight");
    assert_contains(err.message, "[10, 3, 3, 3]");
    assert_contains(err.message, "[10, 3, 3]");

    /* an unexpected weight */
    bytes = conv_weights(&len);
    char *header = (char *)bytes + 8;
    assert_int_equal(strncmp(header, "{\"0.weight\"", 11), 0);
    header[2] = '7'; /* "0.weight" -> "7.weight": no layer 7 */
    temp_dir_write(&d, "weights.safetensors", bytes, len);
    free(bytes);
    assert_int_equal(model_dir_load(d.path, NULL, &md, &err), CONV_INVALID_WEIGHTS);
    assert_contains(err.message, "7.weight");

    /* a broken safetensors file */
    temp_dir_write(&d, "weights.safetensors", "\x10\0\0\0", 4);
    expect_dir_error(d.path, NULL, CONV_INVALID_PARAMETER, "weights.safetensors: ");

    /* model.json errors carry its name and the JSON path */
    bytes = conv_weights(&len);
    temp_dir_write(&d, "weights.safetensors", bytes, len);
    free(bytes);
    const char *bad = "{\"layers\": [{\"type\": \"Conv2d\", \"in_channels\": 3, \"out_channels\": 10, \"kernel_size\": 3, "
                      "\"stride\": 0}]}";
    temp_dir_write(&d, "model.json", bad, strlen(bad));
    assert_int_equal(model_dir_load(d.path, NULL, &md, &err), CONV_INVALID_PARAMETER);
    assert_contains(err.message, "model.json: layers[0]: stride must be positive");
    temp_dir_write(&d, "model.json", "{\"layers\": [", 12);
    expect_dir_error(d.path, NULL, CONV_INVALID_PARAMETER, "model.json: invalid JSON at line 1");

    /* a declared input shape the layers cannot take */
    const char *mismatch = "{\"input\": {\"shape\": [1, 4, 8, 8]}, \"layers\": [{\"type\": \"Conv2d\", "
                           "\"in_channels\": 3, \"out_channels\": 10, \"kernel_size\": 3, \"padding\": 1}]}";
    temp_dir_write(&d, "model.json", mismatch, strlen(mismatch));
    expect_dir_error(d.path, NULL, CONV_INVALID_SHAPE, "model.json: input.shape [1, 4, 8, 8]: ");

    /* a forced algorithm that cannot run the declared shape is model.json's fault too */
    const char *forced = "{\"input\": {\"shape\": [1, 3, 5, 5]}, \"layers\": [{\"type\": \"Conv2d\", "
                         "\"in_channels\": 3, \"out_channels\": 10, \"kernel_size\": 3, \"padding\": 1, "
                         "\"algorithm\": \"gemm_1x1\"}]}";
    temp_dir_write(&d, "model.json", forced, strlen(forced));
    expect_dir_error(d.path, NULL, CONV_UNSUPPORTED_ALGORITHM, "model.json: input.shape [1, 3, 5, 5]: ");
    assert_int_equal(model_dir_load(d.path, NULL, &md, &err), CONV_UNSUPPORTED_ALGORITHM);
    assert_contains(err.message, "gemm_1x1");

    temp_dir_remove(&d);
    expect_dir_error("/nonexistent/convd/model", NULL, CONV_INVALID_PARAMETER, "model.json: ");
}

static void test_model_dir_buffers(void **state)
{
    (void)state;
    size_t len;
    uint8_t *weights = conv_weights(&len);
    model_dir md;
    conv_error err = {{0}};
    if (model_dir_load_buffers(conv_model_json, strlen(conv_model_json), weights, len, NULL, &md, &err))
        fail_msg("%s", err.message);
    assert_string_equal(md.spec.name, "ones");
    assert_true(md.spec.has_input_shape);
    model_dir_free(&md);

    /* no weights: only with structure_only */
    assert_int_equal(model_dir_load_buffers(conv_model_json, strlen(conv_model_json), NULL, 0, NULL, &md, &err),
                     CONV_INVALID_WEIGHTS);
    assert_contains(err.message, "weights.safetensors: ");
    assert_null(md.model);
    conv_model_options opts;
    conv_model_options_init(&opts);
    opts.structure_only = true;
    if (model_dir_load_buffers(conv_model_json, strlen(conv_model_json), NULL, 0, &opts, &md, &err))
        fail_msg("%s", err.message);
    conv_plan *plan;
    assert_int_equal(conv_plan_create(md.model, md.spec.input_shape, &plan, &err), CONV_OK);
    assert_int_equal(conv_plan_stats(plan)->output_shape[1], 10);
    conv_plan_destroy(plan);
    model_dir_free(&md);

    /* truncated weights are the safetensors codec's to report, under the file's name */
    assert_int_not_equal(model_dir_load_buffers(conv_model_json, strlen(conv_model_json), weights, len - 4, NULL, &md, &err),
                         CONV_OK);
    assert_int_equal(strncmp(err.message, "weights.safetensors: ", 21), 0);
    assert_null(strstr(err.message, "weights.safetensors: safetensors: "));
    free(weights);
}

static void test_example_folders(void **state)
{
    (void)state;
    const char *examples[] = {"separable_classic", "standard_classic", "mobilenet_v1", "atrous"};
    int loaded = 0;
    for (size_t i = 0; i < sizeof examples / sizeof *examples; i++) {
        char dir[256], path[300];
        snprintf(dir, sizeof dir, "examples/%s", examples[i]);
        snprintf(path, sizeof path, "%s/weights.safetensors", dir);
        if (access(path, R_OK) != 0) continue; /* not generated in this tree */
        model_dir md;
        conv_error err = {{0}};
        if (model_dir_load(dir, NULL, &md, &err)) fail_msg("%s: %s", dir, err.message);
        assert_string_equal(md.spec.name, examples[i]);
        assert_true(md.spec.n_layers > 0);
        assert_int_equal(conv_model_layer_count(md.model), md.spec.n_layers);
        for (size_t l = 0; l < md.spec.n_layers; l++)
            assert_int_equal(conv_model_layer(md.model, l)->type, md.spec.layers[l].type);
        /* every layer written back reads as the same spec */
        for (size_t l = 0; l < md.spec.n_layers; l++) {
            conv_layer_spec back = round_trip(&md.spec.layers[l]);
            assert_spec_equal(&back, &md.spec.layers[l]);
        }
        model_dir_free(&md);
        loaded++;
    }
    if (loaded == 0) print_message("no example folders with weights found; skipped\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_conv_arguments),
        cmocka_unit_test(test_other_layer_arguments),
        cmocka_unit_test(test_document),
        cmocka_unit_test(test_layer_count_limit),
        cmocka_unit_test(test_messages_quoted_in_the_spec),
        cmocka_unit_test(test_layer_errors),
        cmocka_unit_test(test_error_names_the_failing_layer),
        cmocka_unit_test(test_document_errors),
        cmocka_unit_test(test_json_syntax_errors),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_written_form),
        cmocka_unit_test(test_model_dir_runs),
        cmocka_unit_test(test_model_dir_name_from_folder),
        cmocka_unit_test(test_model_dir_errors),
        cmocka_unit_test(test_model_dir_buffers),
        cmocka_unit_test(test_example_folders),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
