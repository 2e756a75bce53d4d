/* test_core.c — the core on its own: every algorithm against the direct
 * reference, torch's rejection rules and their messages, weight matching,
 * statistics checked by hand, overflow limits and the thread pool. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/conv.h"
#include "tests/unit/tensor_fixtures.h"

/* ------------------------------------------------------------ helpers */

static uint32_t rng_state = 12345;

/* weights for a one-layer model at index 0, from the layer's own descs */
static void weights_for(const conv_layer_spec *s, owned_weights *w)
{
    model_weights(s, 1, &rng_state, w);
}

static conv_status run_layer(const conv_layer_spec *s, const owned_weights *w, const conv_tensor *in,
                             conv_tensor *out, conv_threadpool *pool, conv_error *err)
{
    conv_model *m;
    conv_status st = conv_model_create(s, 1, w->t, w->n, NULL, &m, err);
    if (st) return st;
    st = conv_model_run_alloc(m, in, out, pool, NULL, err);
    conv_model_destroy(m);
    return st;
}


/* ------------------------------------------- algorithms vs the reference */

typedef struct conv_case {
    int64_t n, c, h, w, out, kh, kw, sh, sw, ph, pw, dh, dw, groups;
    bool bias;
    conv_padding_kind kind;
    conv_padding_mode mode;
} conv_case;

static const conv_case conv_cases[] = {
    {1, 3, 17, 19, 10, 3, 3, 1, 1, 1, 1, 1, 1, 1, true, CONV_PADDING_EXPLICIT, CONV_PAD_ZEROS},
    {2, 8, 12, 9, 6, 3, 2, 2, 1, 1, 0, 1, 2, 2, false, CONV_PADDING_EXPLICIT, CONV_PAD_ZEROS},
    {1, 4, 9, 9, 8, 1, 1, 1, 1, 0, 0, 1, 1, 1, true, CONV_PADDING_EXPLICIT, CONV_PAD_ZEROS},
    {3, 6, 7, 7, 6, 1, 1, 1, 1, 0, 0, 1, 1, 3, true, CONV_PADDING_EXPLICIT, CONV_PAD_ZEROS},
    {1, 5, 11, 8, 10, 5, 3, 3, 2, 2, 1, 1, 1, 5, true, CONV_PADDING_EXPLICIT, CONV_PAD_ZEROS},
    {1, 4, 10, 10, 4, 4, 4, 1, 1, 0, 0, 2, 1, 1, true, CONV_PADDING_SAME, CONV_PAD_ZEROS},
    {2, 3, 6, 7, 5, 3, 3, 1, 1, 2, 1, 1, 1, 1, true, CONV_PADDING_EXPLICIT, CONV_PAD_REFLECT},
    {1, 2, 5, 5, 3, 3, 3, 2, 2, 3, 3, 1, 1, 1, true, CONV_PADDING_EXPLICIT, CONV_PAD_REPLICATE},
    {1, 2, 5, 6, 2, 2, 3, 1, 1, 0, 0, 1, 1, 2, true, CONV_PADDING_SAME, CONV_PAD_CIRCULAR},
    {1, 1, 1, 1, 3, 1, 1, 1, 1, 0, 0, 1, 1, 1, true, CONV_PADDING_EXPLICIT, CONV_PAD_ZEROS},
    {1, 1, 1, 1, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, true, CONV_PADDING_EXPLICIT, CONV_PAD_ZEROS},
    {1, 16, 40, 40, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, true, CONV_PADDING_EXPLICIT, CONV_PAD_ZEROS},
    {1, 8, 13, 13, 8, 2, 2, 5, 5, 0, 0, 1, 1, 1, true, CONV_PADDING_VALID, CONV_PAD_ZEROS},
};

static void spec_from_case(const conv_case *k, conv_layer_spec *s)
{
    conv_layer_spec_init(s, CONV_LAYER_CONV2D);
    s->in_channels = k->c;
    s->out_channels = k->out;
    s->kernel_size[0] = k->kh, s->kernel_size[1] = k->kw;
    s->stride[0] = k->sh, s->stride[1] = k->sw;
    s->padding[0] = k->ph, s->padding[1] = k->pw;
    s->dilation[0] = k->dh, s->dilation[1] = k->dw;
    s->groups = k->groups;
    s->bias = k->bias;
    s->padding_kind = k->kind;
    s->padding_mode = k->mode;
}

