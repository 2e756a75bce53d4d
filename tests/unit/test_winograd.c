/* test_winograd.c — the Winograd F(4x4, 3x3) kernel against a double-precision
 * reference (kernel level: asymmetric padding, activations, both transform
 * builds) and against the direct kernel through the public API (every map
 * size up to 13, padding, groups, batches, bias, thread pools). */
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
#include "core/internal.h"
#include "core/kernels/winograd.h"

static uint32_t rng_state = 2024;
static float rnd(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)((rng_state >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static float *random_floats(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++) p[i] = rnd();
    return p;
}

/* ------------------------------------------------------ kernel level */

typedef struct wcase {
    int64_t n, cin, cout, groups, h, w;
    int64_t pad_top, pad_bottom, pad_left, pad_right;
    bool bias;
    conv_activation act;
} wcase;

/* The exact result, up to double rounding, with conv_activate's rules. */
static void reference(const wcase *k, const float *in, const float *weight, const float *bias, double *out,
                      int64_t oh, int64_t ow)
{
    int64_t cin_g = k->cin / k->groups, cout_g = k->cout / k->groups;
    for (int64_t n = 0; n < k->n; n++)
        for (int64_t oc = 0; oc < k->cout; oc++)
            for (int64_t y = 0; y < oh; y++)
                for (int64_t x = 0; x < ow; x++) {
                    double acc = bias ? bias[oc] : 0.0;
                    int64_t g = oc / cout_g;
                    for (int64_t ic = 0; ic < cin_g; ic++) {
                        const float *plane = in + ((n * k->cin + g * cin_g + ic) * k->h) * k->w;
                        const float *f = weight + (oc * cin_g + ic) * 9;
                        for (int ky = 0; ky < 3; ky++) {
                            int64_t iy = y - k->pad_top + ky;
                            if (iy < 0 || iy >= k->h) continue;
                            for (int kx = 0; kx < 3; kx++) {
                                int64_t ix = x - k->pad_left + kx;
                                if (ix < 0 || ix >= k->w) continue;
                                acc += (double)f[ky * 3 + kx] * plane[iy * k->w + ix];
                            }
                        }
                    }
                    if (k->act != CONV_ACT_NONE && acc < 0) acc = 0;
                    if (k->act == CONV_ACT_RELU6 && acc > 6) acc = 6;
                    out[((n * k->cout + oc) * oh + y) * ow + x] = acc;
                }
}

/* Runs the case through the kernel (AVX2 transforms when avx2) and returns
 * max |winograd - exact| / max |exact|; NaN in a result counts as failure. */
static double winograd_error(const wcase *k, conv_threadpool *pool, bool avx2)
{
    conv_params p = {
        .in_channels = k->cin, .out_channels = k->cout, .groups = k->groups,
        .kernel_h = 3, .kernel_w = 3, .stride_h = 1, .stride_w = 1, .dilation_h = 1, .dilation_w = 1,
        .pad_top = k->pad_top, .pad_bottom = k->pad_bottom, .pad_left = k->pad_left, .pad_right = k->pad_right,
        .activation = k->act,
    };
    const conv_kernel *kernel = conv_kernel_for(CONV_ALGO_WINOGRAD);
    assert_non_null(kernel);
    assert_true(kernel->supports(&p));
    conv_dims in = {k->n, k->cin, k->h, k->w};
    conv_dims out = {k->n, k->cout, k->h + k->pad_top + k->pad_bottom - 2, k->w + k->pad_left + k->pad_right - 2};
    size_t in_n = (size_t)(in.n * in.c * in.h * in.w), out_n = (size_t)(out.n * out.c * out.h * out.w);
    float *input = random_floats(in_n);
    float *weight = random_floats((size_t)(k->cout * (k->cin / k->groups) * 9));
    float *bias = k->bias ? random_floats((size_t)k->cout) : NULL;
    double *want = malloc(out_n * sizeof *want);
    assert_non_null(want);
    reference(k, input, weight, bias, want, out.h, out.w);

    void *packed = NULL;
    assert_int_equal(kernel->pack(&p, weight, bias, &packed, NULL), CONV_OK);
    size_t bytes;
    assert_true(kernel->workspace_size(&p, &in, &out, conv_threadpool_size(pool), &bytes));
    void *workspace = conv_aligned_alloc(bytes);
    assert_non_null(workspace);
    float *got = malloc(out_n * sizeof *got);
    assert_non_null(got);
    for (size_t i = 0; i < out_n; i++) got[i] = NAN; /* every element must be written */
    conv_run_args a = {
        .params = &p, .packed = packed, .weight = weight, .bias = bias, .input = input, .output = got,
        .in = in, .out = out, .workspace = workspace, .pool = pool,
    };
    conv_winograd_run_isa(&a, avx2);

    double scale = 0, worst = 0;
    for (size_t i = 0; i < out_n; i++) scale = fmax(scale, fabs(want[i]));
    for (size_t i = 0; i < out_n; i++) {
        double e = fabs((double)got[i] - want[i]);
        if (isnan(e)) e = INFINITY;
        worst = fmax(worst, e);
    }
    kernel->release(packed);
    conv_aligned_free(workspace);
    free(got), free(want), free(input), free(weight), free(bias);
    return worst / (scale > 0 ? scale : 1);
}

static void expect_close(const wcase *k, conv_threadpool *pool, bool avx2, double tolerance)
{
    double e = winograd_error(k, pool, avx2);
    if (!(e <= tolerance))
        fail_msg("n%lld %lld->%lld g%lld %lldx%lld pads %lld,%lld,%lld,%lld bias %d act %d avx2 %d threads %d: "
                 "relative error %g > %g",
                 (long long)k->n, (long long)k->cin, (long long)k->cout, (long long)k->groups, (long long)k->h,
                 (long long)k->w, (long long)k->pad_top, (long long)k->pad_bottom, (long long)k->pad_left,
                 (long long)k->pad_right, k->bias, (int)k->act, avx2, conv_threadpool_size(pool), e, tolerance);
}

/* the golden tests' tolerance; every case here stays well inside it */
#define TOLERANCE 1e-4

static void test_asymmetric_padding_and_activations(void **state)
{
    (void)state;
    conv_threadpool *pool;
    assert_int_equal(conv_threadpool_create(3, &pool, NULL), CONV_OK);
    const int64_t pads[][4] = {{0, 0, 0, 0}, {1, 1, 1, 1}, {2, 2, 2, 2}, {0, 1, 0, 1}, {1, 0, 2, 0}, {0, 2, 1, 3}};
    const conv_activation acts[] = {CONV_ACT_NONE, CONV_ACT_RELU, CONV_ACT_RELU6};
    for (size_t i = 0; i < sizeof pads / sizeof *pads; i++) {
        for (size_t j = 0; j < 3; j++) {
            for (int isa = 0; isa < 2; isa++) {
                wcase k = {2, 6, 4, 2, 11, 9, pads[i][0], pads[i][1], pads[i][2], pads[i][3], j != 1, acts[j]};
                expect_close(&k, isa ? pool : NULL, isa, TOLERANCE);
            }
        }
    }
    conv_threadpool_destroy(pool);
}

/* Segments and blocks: a map wide enough that a block ends mid tile row,
 * several blocks per image, thread counts that do and do not divide them. */
static void test_blocks_split_tile_rows(void **state)
{
    (void)state;
    for (int threads = 1; threads <= 3; threads++) {
        conv_threadpool *pool;
        assert_int_equal(conv_threadpool_create(threads, &pool, NULL), CONV_OK);
        wcase wide = {1, 16, 16, 1, 9, 150, 1, 1, 1, 1, true, CONV_ACT_NONE}; /* 38 tiles a row */
        wcase tall = {3, 8, 24, 1, 70, 37, 1, 1, 1, 1, false, CONV_ACT_RELU};
        for (int isa = 0; isa < 2; isa++) {
            expect_close(&wide, pool, isa, TOLERANCE);
            expect_close(&tall, pool, isa, TOLERANCE);
        }
        conv_threadpool_destroy(pool);
    }
}

/* wino_gemm's passes (up to 64 input channels per group): output channels
 * past one pass of 32 and not a multiple of its 4-row tiles, tile counts
 * that end in a 1- and 2-vector step, groups, and 65 input channels on the
 * packed side of the switch. */
static void test_gemm_passes_and_edges(void **state)
{
    (void)state;
    conv_threadpool *pool;
    assert_int_equal(conv_threadpool_create(2, &pool, NULL), CONV_OK);
    const wcase cases[] = {
        {2, 20, 37, 1, 13, 29, 1, 1, 1, 1, true, CONV_ACT_NONE},  /* 32 + 5 rows, 4 x 8 tiles a row */
        {1, 64, 70, 1, 23, 45, 1, 1, 1, 1, true, CONV_ACT_RELU6}, /* 64 channels: still wino_gemm */
        {1, 130, 66, 2, 9, 19, 1, 1, 1, 1, false, CONV_ACT_RELU}, /* 65 per group: packed operands */
        {3, 9, 33, 3, 8, 8, 0, 0, 0, 0, true, CONV_ACT_NONE},     /* 11 rows per group, one tile */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        for (int isa = 0; isa < 2; isa++) expect_close(&cases[i], isa ? pool : NULL, isa, TOLERANCE);
    conv_threadpool_destroy(pool);
}

/* Packed operands (more than 64 input channels per group): output channels
 * past one pass of 32 and not a multiple of the 4-row panels, input channels
 * not a multiple of the 8-channel transform tasks and past one K block of
 * 256, tile counts whose last V panel holds 1, 2 or 3 vectors, maps of
 * several blocks, groups, batches, 1 to 3 threads. */
static void test_packed_operands(void **state)
{
    (void)state;
    const wcase cases[] = {
        {1, 65, 37, 1, 13, 29, 1, 1, 1, 1, true, CONV_ACT_NONE},   /* 4 x 8 tiles: last panel 2 vectors */
        {2, 100, 70, 1, 9, 9, 1, 1, 1, 1, true, CONV_ACT_RELU6},   /* 9 tiles: 2 vectors, one panel */
        {1, 300, 9, 1, 11, 14, 0, 1, 2, 0, true, CONV_ACT_RELU},   /* K blocks 256 + 44 */
        {1, 72, 5, 1, 50, 50, 1, 1, 1, 1, false, CONV_ACT_NONE},   /* 169 tiles: blocks of 88 and 81 */
        {2, 196, 66, 2, 16, 24, 1, 1, 1, 1, true, CONV_ACT_NONE},  /* 98 per group, 24 tiles: 1 panel of 3 */
        {1, 130, 4, 1, 28, 28, 1, 1, 1, 1, true, CONV_ACT_RELU},   /* 49 tiles: last panel 1 vector */
        {1, 67, 3, 1, 3, 3, 0, 0, 0, 0, false, CONV_ACT_NONE},     /* one output pixel */
    };
    for (int threads = 1; threads <= 3; threads++) {
        conv_threadpool *pool;
        assert_int_equal(conv_threadpool_create(threads, &pool, NULL), CONV_OK);
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
            for (int isa = 0; isa < 2; isa++) expect_close(&cases[i], pool, isa, TOLERANCE);
        conv_threadpool_destroy(pool);
    }
}

/* The largest relative error per channel count, on random data in [-1, 1). */
static void test_error_by_channel_count(void **state)
{
    (void)state;
    conv_threadpool *pool;
    assert_int_equal(conv_threadpool_create(2, &pool, NULL), CONV_OK);
    const int64_t channels[] = {1, 3, 16, 64, 256, 512};
    for (size_t i = 0; i < sizeof channels / sizeof *channels; i++) {
        int64_t c = channels[i];
        int64_t size = c >= 256 ? 10 : 17;
        wcase k = {1, c, c >= 256 ? 32 : c, 1, size, size, 1, 1, 1, 1, true, CONV_ACT_NONE};
        double e = winograd_error(&k, pool, true);
        print_message("  %3lld input channels: max error %.2e of the largest output\n", (long long)c, e);
        assert_true(e <= TOLERANCE);
    }
    conv_threadpool_destroy(pool);
}

/* NaN from the bias passes the activation, as conv_activate lets it. */
static void test_nan_passes_activation(void **state)
{
    (void)state;
    conv_params p = {.in_channels = 2, .out_channels = 2, .groups = 1, .kernel_h = 3, .kernel_w = 3,
                     .stride_h = 1, .stride_w = 1, .dilation_h = 1, .dilation_w = 1, .activation = CONV_ACT_RELU6};
    const conv_kernel *kernel = conv_kernel_for(CONV_ALGO_WINOGRAD);
    conv_dims in = {1, 2, 6, 6}, out = {1, 2, 4, 4};
    float *input = random_floats(72), *weight = random_floats(36);
    float bias[2] = {NAN, 100.0f}, got[32];
    void *packed;
    assert_int_equal(kernel->pack(&p, weight, bias, &packed, NULL), CONV_OK);
    size_t bytes;
    assert_true(kernel->workspace_size(&p, &in, &out, 1, &bytes));
    void *ws = conv_aligned_alloc(bytes);
    for (int isa = 0; isa < 2; isa++) {
        conv_run_args a = {.params = &p, .packed = packed, .weight = weight, .bias = bias, .input = input,
                           .output = got, .in = in, .out = out, .workspace = ws};
        conv_winograd_run_isa(&a, isa);
        for (int i = 0; i < 16; i++) assert_true(isnan(got[i]));
        for (int i = 16; i < 32; i++) assert_float_equal(got[i], 6.0f, 0.0f);
    }
    kernel->release(packed);
    conv_aligned_free(ws);
    free(input), free(weight);
}

static void test_supports_and_workspace_limits(void **state)
{
    (void)state;
    const conv_kernel *kernel = conv_kernel_for(CONV_ALGO_WINOGRAD);
    conv_params p = {.in_channels = 16, .out_channels = 16, .groups = 1, .kernel_h = 3, .kernel_w = 3,
                     .stride_h = 1, .stride_w = 1, .dilation_h = 1, .dilation_w = 1};
    assert_true(kernel->supports(&p));
    conv_params q = p;
    q.kernel_w = 5;
    assert_false(kernel->supports(&q));
    q = p, q.stride_h = 2;
    assert_false(kernel->supports(&q));
    q = p, q.dilation_w = 2; /* on the mosaic of its dilation phases (conv_winograd_phased.c) */
    assert_true(kernel->supports(&q));
    q.stride_w = 2;
    assert_false(kernel->supports(&q));
    q = p, q.kernel_h = 1, q.kernel_w = 1;
    assert_false(kernel->supports(&q));

    size_t bytes;
    conv_dims in = {1, 16, 58, 58}, out = {1, 16, 56, 56};
    assert_true(kernel->workspace_size(&p, &in, &out, 2, &bytes));
    assert_true(bytes > 0);
    /* a tile count past int range, and channel counts whose V overflows size_t */
    conv_dims huge_in = {1, 16, (int64_t)1 << 40, (int64_t)1 << 40}, huge_out = huge_in;
    assert_false(kernel->workspace_size(&p, &huge_in, &huge_out, 1, &bytes));
    /* wide layers share V between the threads: what a thread adds does
     * not grow with the channel count */
    conv_params wide = p;
    wide.in_channels = wide.out_channels = (int64_t)1 << 24;
    assert_true(kernel->supports(&wide));
    size_t one, two;
    assert_true(kernel->workspace_size(&wide, &in, &out, 1, &one));
    assert_true(kernel->workspace_size(&wide, &in, &out, 2, &two));
    assert_true(two > one && two - one < ((size_t)1 << 20));
}

/* ------------------------------------------------- through the model API */

typedef struct owned_weights {
    conv_named_tensor t[2];
    size_t n;
} owned_weights;

static void layer_weights(const conv_layer_spec *s, owned_weights *w)
{
    conv_param_desc d[CONV_MAX_LAYER_PARAMS];
    static const char *names[] = {"0.weight", "0.bias"};
    w->n = conv_layer_param_descs(s, d);
    assert_true(w->n <= 2);
    for (size_t i = 0; i < w->n; i++) {
        w->t[i].name = names[i];
        w->t[i].is_float = true;
        assert_int_equal(conv_tensor_alloc(&w->t[i].tensor, d[i].rank, d[i].dims, NULL), CONV_OK);
        for (size_t j = 0; j < conv_tensor_numel(&w->t[i].tensor); j++) w->t[i].tensor.data[j] = rnd();
    }
}

static conv_status run_model(const conv_layer_spec *layers, size_t n_layers, const owned_weights *w,
                             const conv_tensor *in, conv_tensor *out, conv_threadpool *pool, conv_algorithm *used)
{
    conv_model *m;
    conv_error err;
    conv_status st = conv_model_create(layers, n_layers, w->t, w->n, NULL, &m, &err);
    if (st) return st;
    conv_model_stats stats;
    conv_layer_stats rows[2];
    stats.layers = rows;
    st = conv_model_run_alloc(m, in, out, pool, &stats, &err);
    if (!st && used) *used = rows[0].algorithm;
    conv_model_destroy(m);
    return st;
}

/* Winograd forced vs direct forced on one Conv2d (+ activation), same weights. */
static double model_error(conv_layer_spec *conv, const conv_layer_spec *act, int64_t n, int64_t h, int64_t w,
                          conv_threadpool *pool)
{
    conv_layer_spec layers[2];
    size_t n_layers = act ? 2 : 1;
    owned_weights weights;
    layer_weights(conv, &weights);
    int64_t dims[4] = {n, conv->in_channels, h, w};
    conv_tensor in, want, got;
    assert_int_equal(conv_tensor_alloc(&in, 4, dims, NULL), CONV_OK);
    for (size_t i = 0; i < conv_tensor_numel(&in); i++) in.data[i] = rnd();

    conv->algorithm = CONV_ALGO_DIRECT;
    layers[0] = *conv;
    if (act) layers[1] = *act;
    assert_int_equal(run_model(layers, n_layers, &weights, &in, &want, NULL, NULL), CONV_OK);
    conv->algorithm = CONV_ALGO_WINOGRAD;
    layers[0] = *conv;
    conv_algorithm used = CONV_ALGO_AUTO;
    assert_int_equal(run_model(layers, n_layers, &weights, &in, &got, pool, &used), CONV_OK);
    assert_int_equal(used, CONV_ALGO_WINOGRAD);

    assert_int_equal(conv_tensor_numel(&got), conv_tensor_numel(&want));
    double scale = 0, worst = 0;
    for (size_t i = 0; i < conv_tensor_numel(&want); i++) scale = fmax(scale, fabs(want.data[i]));
    for (size_t i = 0; i < conv_tensor_numel(&want); i++) {
        double e = fabs((double)got.data[i] - want.data[i]);
        worst = fmax(worst, isnan(e) ? INFINITY : e);
    }
    conv_tensor_free(&in), conv_tensor_free(&want), conv_tensor_free(&got);
    for (size_t i = 0; i < weights.n; i++) conv_tensor_free(&weights.t[i].tensor);
    return worst / (scale > 0 ? scale : 1);
}

static void conv_spec(conv_layer_spec *s, int64_t cin, int64_t cout, int64_t groups, int64_t pad, bool bias)
{
    conv_layer_spec_init(s, CONV_LAYER_CONV2D);
    s->in_channels = cin, s->out_channels = cout, s->groups = groups;
    s->kernel_size[0] = s->kernel_size[1] = 3;
    s->padding[0] = s->padding[1] = pad;
    s->bias = bias;
}

/* Every map size 1..13 (most not multiples of 4, some smaller than a tile). */
static void test_every_small_map(void **state)
{
    (void)state;
    conv_threadpool *pool;
    assert_int_equal(conv_threadpool_create(3, &pool, NULL), CONV_OK);
    for (int64_t h = 1; h <= 13; h++) {
        for (int64_t w = 1; w <= 13; w++) {
            for (int64_t pad = 0; pad <= 2; pad++) {
                if (h + 2 * pad < 3 || w + 2 * pad < 3) continue;
                conv_layer_spec s;
                conv_spec(&s, 3, 5, 1, pad, pad != 1);
                double e = model_error(&s, NULL, 1, h, w, (h + w) % 2 ? pool : NULL);
                if (!(e <= TOLERANCE)) fail_msg("%lldx%lld pad %lld: relative error %g", (long long)h, (long long)w,
                                                (long long)pad, e);
            }
        }
    }
    conv_threadpool_destroy(pool);
}

/* Groups, batches, bias, "same" padding, fused activations, thread pools. */
static void test_model_cases(void **state)
{
    (void)state;
    conv_layer_spec relu, relu6;
    conv_layer_spec_init(&relu, CONV_LAYER_RELU);
    conv_layer_spec_init(&relu6, CONV_LAYER_RELU6);
    struct {
        int64_t n, cin, cout, groups, pad, h, w;
        bool bias, same;
        const conv_layer_spec *act;
    } cases[] = {
        {1, 1, 1, 1, 1, 7, 5, true, false, NULL},
        {2, 16, 16, 1, 1, 14, 13, true, false, &relu},
        {3, 16, 32, 2, 0, 10, 18, false, false, NULL},
        {2, 32, 16, 4, 2, 9, 11, true, false, &relu6},
        {1, 64, 64, 1, 0, 23, 19, true, true, &relu},
        {2, 64, 64, 4, 1, 12, 12, false, false, &relu6},
        {1, 256, 32, 1, 1, 9, 10, true, false, NULL},
    };
    for (int threads = 1; threads <= 3; threads++) {
        conv_threadpool *pool;
        assert_int_equal(conv_threadpool_create(threads, &pool, NULL), CONV_OK);
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
            conv_layer_spec s;
            conv_spec(&s, cases[i].cin, cases[i].cout, cases[i].groups, cases[i].pad, cases[i].bias);
            if (cases[i].same) s.padding_kind = CONV_PADDING_SAME;
            double e = model_error(&s, cases[i].act, cases[i].n, cases[i].h, cases[i].w, pool);
            if (!(e <= TOLERANCE)) fail_msg("case %zu threads %d: relative error %g", i, threads, e);
        }
        conv_threadpool_destroy(pool);
    }
}

/* Dilated wide layers: with one block of tiles per image the kernel builds
 * each channel's phase mosaic in its scratch (wino_mosaic_io); a larger
 * map (several blocks) goes through whole mosaic tensors. Both against the
 * direct kernel: dilations 2, 3 and (2, 3), asymmetric maps, batches,
 * bias, a fused ReLU, 1 to 3 threads. */
static void test_dilated_wide_layers(void **state)
{
    (void)state;
    conv_layer_spec relu;
    conv_layer_spec_init(&relu, CONV_LAYER_RELU);
    struct {
        int64_t n, cin, cout, dh, dw, ph, pw, h, w;
        bool bias;
        const conv_layer_spec *act;
    } cases[] = {
        {2, 72, 40, 2, 2, 2, 2, 33, 33, true, NULL},    /* per channel */
        {1, 96, 9, 3, 3, 1, 1, 17, 20, false, &relu},   /* per channel, narrower padding */
        {1, 80, 33, 2, 3, 2, 3, 15, 22, true, NULL},    /* per channel, two dilations */
        {2, 70, 8, 2, 2, 2, 2, 60, 60, true, &relu},    /* 256 tiles: whole mosaics */
    };
    for (int threads = 1; threads <= 3; threads++) {
        conv_threadpool *pool;
        assert_int_equal(conv_threadpool_create(threads, &pool, NULL), CONV_OK);
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
            conv_layer_spec s;
            conv_spec(&s, cases[i].cin, cases[i].cout, 1, 0, cases[i].bias);
            s.padding[0] = cases[i].ph, s.padding[1] = cases[i].pw;
            s.dilation[0] = cases[i].dh, s.dilation[1] = cases[i].dw;
            double e = model_error(&s, cases[i].act, cases[i].n, cases[i].h, cases[i].w, threads > 1 ? pool : NULL);
            if (!(e <= TOLERANCE)) fail_msg("dilated case %zu threads %d: relative error %g", i, threads, e);
        }
        conv_threadpool_destroy(pool);
    }
}

