/* test_stats_json.c — statistics JSON: every key and value for hand-built
 * statistics, the exact key sets, non-finite ratios, and a plan's own
 * statistics written through the same path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/conv.h"
#include "proto/stats_json.h"

static const json_t *get(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    if (!v) fail_msg("key \"%s\" missing", key);
    return v;
}

static void assert_int_key(const json_t *obj, const char *key, int64_t want)
{
    const json_t *v = get(obj, key);
    if (!json_is_integer(v)) fail_msg("\"%s\" is not a JSON integer", key);
    if (json_integer_value(v) != want)
        fail_msg("\"%s\": %lld, expected %lld", key, (long long)json_integer_value(v), (long long)want);
}

static void assert_real_key(const json_t *obj, const char *key, double want)
{
    const json_t *v = get(obj, key);
    if (!json_is_real(v)) fail_msg("\"%s\" is not a JSON real", key);
    if (json_real_value(v) != want) fail_msg("\"%s\": %.17g, expected %.17g", key, json_real_value(v), want);
}

static void assert_ints_key(const json_t *obj, const char *key, const int64_t *want, size_t n)
{
    const json_t *v = get(obj, key);
    if (!json_is_array(v) || json_array_size(v) != n) fail_msg("\"%s\" is not a list of %zu", key, n);
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(v, i);
        if (!json_is_integer(e) || json_integer_value(e) != want[i])
            fail_msg("\"%s\"[%zu]: expected %lld", key, i, (long long)want[i]);
    }
}

static void assert_keys_exactly(const json_t *obj, const char *const *keys, size_t n)
{
    for (size_t i = 0; i < n; i++) get(obj, keys[i]);
    if (json_object_size(obj) != n) {
        char *text = json_dumps(obj, JSON_COMPACT);
        fail_msg("expected exactly %zu keys, got %zu: %s", n, json_object_size(obj), text ? text : "?");
    }
}

static const char *const model_keys[] = {"input_shape", "output_shape", "params", "macs", "flops",
                                         "receptive_field", "jump", "compute_ms", "layers"};
static const char *const layer_keys[] = {"index", "type", "algorithm", "execution", "input_shape", "output_shape",
                                         "params", "macs", "flops", "receptive_field", "jump", "compute_ms",
                                         "fused_into"};
static const char *const equivalent_keys[] = {"macs", "flops", "textbook_ratio", "flop_ratio", "speedup_bound"};
#define COUNT(a) (sizeof(a) / sizeof *(a))

static void fill_layer(conv_layer_stats *l, conv_layer_type type, conv_algorithm algo, const char *execution,
                       const int64_t in[4], const int64_t out[4], int64_t params, int64_t macs, int64_t rf, int64_t jump)
{
    memset(l, 0, sizeof *l);
    l->type = type;
    l->algorithm = algo;
    snprintf(l->execution, sizeof l->execution, "%s", execution);
    memcpy(l->input_shape, in, 4 * sizeof *in);
    memcpy(l->output_shape, out, 4 * sizeof *out);
    l->params = params;
    l->macs = macs;
    l->flops = 2 * macs;
    l->receptive_field[0] = l->receptive_field[1] = rf;
    l->jump[0] = l->jump[1] = jump;
    l->fused_into = -1;
}

/* Three layers: a strided Conv2d, a ReLU fused into it, a SeparableConv2d
 * with its standard equivalent. Values are arbitrary but distinct. */
static conv_layer_stats layers[3];

static conv_model_stats hand_built(void)
{
    const int64_t a[4] = {2, 3, 64, 48}, b[4] = {2, 16, 32, 24}, c[4] = {2, 32, 32, 24};
    fill_layer(&layers[0], CONV_LAYER_CONV2D, CONV_ALGO_IM2COL, "im2col", a, b, 448, 5308416, 3, 2);
    layers[0].receptive_field[1] = 5; /* a non-square kernel */
    layers[0].compute_ms = 1.25;
    fill_layer(&layers[1], CONV_LAYER_RELU, CONV_ALGO_AUTO, "fused", b, b, 0, 0, 3, 2);
    layers[1].receptive_field[1] = 5;
    layers[1].fused_into = 0;
    fill_layer(&layers[2], CONV_LAYER_SEPARABLE_CONV2D, CONV_ALGO_FUSED_SEPARABLE,
               "depthwise:direct+pointwise:gemm_1x1", b, c, 704, 3096576, 7, 2);
    layers[2].receptive_field[1] = 9;
    layers[2].compute_ms = 0.5;
    layers[2].has_standard_equivalent = true;
    layers[2].standard_macs = 7077888000000LL; /* beyond 32 bits: stays an exact integer */
    layers[2].standard_flops = 2 * 7077888000000LL;
    layers[2].textbook_ratio = 1.0 / 32 + 1.0 / 9;
    layers[2].flop_ratio = 0.125;

    conv_model_stats s;
    memset(&s, 0, sizeof s);
    s.n_layers = 3;
    s.layers = layers;
    memcpy(s.input_shape, a, sizeof a);
    memcpy(s.output_shape, c, sizeof c);
    s.params = 1152;
    s.macs = 8404992;
    s.flops = 16809984;
    s.receptive_field[0] = 7;
    s.receptive_field[1] = 9;
    s.jump[0] = s.jump[1] = 2;
    s.compute_ms = 1.75;
    return s;
}