static void test_algorithms_match_direct(void **state)
{
    (void)state;
    conv_threadpool *pool;
    assert_int_equal(conv_threadpool_create(3, &pool, NULL), CONV_OK);
    for (size_t c = 0; c < sizeof conv_cases / sizeof *conv_cases; c++) {
        conv_layer_spec s;
        spec_from_case(&conv_cases[c], &s);
        owned_weights w;
        weights_for(&s, &w);
        conv_tensor in, ref;
        random_input(&in, &rng_state, conv_cases[c].n, conv_cases[c].c, conv_cases[c].h, conv_cases[c].w);
        s.algorithm = CONV_ALGO_DIRECT;
        conv_error err;
        assert_int_equal(run_layer(&s, &w, &in, &ref, NULL, &err), CONV_OK);
        const conv_algorithm algos[] = {CONV_ALGO_AUTO, CONV_ALGO_IM2COL, CONV_ALGO_GEMM_1X1, CONV_ALGO_WINOGRAD,
                                        CONV_ALGO_DEPTHWISE};
        for (size_t a = 0; a < sizeof algos / sizeof *algos; a++) {
            for (int threaded = 0; threaded < 2; threaded++) {
                s.algorithm = algos[a];
                conv_tensor out;
                conv_status st = run_layer(&s, &w, &in, &out, threaded ? pool : NULL, &err);
                if (st == CONV_UNSUPPORTED_ALGORITHM) {
                    assert_non_null(strstr(err.message, conv_algorithm_name(algos[a])));
                    continue;
                }
                assert_int_equal(st, CONV_OK);
                char what[64];
                snprintf(what, sizeof what, "case %zu algorithm %s", c, conv_algorithm_name(algos[a]));
                assert_close(&out, &ref, 1e-5, what);
                conv_tensor_free(&out);
            }
        }
        conv_tensor_free(&in);
        conv_tensor_free(&ref);
        free_weights(&w);
    }
    conv_threadpool_destroy(pool);
}

/* A hand-computed 2x2 case: catches a reference that is wrong in the same
 * way as the kernels it checks. */
static void test_direct_by_hand(void **state)
{
    (void)state;
    conv_layer_spec s;
    conv_layer_spec_init(&s, CONV_LAYER_CONV2D);
    s.in_channels = 1, s.out_channels = 1, s.kernel_size[0] = s.kernel_size[1] = 2;
    s.padding[0] = s.padding[1] = 1;
    owned_weights w;
    weights_for(&s, &w);
    const float kernel[4] = {1, 2, 3, 4};
    memcpy(w.t[0].tensor.data, kernel, sizeof kernel);
    w.t[1].tensor.data[0] = 0.5f;
    conv_tensor in, out;
    random_input(&in, &rng_state, 1, 1, 2, 2);
    const float x[4] = {1, 2, 3, 4};
    memcpy(in.data, x, sizeof x);
    for (int algo = CONV_ALGO_DIRECT; algo <= CONV_ALGO_IM2COL; algo++) {
        s.algorithm = (conv_algorithm)algo;
        assert_int_equal(run_layer(&s, &w, &in, &out, NULL, NULL), CONV_OK);
        /* padded input 4x4, output 3x3; out[0][0] = 4*x00 = 4 (+ bias) */
        /* cross-correlation of the zero-padded 4x4 input, e.g. out[0][1] =
         * 3*x00 + 4*x01 = 11 and out[1][1] = 1*1 + 2*2 + 3*3 + 4*4 = 30 */
        const float want[9] = {4.5f, 11.5f, 6.5f, 14.5f, 30.5f, 14.5f, 6.5f, 11.5f, 4.5f};
        for (int i = 0; i < 9; i++) assert_float_equal(out.data[i], want[i], 1e-6);
        conv_tensor_free(&out);
    }
    conv_tensor_free(&in);
    free_weights(&w);
}

/* -------------------------------------------------- rejection messages */

static void expect_shape_error(const conv_layer_spec *s, int64_t n, int64_t c, int64_t h, int64_t w,
                               conv_status want, const char *needle)
{
    int64_t in[4] = {n, c, h, w}, out[4];
    conv_error err = {{0}};
    conv_status st = conv_layer_output_shape(s, in, out, &err);
    if (st != want || !strstr(err.message, needle))
        fail_msg("expected %s with \"%s\", got %s: %s", conv_status_name(want), needle, conv_status_name(st),
                 err.message);
}