/* Runs the kernel on in (layout as in winograd_error) into a fresh output. */
static float *run_winograd(const conv_params *p, const void *packed, const float *bias, const float *input,
                           conv_dims in, conv_dims out, conv_threadpool *pool, bool avx2)
{
    size_t out_n = (size_t)(out.n * out.c * out.h * out.w), bytes;
    assert_true(conv_kernel_for(CONV_ALGO_WINOGRAD)->workspace_size(p, &in, &out, conv_threadpool_size(pool), &bytes));
    void *workspace = conv_aligned_alloc(bytes);
    float *got = malloc(out_n * sizeof *got);
    assert_non_null(workspace);
    assert_non_null(got);
    conv_run_args a = {
        .params = p, .packed = packed, .bias = bias, .input = input, .output = got,
        .in = in, .out = out, .workspace = workspace, .pool = pool,
    };
    conv_winograd_run_isa(&a, avx2);
    conv_aligned_free(workspace);
    return got;
}

/* Dynamic batching promises each client the bits it would get alone: a
 * batch of N images must equal N single-image runs exactly (the V and M
 * layouts and the block split may not depend on N). The server runs one
 * thread per job by default, so that is the case that must hold; a 56x56
 * map has several blocks per image and a partial last block. With packed
 * operands (96 channels) the threads share each block, so there it holds
 * at any thread count too. */