static void test_model_keys(void **state)
{
    (void)state;
    conv_model_stats s = hand_built();
    json_t *doc = stats_to_json(&s);
    assert_non_null(doc);
    assert_keys_exactly(doc, model_keys, COUNT(model_keys));
    assert_ints_key(doc, "input_shape", s.input_shape, 4);
    assert_ints_key(doc, "output_shape", s.output_shape, 4);
    assert_int_key(doc, "params", 1152);
    assert_int_key(doc, "macs", 8404992);
    assert_int_key(doc, "flops", 16809984);
    const int64_t rf[2] = {7, 9}, jump[2] = {2, 2};
    assert_ints_key(doc, "receptive_field", rf, 2);
    assert_ints_key(doc, "jump", jump, 2);
    assert_real_key(doc, "compute_ms", 1.75);
    const json_t *list = get(doc, "layers");
    assert_true(json_is_array(list));
    assert_int_equal(json_array_size(list), 3);
    for (size_t i = 0; i < 3; i++) assert_int_key(json_array_get(list, i), "index", (int64_t)i);
    json_decref(doc);
}

static void test_layer_keys(void **state)
{
    (void)state;
    conv_model_stats s = hand_built();
    json_t *doc = stats_to_json(&s);
    const json_t *list = get(doc, "layers");

    const json_t *conv = json_array_get(list, 0);
    assert_keys_exactly(conv, layer_keys, COUNT(layer_keys));
    assert_string_equal(json_string_value(get(conv, "type")), "Conv2d");
    assert_string_equal(json_string_value(get(conv, "algorithm")), "im2col");
    assert_string_equal(json_string_value(get(conv, "execution")), "im2col");
    assert_ints_key(conv, "input_shape", layers[0].input_shape, 4);
    assert_ints_key(conv, "output_shape", layers[0].output_shape, 4);
    assert_int_key(conv, "params", 448);
    assert_int_key(conv, "macs", 5308416);
    assert_int_key(conv, "flops", 2 * 5308416);
    const int64_t rf0[2] = {3, 5}, jump[2] = {2, 2};
    assert_ints_key(conv, "receptive_field", rf0, 2);
    assert_ints_key(conv, "jump", jump, 2);
    assert_real_key(conv, "compute_ms", 1.25);
    assert_true(json_is_null(get(conv, "fused_into")));

    const json_t *relu = json_array_get(list, 1);
    assert_keys_exactly(relu, layer_keys, COUNT(layer_keys));
    assert_string_equal(json_string_value(get(relu, "type")), "ReLU");
    assert_true(json_is_null(get(relu, "algorithm"))); /* not a convolution */
    assert_string_equal(json_string_value(get(relu, "execution")), "fused");
    assert_int_key(relu, "fused_into", 0);
    assert_int_key(relu, "macs", 0);
    assert_real_key(relu, "compute_ms", 0.0);

    const json_t *sep = json_array_get(list, 2);
    const char *with_equivalent[COUNT(layer_keys) + 1];
    memcpy(with_equivalent, layer_keys, sizeof layer_keys);
    with_equivalent[COUNT(layer_keys)] = "standard_equivalent";
    assert_keys_exactly(sep, with_equivalent, COUNT(with_equivalent));
    assert_string_equal(json_string_value(get(sep, "type")), "SeparableConv2d");
    assert_string_equal(json_string_value(get(sep, "algorithm")), "fused_separable");
    assert_string_equal(json_string_value(get(sep, "execution")), "depthwise:direct+pointwise:gemm_1x1");
    assert_int_key(sep, "index", 2);
    assert_int_key(sep, "params", 704);
    const json_t *eq = get(sep, "standard_equivalent");
    assert_keys_exactly(eq, equivalent_keys, COUNT(equivalent_keys));
    assert_int_key(eq, "macs", 7077888000000LL);
    assert_int_key(eq, "flops", 2 * 7077888000000LL);
    assert_real_key(eq, "textbook_ratio", 1.0 / 32 + 1.0 / 9);
    assert_real_key(eq, "flop_ratio", 0.125);
    assert_real_key(eq, "speedup_bound", 8.0);
    json_decref(doc);
}