static void test_rejection_rules(void **state)
{
    (void)state;
    conv_layer_spec s;
    conv_layer_spec_init(&s, CONV_LAYER_CONV2D);
    s.in_channels = 6, s.out_channels = 4, s.kernel_size[0] = s.kernel_size[1] = 3;

    s.groups = 4;
    expect_shape_error(&s, 1, 6, 8, 8, CONV_INVALID_PARAMETER, "in_channels must be divisible by groups");
    s.groups = 3;
    expect_shape_error(&s, 1, 6, 8, 8, CONV_INVALID_PARAMETER, "out_channels must be divisible by groups");
    s.groups = 0;
    expect_shape_error(&s, 1, 6, 8, 8, CONV_INVALID_PARAMETER, "groups must be a positive integer");
    s.groups = 2;

    s.padding_kind = CONV_PADDING_SAME;
    s.stride[0] = 2;
    expect_shape_error(&s, 1, 6, 8, 8, CONV_INVALID_PARAMETER, "padding='same' is not supported for strided");
    s.padding_kind = CONV_PADDING_EXPLICIT;
    s.stride[0] = 0;
    expect_shape_error(&s, 1, 6, 8, 8, CONV_INVALID_PARAMETER, "stride must be positive");
    s.stride[0] = 1;
    s.dilation[1] = -1;
    expect_shape_error(&s, 1, 6, 8, 8, CONV_INVALID_PARAMETER, "dilation must be positive");
    s.dilation[1] = 1;
    s.kernel_size[0] = 0;
    expect_shape_error(&s, 1, 6, 8, 8, CONV_INVALID_PARAMETER, "kernel_size must be positive");
    s.kernel_size[0] = 3;
    s.padding[0] = -1;
    expect_shape_error(&s, 1, 6, 8, 8, CONV_INVALID_PARAMETER, "padding must be non-negative");
    s.padding[0] = 0;

    expect_shape_error(&s, 1, 5, 8, 8, CONV_INVALID_SHAPE, "input channels must equal in_channels");
    expect_shape_error(&s, 1, 6, 2, 8, CONV_INVALID_SHAPE, "kernel must fit the padded input");
    s.dilation[0] = 4; /* effective kernel 9 > 8 */
    expect_shape_error(&s, 1, 6, 8, 8, CONV_INVALID_SHAPE, "kernel must fit the padded input");
    s.dilation[0] = 1;

    s.padding_mode = CONV_PAD_REFLECT;
    s.padding[0] = s.padding[1] = 2;
    expect_shape_error(&s, 1, 6, 2, 8, CONV_INVALID_SHAPE, "reflect padding must be smaller than the input");
    s.padding_mode = CONV_PAD_CIRCULAR;
    expect_shape_error(&s, 1, 6, 8, 1, CONV_INVALID_SHAPE, "circular padding must not exceed the input");
    s.padding_mode = CONV_PAD_REPLICATE; /* replicate has no such limit */
    int64_t in[4] = {1, 6, 1, 1}, out[4];
    assert_int_equal(conv_layer_output_shape(&s, in, out, NULL), CONV_OK);
    assert_int_equal(out[2], 3);

    expect_shape_error(&s, 1, 6, 0, 8, CONV_INVALID_SHAPE, "positive dimensions");

    conv_layer_spec bn;
    conv_layer_spec_init(&bn, CONV_LAYER_BATCHNORM2D);
    bn.num_features = 4;
    expect_shape_error(&bn, 1, 3, 4, 4, CONV_INVALID_SHAPE, "num_features");
    bn.eps = 0;
    expect_shape_error(&bn, 1, 4, 4, 4, CONV_INVALID_PARAMETER, "eps must be a positive");

    conv_layer_spec pool;
    conv_layer_spec_init(&pool, CONV_LAYER_MAXPOOL2D);
    pool.kernel_size[0] = pool.kernel_size[1] = 3;
    pool.padding[0] = 2;
    expect_shape_error(&pool, 1, 1, 8, 8, CONV_INVALID_PARAMETER, "pad should be at most half of kernel size");
    pool.padding[0] = 0;
    expect_shape_error(&pool, 1, 1, 2, 8, CONV_INVALID_SHAPE, "too small");

    conv_layer_spec sep;
    conv_layer_spec_init(&sep, CONV_LAYER_SEPARABLE_CONV2D);
    sep.in_channels = 3, sep.out_channels = 10, sep.kernel_size[0] = sep.kernel_size[1] = 3;
    sep.depth_multiplier = 0;
    expect_shape_error(&sep, 1, 3, 8, 8, CONV_INVALID_PARAMETER, "depth_multiplier must be positive");
    sep.depth_multiplier = 1;
    sep.algorithm = CONV_ALGO_IM2COL;
    expect_shape_error(&sep, 1, 3, 8, 8, CONV_UNSUPPORTED_ALGORITHM, "cannot run a SeparableConv2d");
}

static void test_forced_algorithm_that_does_not_fit(void **state)
{
    (void)state;
    conv_layer_spec s;
    conv_layer_spec_init(&s, CONV_LAYER_CONV2D);
    s.in_channels = 2, s.out_channels = 2, s.kernel_size[0] = s.kernel_size[1] = 3;
    s.algorithm = CONV_ALGO_GEMM_1X1;
    owned_weights w;
    weights_for(&s, &w);
    conv_model *m;
    conv_error err;
    assert_int_equal(conv_model_create(&s, 1, w.t, w.n, NULL, &m, &err), CONV_OK);
    conv_plan *plan;
    int64_t shape[4] = {1, 2, 5, 5};
    assert_int_equal(conv_plan_create(m, shape, &plan, &err), CONV_UNSUPPORTED_ALGORITHM);
    assert_non_null(strstr(err.message, "gemm_1x1"));
    conv_model_destroy(m);
    free_weights(&w);
}

/* ------------------------------------------------------- weight matching */

static void test_weight_errors(void **state)
{
    (void)state;
    conv_layer_spec s;
    conv_layer_spec_init(&s, CONV_LAYER_CONV2D);
    s.in_channels = 3, s.out_channels = 10, s.kernel_size[0] = s.kernel_size[1] = 3;
    owned_weights w;
    weights_for(&s, &w);
    conv_model *m;
    conv_error err;

    /* missing bias */
    assert_int_equal(conv_model_create(&s, 1, w.t, 1, NULL, &m, &err), CONV_INVALID_WEIGHTS);
    assert_non_null(strstr(err.message, "missing weight \"0.bias\""));
    assert_non_null(strstr(err.message, "[10]"));

    /* mis-shaped weight: both shapes in the message */
    int64_t bad_dims[3] = {10, 3, 3};
    owned_weights bad;
    memset(&bad, 0, sizeof bad);
    add_weight(&bad, &rng_state, "0.weight", 3, bad_dims);
    bad.t[1] = w.t[1];
    assert_int_equal(conv_model_create(&s, 1, bad.t, 2, NULL, &m, &err), CONV_INVALID_WEIGHTS);
    assert_non_null(strstr(err.message, "0.weight"));
    assert_non_null(strstr(err.message, "[10, 3, 3, 3]"));
    assert_non_null(strstr(err.message, "[10, 3, 3]"));
    conv_tensor_free(&bad.t[0].tensor);

    /* unexpected float key */
    int64_t one = 1;
    add_weight(&w, &rng_state, "1.weight", 1, &one);
    assert_int_equal(conv_model_create(&s, 1, w.t, w.n, NULL, &m, &err), CONV_INVALID_WEIGHTS);
    assert_non_null(strstr(err.message, "unexpected weight \"1.weight\""));

    /* integer tensors the model does not use are ignored ... */
    snprintf(w.names[2], sizeof w.names[2], "0.num_batches_tracked");
    w.t[2].is_float = false;
    w.t[2].dtype = "I64";
    assert_int_equal(conv_model_create(&s, 1, w.t, w.n, NULL, &m, &err), CONV_OK);
    conv_model_destroy(m);
    /* ... but an integer tensor where a float one belongs is an error */
    w.t[0].is_float = false;
    w.t[0].dtype = "I32";
    assert_int_equal(conv_model_create(&s, 1, w.t, w.n, NULL, &m, &err), CONV_INVALID_WEIGHTS);
    assert_non_null(strstr(err.message, "must be a float tensor, got I32"));
    free_weights(&w);
}