static void batch_equals_single_images(int64_t cin, int64_t cout, conv_threadpool *pool)
{
    conv_params p = {
        .in_channels = cin, .out_channels = cout, .groups = 1, .kernel_h = 3, .kernel_w = 3, .stride_h = 1,
        .stride_w = 1, .dilation_h = 1, .dilation_w = 1, .pad_top = 1, .pad_bottom = 1, .pad_left = 1,
        .pad_right = 1, .activation = CONV_ACT_RELU,
    };
    const int64_t batch = 5, h = 56, w = 56;
    const conv_kernel *kernel = conv_kernel_for(CONV_ALGO_WINOGRAD);
    float *weight = random_floats((size_t)(p.out_channels * p.in_channels * 9));
    float *bias = random_floats((size_t)p.out_channels);
    float *input = random_floats((size_t)(batch * p.in_channels * h * w));
    void *packed = NULL;
    assert_int_equal(kernel->pack(&p, weight, bias, &packed, NULL), CONV_OK);
    size_t in_image = (size_t)(p.in_channels * h * w), out_image = (size_t)(p.out_channels * h * w);
    for (int isa = 0; isa < 2; isa++) {
        conv_dims in = {batch, p.in_channels, h, w}, out = {batch, p.out_channels, h, w};
        float *all = run_winograd(&p, packed, bias, input, in, out, pool, isa);
        in.n = out.n = 1;
        for (int64_t n = 0; n < batch; n++) {
            float *one = run_winograd(&p, packed, bias, input + (size_t)n * in_image, in, out, NULL, isa);
            if (memcmp(one, all + (size_t)n * out_image, out_image * sizeof *one))
                fail_msg("%lld->%lld: image %lld of a batch of %lld differs from its run alone (avx2 %d)",
                         (long long)cin, (long long)cout, (long long)n, (long long)batch, isa);
            free(one);
        }
        free(all);
    }
    kernel->release(packed);
    free(weight), free(bias), free(input);
}

static void test_batch_equals_single_images(void **state)
{
    (void)state;
    batch_equals_single_images(32, 64, NULL);
    conv_threadpool *pool;
    assert_int_equal(conv_threadpool_create(2, &pool, NULL), CONV_OK);
    batch_equals_single_images(96, 40, pool);
    conv_threadpool_destroy(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_supports_and_workspace_limits),
        cmocka_unit_test(test_asymmetric_padding_and_activations),
        cmocka_unit_test(test_blocks_split_tile_rows),
        cmocka_unit_test(test_gemm_passes_and_edges),
        cmocka_unit_test(test_packed_operands),
        cmocka_unit_test(test_nan_passes_activation),
        cmocka_unit_test(test_error_by_channel_count),
        cmocka_unit_test(test_every_small_map),
        cmocka_unit_test(test_model_cases),
        cmocka_unit_test(test_dilated_wide_layers),
        cmocka_unit_test(test_batch_equals_single_images),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