static void test_layer_alone_and_odd_values(void **state)
{
    (void)state;
    conv_model_stats s = hand_built();
    json_t *one = layer_stats_to_json(&s.layers[2], 41);
    assert_non_null(one);
    assert_int_key(one, "index", 41);

    /* a zero flop_ratio has no finite speedup bound: null, and the document stays valid JSON */
    s.layers[2].flop_ratio = 0.0;
    json_decref(one);
    one = layer_stats_to_json(&s.layers[2], 2);
    const json_t *eq = get(one, "standard_equivalent");
    assert_real_key(eq, "flop_ratio", 0.0);
    assert_true(json_is_null(get(eq, "speedup_bound")));
    char *text = json_dumps(one, JSON_COMPACT);
    assert_non_null(text);
    json_error_t jerr;
    json_t *back = json_loads(text, 0, &jerr);
    assert_non_null(back);
    json_decref(back);
    free(text);
    json_decref(one);

    /* a depthwise Conv2d also reports its standard equivalent; a plain conv does not */
    s.layers[0].has_standard_equivalent = true;
    s.layers[0].standard_macs = 10;
    s.layers[0].flop_ratio = 0.5;
    one = layer_stats_to_json(&s.layers[0], 0);
    assert_real_key(get(one, "standard_equivalent"), "speedup_bound", 2.0);
    json_decref(one);

    /* pools and BatchNorm have no algorithm; an empty model has an empty list */
    conv_layer_stats pool;
    const int64_t shape[4] = {1, 1, 2, 2};
    fill_layer(&pool, CONV_LAYER_MAXPOOL2D, CONV_ALGO_DIRECT, "pool", shape, shape, 0, 0, 2, 2);
    one = layer_stats_to_json(&pool, 0);
    assert_true(json_is_null(get(one, "algorithm")));
    assert_string_equal(json_string_value(get(one, "type")), "MaxPool2d");
    assert_null(json_object_get(one, "standard_equivalent"));
    json_decref(one);
    conv_model_stats empty;
    memset(&empty, 0, sizeof empty);
    json_t *doc = stats_to_json(&empty);
    assert_int_equal(json_array_size(get(doc, "layers")), 0);
    json_decref(doc);
}

/* A real plan's statistics, written through the same path, agree with the struct. */
static void test_plan_statistics(void **state)
{
    (void)state;
    conv_layer_spec specs[3];
    conv_layer_spec_init(&specs[0], CONV_LAYER_SEPARABLE_CONV2D);
    specs[0].in_channels = 8;
    specs[0].out_channels = 16;
    specs[0].kernel_size[0] = specs[0].kernel_size[1] = 3;
    specs[0].padding[0] = specs[0].padding[1] = 1;
    conv_layer_spec_init(&specs[1], CONV_LAYER_RELU);
    conv_layer_spec_init(&specs[2], CONV_LAYER_MAXPOOL2D);
    specs[2].kernel_size[0] = specs[2].kernel_size[1] = 2;
    conv_model_options opts;
    conv_model_options_init(&opts);
    opts.structure_only = true;
    conv_model *model;
    conv_error err = {{0}};
    if (conv_model_create(specs, 3, NULL, 0, &opts, &model, &err)) fail_msg("%s", err.message);
    const int64_t in[4] = {1, 8, 16, 16};
    conv_plan *plan;
    if (conv_plan_create(model, in, &plan, &err)) fail_msg("%s", err.message);
    const conv_model_stats *st = conv_plan_stats(plan);
    json_t *doc = stats_to_json(st);
    assert_non_null(doc);
    assert_ints_key(doc, "input_shape", in, 4);
    assert_ints_key(doc, "output_shape", st->output_shape, 4);
    assert_int_equal(st->output_shape[2], 8);
    assert_int_key(doc, "macs", st->macs);
    assert_int_key(doc, "params", st->params);
    assert_ints_key(doc, "receptive_field", st->receptive_field, 2);
    const json_t *list = get(doc, "layers");
    assert_int_equal(json_array_size(list), st->n_layers);
    for (size_t i = 0; i < st->n_layers; i++) {
        const json_t *l = json_array_get(list, i);
        assert_string_equal(json_string_value(get(l, "type")), conv_layer_type_name(st->layers[i].type));
        assert_string_equal(json_string_value(get(l, "execution")), st->layers[i].execution);
        assert_int_key(l, "flops", st->layers[i].flops);
        assert_ints_key(l, "output_shape", st->layers[i].output_shape, 4);
        if (st->layers[i].fused_into >= 0) assert_int_key(l, "fused_into", st->layers[i].fused_into);
        else assert_true(json_is_null(get(l, "fused_into")));
        assert_int_equal(json_object_get(l, "standard_equivalent") != NULL, st->layers[i].has_standard_equivalent);
    }
    /* the separable layer carries its comparison with a standard convolution */
    assert_non_null(json_object_get(json_array_get(list, 0), "standard_equivalent"));
    json_decref(doc);
    conv_plan_destroy(plan);
    conv_model_destroy(model);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_keys),
        cmocka_unit_test(test_layer_keys),
        cmocka_unit_test(test_layer_alone_and_odd_values),
        cmocka_unit_test(test_plan_statistics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
