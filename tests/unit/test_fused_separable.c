/* test_fused_separable.c — the separable pair's plan-time choice (fused or
 * its two stages, by conv_fused_separable_pays or autotune), the fused
 * kernel's tiles at several thread counts and the packed 1x1 GEMM's edges
 * (panel tails, B blocks, depth chunks, task runs across images), each
 * against the unfused or direct computation. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/conv.h"
#include "tests/unit/tensor_fixtures.h"

static uint32_t rng_state = 777;

/* dw Conv2d(c, c*mult, k, groups c) + BN + ReLU6 + Conv2d(c*mult, out, 1) + ReLU as layers 0..4 */
static size_t dw_pw_layers(conv_layer_spec *l, int64_t c, int64_t mult, int64_t out, int64_t k, int64_t stride,
                           conv_padding_mode mode)
{
    conv_layer_spec_init(&l[0], CONV_LAYER_CONV2D);
    l[0].in_channels = c, l[0].out_channels = c * mult, l[0].groups = c;
    l[0].kernel_size[0] = l[0].kernel_size[1] = k;
    l[0].stride[0] = l[0].stride[1] = stride;
    l[0].padding[0] = l[0].padding[1] = k / 2;
    l[0].padding_mode = mode;
    conv_layer_spec_init(&l[1], CONV_LAYER_BATCHNORM2D);
    l[1].num_features = c * mult;
    conv_layer_spec_init(&l[2], CONV_LAYER_RELU6);
    conv_layer_spec_init(&l[3], CONV_LAYER_CONV2D);
    l[3].in_channels = c * mult, l[3].out_channels = out, l[3].kernel_size[0] = l[3].kernel_size[1] = 1;
    conv_layer_spec_init(&l[4], CONV_LAYER_RELU);
    return 5;
}

static conv_layer_spec separable(int64_t c, int64_t out, int64_t k)
{
    conv_layer_spec s;
    conv_layer_spec_init(&s, CONV_LAYER_SEPARABLE_CONV2D);
    s.in_channels = c, s.out_channels = out, s.kernel_size[0] = s.kernel_size[1] = k;
    s.padding[0] = s.padding[1] = k / 2;
    return s;
}

static conv_model *create(const conv_layer_spec *l, size_t n, const owned_weights *w, bool fuse, bool autotune)
{
    conv_model_options opts;
    conv_model_options_init(&opts);
    opts.fuse = fuse;
    opts.autotune = autotune;
    opts.structure_only = w == NULL;
    conv_model *m;
    conv_error err;
    if (conv_model_create(l, n, w ? w->t : NULL, w ? w->n : 0, &opts, &m, &err)) fail_msg("%s", err.message);
    return m;
}

static void run(const conv_model *m, const conv_tensor *in, conv_tensor *out, conv_threadpool *pool,
                conv_layer_stats *rows)
{
    conv_model_stats stats;
    conv_layer_stats keep[8];
    stats.layers = rows ? rows : keep;
    conv_error err;
    if (conv_model_run_alloc(m, in, out, pool, &stats, &err)) fail_msg("%s", err.message);
}

static const conv_layer_stats *plan_rows(const conv_model *m, const int64_t shape[4], conv_plan **plan)
{
    conv_error err;
    if (conv_plan_create(m, shape, plan, &err)) fail_msg("%s", err.message);
    return conv_plan_stats(*plan)->layers;
}

/* ------------------------------------------------------ the plan's rule */

/* the execution and algorithm the plan gives the single layer s on shape */
static void expect_plan(const conv_layer_spec *s, int64_t n, int64_t h, int64_t w, const char *execution,
                        conv_algorithm algorithm)
{
    conv_model *m = create(s, 1, NULL, true, false);
    conv_plan *plan;
    int64_t shape[4] = {n, s->in_channels, h, w};
    const conv_layer_stats *st = plan_rows(m, shape, &plan);
    assert_string_equal(st[0].execution, execution);
    assert_int_equal(st[0].algorithm, algorithm);
    conv_plan_destroy(plan);
    conv_model_destroy(m);
}

#define UNFUSED "depthwise:depthwise+pointwise:gemm_1x1"