/* --------------------------------------------- statistics, by hand */

static void test_statistics_by_hand(void **state)
{
    (void)state;
    /* The first layers of the MobileNet example at 1x3x224x224:
     *  0 Conv2d(3,32,3,s2,p1,no bias): out 112x112; MACs = 32*112*112*3*9 = 10,838,016;
     *    params 864; RF 3, jump 2
     *  1 BatchNorm2d(32): folded -> 0 MACs, params 64; RF 3, jump 2
     *  2 ReLU6: 0; RF 3
     *  3 Conv2d(32,32,3,p1,groups 32,no bias): MACs = 32*112*112*9 = 3,612,672; RF 3+2*2 = 7, jump 2;
     *    standard equivalent 32*112*112*32*9 = 115,605,504; ratio 1/32 (=0.03125), textbook 1/32+1/9
     *  4 Conv2d(32,64,1): MACs = 64*112*112*32 = 25,690,112, params 2048 + 64; RF 7
     *  5 MaxPool2d(2): RF 7 + 1*2 = 9, jump 4
     *  6 AvgPool2d(3, stride 1, padding 1): out 56x56; MACs = 64*56*56*9 = 1,806,336; RF 9+2*4 = 17 */
    conv_layer_spec l[7];
    conv_layer_spec_init(&l[0], CONV_LAYER_CONV2D);
    l[0].in_channels = 3, l[0].out_channels = 32, l[0].kernel_size[0] = l[0].kernel_size[1] = 3;
    l[0].stride[0] = l[0].stride[1] = 2, l[0].padding[0] = l[0].padding[1] = 1, l[0].bias = false;
    conv_layer_spec_init(&l[1], CONV_LAYER_BATCHNORM2D);
    l[1].num_features = 32;
    conv_layer_spec_init(&l[2], CONV_LAYER_RELU6);
    conv_layer_spec_init(&l[3], CONV_LAYER_CONV2D);
    l[3].in_channels = 32, l[3].out_channels = 32, l[3].kernel_size[0] = l[3].kernel_size[1] = 3;
    l[3].padding[0] = l[3].padding[1] = 1, l[3].groups = 32, l[3].bias = false;
    conv_layer_spec_init(&l[4], CONV_LAYER_CONV2D);
    l[4].in_channels = 32, l[4].out_channels = 64, l[4].kernel_size[0] = l[4].kernel_size[1] = 1;
    conv_layer_spec_init(&l[5], CONV_LAYER_MAXPOOL2D);
    l[5].kernel_size[0] = l[5].kernel_size[1] = 2;
    conv_layer_spec_init(&l[6], CONV_LAYER_AVGPOOL2D);
    l[6].kernel_size[0] = l[6].kernel_size[1] = 3;
    l[6].stride[0] = l[6].stride[1] = 1, l[6].padding[0] = l[6].padding[1] = 1;

    conv_model_options opts;
    conv_model_options_init(&opts);
    opts.structure_only = true;
    conv_model *m;
    conv_plan *plan;
    conv_error err;
    assert_int_equal(conv_model_create(l, 7, NULL, 0, &opts, &m, &err), CONV_OK);
    int64_t shape[4] = {1, 3, 224, 224};
    assert_int_equal(conv_plan_create(m, shape, &plan, &err), CONV_OK);
    const conv_model_stats *st = conv_plan_stats(plan);
    assert_int_equal(st->n_layers, 7);
    assert_int_equal(st->layers[0].macs, 10838016);
    assert_int_equal(st->layers[0].flops, 2 * 10838016);
    assert_int_equal(st->layers[0].params, 864);
    assert_int_equal(st->layers[0].output_shape[2], 112);
    assert_int_equal(st->layers[0].receptive_field[0], 3);
    assert_int_equal(st->layers[0].jump[0], 2);
    assert_int_equal(st->layers[1].macs, 0);
    assert_int_equal(st->layers[1].params, 64);
    assert_int_equal(st->layers[1].fused_into, 0);
    assert_string_equal(st->layers[1].execution, "folded");
    assert_int_equal(st->layers[2].fused_into, 0);
    assert_string_equal(st->layers[2].execution, "fused");
    assert_int_equal(st->layers[2].receptive_field[1], 3);
    assert_int_equal(st->layers[3].macs, 3612672);
    assert_int_equal(st->layers[3].receptive_field[0], 7);
    assert_int_equal(st->layers[3].jump[1], 2);
    assert_true(st->layers[3].has_standard_equivalent);
    assert_int_equal(st->layers[3].standard_macs, 115605504);
    assert_float_equal(st->layers[3].flop_ratio, 1.0 / 32, 1e-12);
    assert_float_equal(st->layers[3].textbook_ratio, 1.0 / 32 + 1.0 / 9, 1e-12);
    assert_false(st->layers[4].has_standard_equivalent);
    assert_int_equal(st->layers[4].macs, 25690112);
    assert_int_equal(st->layers[4].params, 2048 + 64);
    /* the depthwise conv, its BN and ReLU6 and the 1x1 conv run as one fused pair */
    assert_int_equal(st->layers[3].algorithm, CONV_ALGO_FUSED_SEPARABLE);
    assert_string_equal(st->layers[3].execution, "fused_separable");
    assert_int_equal(st->layers[3].fused_into, -1);
    assert_int_equal(st->layers[4].algorithm, CONV_ALGO_FUSED_SEPARABLE);
    assert_string_equal(st->layers[4].execution, "fused");
    assert_int_equal(st->layers[4].fused_into, 3);
    assert_int_equal(st->layers[5].receptive_field[0], 9);
    assert_int_equal(st->layers[5].jump[0], 4);
    assert_int_equal(st->layers[5].macs, 0);
    assert_int_equal(st->layers[6].output_shape[3], 56);
    assert_int_equal(st->layers[6].macs, 1806336);
    assert_int_equal(st->layers[6].receptive_field[0], 17);
    assert_int_equal(st->macs, 10838016 + 3612672 + 25690112 + 1806336);
    assert_int_equal(st->flops, 2 * st->macs);
    assert_int_equal(st->params, 864 + 64 + 288 + 2112);
    assert_int_equal(st->receptive_field[0], 17);

    /* a structure-only model plans but refuses to run */
    assert_int_equal(conv_model_run(m, plan, NULL, NULL, NULL, NULL, NULL, &err), CONV_INVALID_STATE);
    conv_plan_destroy(plan);
    conv_model_destroy(m);
}