static void test_rule_by_shape(void **state)
{
    (void)state;
    /* 256 mid channels on 28x28: a 128 KiB tile is 4 rows, 112 columns, but
     * the 784 KiB mid tensor outgrows L2 and the 256 KiB weights fit: fused */
    conv_layer_spec s = separable(256, 256, 3);
    expect_plan(&s, 1, 28, 28, "fused_separable", CONV_ALGO_FUSED_SEPARABLE);
    /* 128 on 28x28 (392 KiB mid) and 512 on 14x14 (1 MiB of weights): unfused */
    s = separable(128, 128, 3);
    expect_plan(&s, 1, 28, 28, UNFUSED, CONV_ALGO_DEPTHWISE);
    s = separable(512, 512, 3);
    expect_plan(&s, 1, 14, 14, UNFUSED, CONV_ALGO_DEPTHWISE);
    s = separable(256, 256, 3);
    /* fused on 7x7, where one 49 KiB tile holds the whole map */
    expect_plan(&s, 2, 7, 7, "fused_separable", CONV_ALGO_FUSED_SEPARABLE);
    /* forced, it is fused on any shape */
    s.algorithm = CONV_ALGO_FUSED_SEPARABLE;
    expect_plan(&s, 1, 28, 28, "fused_separable", CONV_ALGO_FUSED_SEPARABLE);
    /* MobileNet's 1024 channels on 7x7: 4 rows of 7 per tile, unfused */
    s = separable(1024, 1024, 3);
    expect_plan(&s, 1, 7, 7, UNFUSED, CONV_ALGO_DEPTHWISE);
    /* 32 mid channels on 112x112: 9 rows of 112 per tile: fused */
    s = separable(32, 64, 3);
    expect_plan(&s, 1, 112, 112, "fused_separable", CONV_ALGO_FUSED_SEPARABLE);
}

static void test_rule_on_conv2d_pair(void **state)
{
    (void)state;
    conv_layer_spec l[5];
    size_t n = dw_pw_layers(l, 200, 1, 24, 3, 1, CONV_PAD_ZEROS);
    conv_model *m = create(l, n, NULL, true, false);
    conv_plan *plan;
    /* 200 channels x 20 columns: 8 rows, 160 columns per tile: unfused, one op */
    int64_t shape[4] = {1, 200, 20, 20};
    const conv_layer_stats *st = plan_rows(m, shape, &plan);
    assert_string_equal(st[0].execution, UNFUSED);
    assert_int_equal(st[0].algorithm, CONV_ALGO_DEPTHWISE);
    assert_string_equal(st[1].execution, "folded");
    assert_string_equal(st[2].execution, "fused");
    assert_string_equal(st[3].execution, "gemm_1x1");
    assert_int_equal(st[3].algorithm, CONV_ALGO_GEMM_1X1);
    for (size_t i = 1; i < n; i++) assert_int_equal(st[i].fused_into, 0); /* one op's time, on layer 0 */
    conv_plan_destroy(plan);
    /* 10x10: the map fits one tile: fused */
    int64_t fits[4] = {1, 200, 10, 10};
    st = plan_rows(m, fits, &plan);
    assert_string_equal(st[0].execution, "fused_separable");
    assert_int_equal(st[3].algorithm, CONV_ALGO_FUSED_SEPARABLE);
    assert_string_equal(st[3].execution, "fused");
    conv_plan_destroy(plan);
    conv_model_destroy(m);
}

/* ----------------------------------------- results, fused and unfused */