static void test_separable_statistics(void **state)
{
    (void)state;
    /* the classic exercise: 1x3x128x128 -> SeparableConv2d(3, 10, 3, padding 1)
     * depthwise MACs 3*128*128*9 = 442,368; pointwise 10*128*128*3 = 491,520;
     * standard 10*128*128*3*9 = 4,423,680; ratio 933,888 / 4,423,680 */
    conv_layer_spec s;
    conv_layer_spec_init(&s, CONV_LAYER_SEPARABLE_CONV2D);
    s.in_channels = 3, s.out_channels = 10, s.kernel_size[0] = s.kernel_size[1] = 3;
    s.padding[0] = s.padding[1] = 1;
    conv_model_options opts;
    conv_model_options_init(&opts);
    opts.structure_only = true;
    conv_model *m;
    conv_plan *plan;
    assert_int_equal(conv_model_create(&s, 1, NULL, 0, &opts, &m, NULL), CONV_OK);
    int64_t shape[4] = {1, 3, 128, 128};
    assert_int_equal(conv_plan_create(m, shape, &plan, NULL), CONV_OK);
    const conv_layer_stats *ls = &conv_plan_stats(plan)->layers[0];
    assert_int_equal(ls->macs, 442368 + 491520);
    assert_int_equal(ls->params, 27 + 3 + 30 + 10);
    assert_int_equal(ls->standard_macs, 4423680);
    assert_float_equal(ls->flop_ratio, 933888.0 / 4423680.0, 1e-12);
    assert_float_equal(ls->textbook_ratio, 0.1 + 1.0 / 9, 1e-12);
    assert_int_equal(ls->receptive_field[0], 3);
    conv_plan_destroy(plan);
    conv_model_destroy(m);
}

/* ------------------------------------------------ fused separable pairs */

/* dw Conv2d(c, c*mult, k, groups c) [+ BN] [+ ReLU6] + Conv2d(c*mult, out, 1) [+ ReLU]
 * as layers 0..n-1; returns n */
static size_t dw_pw_layers(conv_layer_spec *l, int64_t c, int64_t mult, int64_t out, int64_t k, int64_t stride,
                           int64_t dilation, conv_padding_mode mode, bool bn, bool relu6)
{
    size_t n = 0;
    conv_layer_spec_init(&l[n], CONV_LAYER_CONV2D);
    l[n].in_channels = c, l[n].out_channels = c * mult, l[n].groups = c;
    l[n].kernel_size[0] = l[n].kernel_size[1] = k;
    l[n].stride[0] = l[n].stride[1] = stride;
    l[n].dilation[0] = l[n].dilation[1] = dilation;
    l[n].padding[0] = l[n].padding[1] = dilation * (k / 2);
    l[n].padding_mode = mode;
    n++;
    if (bn) {
        conv_layer_spec_init(&l[n], CONV_LAYER_BATCHNORM2D);
        l[n++].num_features = c * mult;
    }
    if (relu6) conv_layer_spec_init(&l[n++], CONV_LAYER_RELU6);
    conv_layer_spec_init(&l[n], CONV_LAYER_CONV2D);
    l[n].in_channels = c * mult, l[n].out_channels = out, l[n].kernel_size[0] = l[n].kernel_size[1] = 1;
    n++;
    conv_layer_spec_init(&l[n++], CONV_LAYER_RELU);
    return n;
}