static void test_pairs_match_unfused(void **state)
{
    (void)state;
    /* the rule's unfused side (200 channels), the fused side, reflect
     * padding, stride 2, multiplier 2, batch 3; last tiles split by output
     * channels among the threads (256 on 28x28: 7 tiles; 100 outputs from
     * two one-tile images on 3 threads, the last part short) */
    static const struct {
        int64_t n, c, mult, out, h, w, k, stride;
        conv_padding_mode mode;
    } cases[] = {
        {1, 200, 1, 24, 20, 20, 3, 1, CONV_PAD_ZEROS},  {2, 150, 1, 33, 13, 22, 3, 1, CONV_PAD_REFLECT},
        {3, 16, 2, 40, 19, 17, 3, 2, CONV_PAD_ZEROS},   {1, 136, 1, 17, 28, 28, 5, 1, CONV_PAD_REPLICATE},
        {1, 3, 1, 10, 67, 45, 3, 1, CONV_PAD_CIRCULAR}, {1, 256, 1, 256, 28, 28, 3, 1, CONV_PAD_ZEROS},
        {2, 48, 1, 100, 20, 20, 3, 1, CONV_PAD_REFLECT},
    };
    conv_threadpool *pools[3] = {NULL};
    assert_int_equal(conv_threadpool_create(2, &pools[1], NULL), CONV_OK);
    assert_int_equal(conv_threadpool_create(3, &pools[2], NULL), CONV_OK);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        conv_layer_spec l[5];
        size_t n = dw_pw_layers(l, cases[i].c, cases[i].mult, cases[i].out, cases[i].k, cases[i].stride,
                                cases[i].mode);
        owned_weights w;
        model_weights(l, n, &rng_state, &w);
        conv_tensor in, want, got;
        random_input(&in, &rng_state, cases[i].n, cases[i].c, cases[i].h, cases[i].w);
        conv_model *ref = create(l, n, &w, false, false); /* fusion off: five ops */
        run(ref, &in, &want, NULL, NULL);
        conv_model *by_rule = create(l, n, &w, true, false);
        l[3].algorithm = CONV_ALGO_FUSED_SEPARABLE;
        conv_model *fused = create(l, n, &w, true, false);
        for (int t = 0; t < 3; t++) {
            char what[160];
            conv_layer_stats rows[5];
            run(by_rule, &in, &got, pools[t], rows);
            snprintf(what, sizeof what, "case %zu by rule (%s), %d thread(s)", i, rows[0].execution, t + 1);
            assert_close(&got, &want, 1e-5, what);
            conv_tensor_free(&got);
            run(fused, &in, &got, pools[t], rows);
            assert_string_equal(rows[0].execution, "fused_separable");
            snprintf(what, sizeof what, "case %zu fused, %d thread(s)", i, t + 1);
            assert_close(&got, &want, 1e-5, what);
            conv_tensor_free(&got);
        }
        conv_model_destroy(ref), conv_model_destroy(by_rule), conv_model_destroy(fused);
        conv_tensor_free(&in), conv_tensor_free(&want);
        free_weights(&w);
    }
    conv_threadpool_destroy(pools[1]);
    conv_threadpool_destroy(pools[2]);
}

static void test_autotune_times_both(void **state)
{
    (void)state;
    /* a SeparableConv2d either side of the rule and a Conv2d pair: the
     * tuned plan is fused or the two stages, computes the same result, and
     * keeps its choice for the shape */
    static const int64_t cases[][4] = {{160, 48, 20, 20}, {8, 16, 30, 30}};
    for (size_t i = 0; i < 3; i++) {
        conv_layer_spec l[5];
        size_t n;
        int64_t c = cases[i % 2][0], h = cases[i % 2][2], wd = cases[i % 2][3];
        if (i < 2) {
            l[0] = separable(c, cases[i][1], 3);
            n = 1;
        } else {
            n = dw_pw_layers(l, 40, 1, 24, 3, 1, CONV_PAD_ZEROS);
            c = 40;
        }
        owned_weights w;
        model_weights(l, n, &rng_state, &w);
        conv_tensor in, want, got;
        random_input(&in, &rng_state, 2, c, h, wd);
        conv_model *ref = create(l, n, &w, false, false);
        run(ref, &in, &want, NULL, NULL);
        conv_model *tuned = create(l, n, &w, true, true);
        conv_layer_stats rows[5];
        run(tuned, &in, &got, NULL, rows);
        bool fused = strcmp(rows[0].execution, "fused_separable") == 0;
        if (!fused) assert_int_equal(strncmp(rows[0].execution, "depthwise:", 10), 0);
        char what[96];
        snprintf(what, sizeof what, "autotuned case %zu (%s)", i, rows[0].execution);
        assert_close(&got, &want, 1e-5, what);
        conv_tensor_free(&got);
        conv_plan *plan;
        int64_t shape[4] = {2, c, h, wd};
        assert_string_equal(plan_rows(tuned, shape, &plan)[0].execution, rows[0].execution);
        conv_plan_destroy(plan);
        conv_model_destroy(ref), conv_model_destroy(tuned);
        conv_tensor_free(&in), conv_tensor_free(&want);
        free_weights(&w);
    }
    /* a forced fused pair is not tuned away */
    conv_layer_spec s = separable(160, 48, 3);
    s.algorithm = CONV_ALGO_FUSED_SEPARABLE;
    owned_weights w;
    model_weights(&s, 1, &rng_state, &w);
    conv_model *m = create(&s, 1, &w, true, true);
    conv_plan *plan;
    int64_t shape[4] = {1, 160, 20, 20};
    assert_string_equal(plan_rows(m, shape, &plan)[0].execution, "fused_separable");
    conv_plan_destroy(plan);
    conv_model_destroy(m);
    free_weights(&w);
}