static void run_model(const conv_layer_spec *l, size_t n, const owned_weights *w, bool fuse, const conv_tensor *in,
                      conv_tensor *out, conv_threadpool *pool, conv_layer_stats *first_row)
{
    conv_model_options opts;
    conv_model_options_init(&opts);
    opts.fuse = fuse;
    conv_model *m;
    conv_error err;
    if (conv_model_create(l, n, w->t, w->n, &opts, &m, &err)) fail_msg("%s", err.message);
    conv_model_stats stats;
    conv_layer_stats rows[8];
    stats.layers = rows;
    if (conv_model_run_alloc(m, in, out, pool, &stats, &err)) fail_msg("%s", err.message);
    if (first_row) *first_row = rows[0];
    conv_model_destroy(m);
}

static void test_fused_pair_matches_unfused(void **state)
{
    (void)state;
    /* shapes around the tile rows (128 KiB of mid channels x width per tile):
     * several tiles with a short last one, one-row tiles, 1x1 maps, batch 3,
     * stride 2, dilation 2, multiplier 2, reflect padding, 5x5 */
    static const struct {
        int64_t n, c, h, w, mult, out, k, stride, dilation;
        conv_padding_mode mode;
        bool bn, relu6;
    } cases[] = {
        {1, 32, 37, 112, 1, 64, 3, 1, 1, CONV_PAD_ZEROS, true, true},
        {2, 64, 9, 600, 1, 24, 3, 1, 1, CONV_PAD_ZEROS, false, true},
        {3, 6, 1, 1, 1, 10, 3, 1, 1, CONV_PAD_ZEROS, true, false},
        {1, 12, 31, 29, 2, 20, 3, 2, 1, CONV_PAD_ZEROS, true, true},
        {2, 8, 17, 13, 1, 7, 3, 1, 2, CONV_PAD_REFLECT, false, false},
        {1, 20, 23, 21, 1, 33, 5, 1, 1, CONV_PAD_ZEROS, true, true},
    };
    conv_threadpool *pool;
    assert_int_equal(conv_threadpool_create(2, &pool, NULL), CONV_OK);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        conv_layer_spec l[5];
        size_t n = dw_pw_layers(l, cases[i].c, cases[i].mult, cases[i].out, cases[i].k, cases[i].stride,
                                cases[i].dilation, cases[i].mode, cases[i].bn, cases[i].relu6);
        owned_weights w;
        model_weights(l, n, &rng_state, &w);
        conv_tensor in, want, got;
        random_input(&in, &rng_state, cases[i].n, cases[i].c, cases[i].h, cases[i].w);
        conv_layer_stats row;
        run_model(l, n, &w, false, &in, &want, NULL, &row);
        assert_int_not_equal(row.algorithm, CONV_ALGO_FUSED_SEPARABLE);
        for (int threaded = 0; threaded < 2; threaded++) {
            run_model(l, n, &w, true, &in, &got, threaded ? pool : NULL, &row);
            assert_int_equal(row.algorithm, CONV_ALGO_FUSED_SEPARABLE);
            char what[64];
            snprintf(what, sizeof what, "fused case %zu, %d thread(s)", i, threaded + 1);
            assert_close(&got, &want, 1e-5, what);
            conv_tensor_free(&got);
        }
        conv_tensor_free(&want);
        conv_tensor_free(&in);
        free_weights(&w);
    }
    conv_threadpool_destroy(pool);
}

static void test_fused_pair_statistics(void **state)
{
    (void)state;
    conv_layer_spec l[6];
    size_t n = dw_pw_layers(l, 8, 1, 16, 3, 1, 1, CONV_PAD_ZEROS, true, true);
    assert_int_equal(n, 5);
    conv_model_options opts;
    conv_model_options_init(&opts);
    opts.structure_only = true;
    conv_model *m;
    conv_plan *plan;
    conv_error err;
    int64_t shape[4] = {1, 8, 20, 20};

    /* unfused: each convolution is its own op */
    opts.fuse = false;
    assert_int_equal(conv_model_create(l, n, NULL, 0, &opts, &m, &err), CONV_OK);
    assert_int_equal(conv_plan_create(m, shape, &plan, &err), CONV_OK);
    const conv_model_stats *st = conv_plan_stats(plan);
    assert_int_equal(st->layers[0].algorithm, CONV_ALGO_DEPTHWISE);
    assert_int_equal(st->layers[3].algorithm, CONV_ALGO_GEMM_1X1);
    assert_int_equal(st->layers[3].fused_into, -1);
    conv_plan_destroy(plan);
    conv_model_destroy(m);

    /* fusion off (so no activation is fused and ReLU6 would separate the
     * pair) but the pair forced through the 1x1 layer's algorithm */
    conv_layer_spec f[4];
    size_t nf = dw_pw_layers(f, 8, 1, 16, 3, 1, 1, CONV_PAD_ZEROS, true, false);
    f[2].algorithm = CONV_ALGO_FUSED_SEPARABLE;
    assert_int_equal(conv_model_create(f, nf, NULL, 0, &opts, &m, &err), CONV_OK);
    assert_int_equal(conv_plan_create(m, shape, &plan, &err), CONV_OK);
    st = conv_plan_stats(plan);
    assert_int_equal(st->layers[0].algorithm, CONV_ALGO_FUSED_SEPARABLE);
    assert_string_equal(st->layers[0].execution, "fused_separable");
    assert_int_equal(st->layers[1].fused_into, 0);
    assert_string_equal(st->layers[1].execution, "folded");
    assert_int_equal(st->layers[2].fused_into, 0);
    assert_string_equal(st->layers[2].execution, "fused");
    assert_int_equal(st->layers[2].algorithm, CONV_ALGO_FUSED_SEPARABLE);
    assert_int_equal(st->layers[3].fused_into, -1); /* fusion off: the ReLU runs on its own */
    assert_string_equal(st->layers[3].execution, "elementwise");
    /* costs stay per layer: the 1x1 keeps its MACs, the folded BN has none */
    assert_int_equal(st->layers[2].macs, 16 * 20 * 20 * 8);
    assert_int_equal(st->layers[1].macs, 0);
    conv_plan_destroy(plan);
    conv_model_destroy(m);

    /* fusion on: BN, ReLU6, the 1x1 and its ReLU all computed by layer 0 */
    opts.fuse = true;
    assert_int_equal(conv_model_create(l, n, NULL, 0, &opts, &m, &err), CONV_OK);
    assert_int_equal(conv_plan_create(m, shape, &plan, &err), CONV_OK);
    st = conv_plan_stats(plan);
    assert_int_equal(st->layers[0].algorithm, CONV_ALGO_FUSED_SEPARABLE);
    for (size_t i = 1; i < n; i++) assert_int_equal(st->layers[i].fused_into, 0);
    assert_string_equal(st->layers[2].execution, "fused");
    assert_string_equal(st->layers[3].execution, "fused");
    assert_string_equal(st->layers[4].execution, "fused");
    conv_plan_destroy(plan);
    conv_model_destroy(m);

    /* another algorithm forced on either layer keeps them apart */
    opts.fuse = true;
    l[3].algorithm = CONV_ALGO_AUTO;
    l[0].algorithm = CONV_ALGO_DEPTHWISE;
    assert_int_equal(conv_model_create(l, n, NULL, 0, &opts, &m, &err), CONV_OK);
    assert_int_equal(conv_plan_create(m, shape, &plan, &err), CONV_OK);
    assert_int_equal(conv_plan_stats(plan)->layers[3].fused_into, -1);
    assert_int_equal(conv_plan_stats(plan)->layers[3].algorithm, CONV_ALGO_GEMM_1X1);
    conv_plan_destroy(plan);
    conv_model_destroy(m);
    l[0].algorithm = CONV_ALGO_AUTO;
    l[3].algorithm = CONV_ALGO_IM2COL;
    assert_int_equal(conv_model_create(l, n, NULL, 0, &opts, &m, &err), CONV_OK);
    assert_int_equal(conv_plan_create(m, shape, &plan, &err), CONV_OK);
    assert_int_equal(conv_plan_stats(plan)->layers[0].algorithm, CONV_ALGO_DEPTHWISE);
    assert_int_equal(conv_plan_stats(plan)->layers[3].algorithm, CONV_ALGO_IM2COL);
    conv_plan_destroy(plan);
    conv_model_destroy(m);

    /* a forced fused_separable with no 1x1 partner cannot run */
    l[0].algorithm = CONV_ALGO_FUSED_SEPARABLE;
    assert_int_equal(conv_model_create(l, 1, NULL, 0, &opts, &m, &err), CONV_OK);
    assert_int_equal(conv_plan_create(m, shape, &plan, &err), CONV_UNSUPPORTED_ALGORITHM);
    conv_model_destroy(m);

    /* SeparableConv2d: fused by default, unfused when another algorithm is forced */
    conv_layer_spec sep;
    conv_layer_spec_init(&sep, CONV_LAYER_SEPARABLE_CONV2D);
    sep.in_channels = 8, sep.out_channels = 16, sep.kernel_size[0] = sep.kernel_size[1] = 3;
    sep.padding[0] = sep.padding[1] = 1;
    assert_int_equal(conv_model_create(&sep, 1, NULL, 0, &opts, &m, &err), CONV_OK);
    assert_int_equal(conv_plan_create(m, shape, &plan, &err), CONV_OK);
    assert_int_equal(conv_plan_stats(plan)->layers[0].algorithm, CONV_ALGO_FUSED_SEPARABLE);
    assert_string_equal(conv_plan_stats(plan)->layers[0].execution, "fused_separable");
    conv_plan_destroy(plan);
    conv_model_destroy(m);
    sep.algorithm = CONV_ALGO_DEPTHWISE;
    assert_int_equal(conv_model_create(&sep, 1, NULL, 0, &opts, &m, &err), CONV_OK);
    assert_int_equal(conv_plan_create(m, shape, &plan, &err), CONV_OK);
    assert_string_equal(conv_plan_stats(plan)->layers[0].execution, "depthwise:depthwise+pointwise:gemm_1x1");
    conv_plan_destroy(plan);
    conv_model_destroy(m);
}