/* ------------------------------------------------- the packed 1x1 GEMM */

static void test_gemm_1x1_edges(void **state)
{
    (void)state;
    /* n, c, h, w, out: column tails, B blocks of many panels (3 channels:
     * 1024 columns a block) with a tail, depth past one 256 chunk, row
     * panels of 1..5, runs of panels spanning images, 256+ pixels so the
     * packed GEMM runs; more weight rows than one L2 chunk holds (264),
     * alone and with depth past 256; guided runs over 1-3 threads; B
     * packed per call (128+ deep, 96+ rows) with a column tail, a last
     * row panel of 5 and a shallow last depth chunk in blocks of panels;
     * 96 rows at 128 deep; maps of 49-255 pixels too deep and wide for the
     * implicit GEMM (packed B at 7x7 and 14x14, in place at 9x11), and one
     * of 48 pixels, still on sgemm */
    static const int64_t cases[][5] = {
        {1, 3, 40, 41, 10},    {3, 300, 17, 17, 13},  {2, 33, 16, 17, 7},    {5, 8, 16, 16, 1},
        {1, 256, 28, 28, 256}, {1, 256, 16, 17, 301}, {2, 520, 16, 16, 300}, {1, 300, 15, 17, 131},
        {2, 128, 17, 19, 128}, {1, 128, 16, 16, 96},  {1, 256, 7, 7, 512},   {1, 512, 14, 14, 130},
        {2, 96, 9, 11, 64},    {1, 128, 6, 8, 128},
    };
    conv_threadpool *pools[3] = {NULL};
    assert_int_equal(conv_threadpool_create(2, &pools[1], NULL), CONV_OK);
    assert_int_equal(conv_threadpool_create(3, &pools[2], NULL), CONV_OK);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        conv_layer_spec s;
        conv_layer_spec_init(&s, CONV_LAYER_CONV2D);
        s.in_channels = cases[i][1], s.out_channels = cases[i][4];
        s.kernel_size[0] = s.kernel_size[1] = 1;
        conv_layer_spec l[2] = {s};
        conv_layer_spec_init(&l[1], CONV_LAYER_RELU6);
        owned_weights w;
        model_weights(l, 1, &rng_state, &w);
        conv_tensor in, want, got;
        random_input(&in, &rng_state, cases[i][0], cases[i][1], cases[i][2], cases[i][3]);
        l[0].algorithm = CONV_ALGO_DIRECT;
        conv_model *ref = create(l, 2, &w, true, false);
        run(ref, &in, &want, NULL, NULL);
        l[0].algorithm = CONV_ALGO_GEMM_1X1;
        conv_model *gemm = create(l, 2, &w, true, false);
        for (int t = 0; t < 3; t++) {
            run(gemm, &in, &got, pools[t], NULL);
            char what[64];
            snprintf(what, sizeof what, "1x1 case %zu, %d thread(s)", i, t + 1);
            assert_close(&got, &want, 1e-5, what);
            conv_tensor_free(&got);
        }
        conv_model_destroy(ref), conv_model_destroy(gemm);
        conv_tensor_free(&in), conv_tensor_free(&want);
        free_weights(&w);
    }
    conv_threadpool_destroy(pools[1]);
    conv_threadpool_destroy(pools[2]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rule_by_shape),
        cmocka_unit_test(test_rule_on_conv2d_pair),
        cmocka_unit_test(test_pairs_match_unfused),
        cmocka_unit_test(test_autotune_times_both),
        cmocka_unit_test(test_gemm_1x1_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