/* ------------------------------------------------------------- limits */

static void test_overflowing_shapes(void **state)
{
    (void)state;
    int64_t dims[4] = {1LL << 40, 1LL << 40, 1LL << 40, 4};
    conv_tensor t;
    conv_error err;
    assert_int_equal(conv_tensor_alloc(&t, 4, dims, &err), CONV_LIMIT_EXCEEDED);

    conv_layer_spec s;
    conv_layer_spec_init(&s, CONV_LAYER_CONV2D);
    s.in_channels = 1, s.out_channels = 1, s.kernel_size[0] = s.kernel_size[1] = 1;
    conv_model_options opts;
    conv_model_options_init(&opts);
    opts.structure_only = true;
    conv_model *m;
    assert_int_equal(conv_model_create(&s, 1, NULL, 0, &opts, &m, NULL), CONV_OK);
    conv_plan *plan;
    int64_t huge[4] = {1 << 30, 1, 1 << 30, 1 << 30};
    assert_int_equal(conv_plan_create(m, huge, &plan, &err), CONV_LIMIT_EXCEEDED);
    int64_t too_big[4] = {1, 1, 1LL << 31, 1};
    assert_int_equal(conv_plan_create(m, too_big, &plan, &err), CONV_LIMIT_EXCEEDED);
    conv_model_destroy(m);

    s.out_channels = 1LL << 40;
    assert_int_equal(conv_layer_spec_validate(&s, &err), CONV_LIMIT_EXCEEDED);

    size_t out;
    assert_false(conv_size_mul(SIZE_MAX / 2 + 1, 2, &out));
    assert_false(conv_size_add(SIZE_MAX, 1, &out));
    int64_t neg[2] = {4, -1};
    assert_false(conv_dims_product(neg, 2, &out));
}

/* -------------------------------------------------------- thread pool */

typedef struct count_ctx {
    int hits[1000];
} count_ctx;

static void count_task(void *ctx, size_t i, int thread)
{
    count_ctx *c = ctx;
    assert_true(thread >= 0 && thread < 4);
    __atomic_add_fetch(&c->hits[i], 1, __ATOMIC_RELAXED);
}

static void test_threadpool_runs_each_index_once(void **state)
{
    (void)state;
    conv_threadpool *pool;
    assert_int_equal(conv_threadpool_create(4, &pool, NULL), CONV_OK);
    assert_int_equal(conv_threadpool_size(pool), 4);
    for (int round = 0; round < 50; round++) {
        count_ctx c;
        memset(&c, 0, sizeof c);
        size_t n = (size_t)(round * 19 % 1000) + 1;
        conv_parallel_for(pool, n, count_task, &c);
        for (size_t i = 0; i < 1000; i++) assert_int_equal(c.hits[i], i < n ? 1 : 0);
    }
    conv_threadpool_destroy(pool);
    assert_int_equal(conv_threadpool_create(0, &pool, NULL), CONV_INVALID_PARAMETER);
}

/* Jobs back to back, of varying sizes, with pauses longer than the workers'
 * spin now and then: a worker that arrives late to a finished job must not
 * run an index of the next one (each index exactly once), and workers that
 * went to sleep must wake for the next job. */
typedef struct spin_ctx {
    int hits[64];
    unsigned work;
} spin_ctx;

static void spin_task(void *ctx, size_t i, int thread)
{
    (void)thread;
    spin_ctx *c = ctx;
    volatile float sink = 1.0f;
    for (unsigned k = 0; k < c->work; k++) sink = sink * 1.0000001f;
    __atomic_add_fetch(&c->hits[i], 1, __ATOMIC_RELAXED);
}

static void test_threadpool_back_to_back_jobs(void **state)
{
    (void)state;
    uint32_t lcg = 12345;
    for (int threads = 2; threads <= 4; threads++) {
        conv_threadpool *pool;
        assert_int_equal(conv_threadpool_create(threads, &pool, NULL), CONV_OK);
        for (int job = 0; job < 4000; job++) {
            lcg = lcg * 1664525u + 1013904223u;
            spin_ctx c;
            memset(&c, 0, sizeof c);
            size_t n = (lcg >> 8) % 64 + 1;
            c.work = (lcg >> 20) % 4 == 0 ? (lcg >> 4) % 2000 : 0;
            if (job % 400 == 399) {
                struct timespec pause = {0, 300 * 1000};
                nanosleep(&pause, NULL);
            }
            conv_parallel_for(pool, n, spin_task, &c);
            for (size_t i = 0; i < 64; i++) assert_int_equal(c.hits[i], i < n ? 1 : 0);
        }
        conv_threadpool_destroy(pool);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_algorithms_match_direct),
        cmocka_unit_test(test_direct_by_hand),
        cmocka_unit_test(test_rejection_rules),
        cmocka_unit_test(test_forced_algorithm_that_does_not_fit),
        cmocka_unit_test(test_weight_errors),
        cmocka_unit_test(test_statistics_by_hand),
        cmocka_unit_test(test_separable_statistics),
        cmocka_unit_test(test_fused_pair_matches_unfused),
        cmocka_unit_test(test_fused_pair_statistics),
        cmocka_unit_test(test_overflowing_shapes),
        cmocka_unit_test(test_threadpool_runs_each_index_once),
        cmocka_unit_test(test_threadpool_back_to_back_jobs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
