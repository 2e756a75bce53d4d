/* test_implicit_gemm.c — the GEMM-based convolutions against the direct
 * reference: the AVX2 implicit GEMM called on its own (edge shapes, masks,
 * activations, NaN), and "im2col" / "gemm_1x1" forced through the model API
 * on cases that take each of their paths (implicit GEMM, K-blocked sgemm,
 * strided unfolding) with every padding mode, dilation, groups and batch > 1;
 * and which grouped layers the heuristic hands to them rather than Winograd. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/internal.h"
#include "core/kernels/gemm_common.h"

static uint32_t rng_state = 777;
static float rnd(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)((rng_state >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static float *random_floats(size_t n)
{
    float *p = conv_aligned_alloc(n * sizeof(float) + 1);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++) p[i] = rnd();
    return p;
}

/* max |got - want| must stay within rel of want's largest magnitude; NaN must
 * sit exactly where the reference has it */
static void assert_close(const float *got, const float *want, size_t n, double rel, const char *what)
{
    double scale = 0, worst = 0;
    for (size_t i = 0; i < n; i++)
        if (!isnan(want[i])) scale = fmax(scale, fabs(want[i]));
    for (size_t i = 0; i < n; i++) {
        if (isnan(want[i]) != isnan(got[i])) fail_msg("%s: NaN mismatch at %zu (%g vs %g)", what, i, got[i], want[i]);
        if (!isnan(want[i])) worst = fmax(worst, fabs(got[i] - want[i]));
    }
    if (worst > rel * (scale > 0 ? scale : 1)) fail_msg("%s: max error %g over scale %g", what, worst, scale);
}

/* --------------------------------------------------- the kernel on its own */

typedef struct ig_case {
    int64_t n, c, h, w, out, kh, kw, dh, dw, groups;
    int64_t pt, pb, pl, pr;
    conv_activation act;
    bool bias, nan_input;
    int64_t sh, sw; /* stride */
} ig_case;

static const ig_case ig_cases[] = {
    /* the suite's small shapes */
    {1, 3, 33, 35, 10, 3, 3, 1, 1, 1, 1, 1, 1, 1, CONV_ACT_NONE, true, false, 1, 1},
    {1, 32, 28, 28, 32, 3, 3, 1, 1, 2, 1, 1, 1, 1, CONV_ACT_RELU, true, false, 1, 1},
    {1, 3, 21, 17, 10, 1, 1, 1, 1, 1, 0, 0, 0, 0, CONV_ACT_NONE, false, false, 1, 1},
    /* 1x1 maps, a single output, odd channel counts (the one-row blocks) */
    {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, CONV_ACT_NONE, true, false, 1, 1},
    {2, 5, 1, 1, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, CONV_ACT_RELU6, true, false, 1, 1},
    {1, 7, 1, 9, 3, 1, 3, 1, 1, 1, 0, 0, 1, 1, CONV_ACT_NONE, true, false, 1, 1},
    /* asymmetric padding, dilation, a kernel wider than tall */
    {1, 4, 13, 11, 6, 3, 5, 2, 3, 2, 0, 3, 1, 6, CONV_ACT_NONE, true, false, 1, 1},
    {3, 6, 9, 30, 9, 2, 2, 1, 1, 3, 0, 1, 1, 0, CONV_ACT_RELU, false, false, 1, 1},
    /* spans over several tasks with a masked tail, batch > 1 */
    {2, 2, 37, 41, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, CONV_ACT_RELU6, true, false, 1, 1},
    /* NaN passes through the epilogue as in torch */
    {1, 2, 10, 10, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, CONV_ACT_RELU, true, true, 1, 1},
    {1, 2, 10, 10, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, CONV_ACT_RELU6, true, true, 1, 1},
    /* strides through the polyphase components: MobileNet's first layer at
     * odd and even sizes, a 1-pixel row, asymmetric strides and padding,
     * dilation with stride, kernels smaller than the stride, groups, batch */
    {1, 3, 37, 37, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, CONV_ACT_RELU6, true, false, 2, 2},
    {1, 3, 36, 38, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, CONV_ACT_NONE, true, false, 2, 2},
    {2, 3, 17, 20, 5, 3, 3, 1, 1, 1, 0, 0, 0, 0, CONV_ACT_NONE, false, false, 2, 2},
    {1, 2, 1, 29, 3, 1, 3, 1, 1, 1, 0, 0, 2, 1, CONV_ACT_NONE, true, false, 1, 2},
    {1, 4, 23, 19, 6, 5, 3, 1, 1, 2, 2, 1, 0, 3, CONV_ACT_RELU, true, false, 3, 2},
    {1, 3, 25, 26, 4, 3, 3, 2, 3, 1, 2, 2, 3, 3, CONV_ACT_NONE, true, false, 2, 2},
    {1, 2, 30, 31, 3, 1, 1, 1, 1, 1, 0, 0, 0, 0, CONV_ACT_NONE, true, false, 4, 3},
    {3, 6, 15, 14, 9, 2, 2, 1, 1, 3, 1, 0, 0, 1, CONV_ACT_NONE, true, false, 2, 2},
    {1, 2, 10, 10, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, CONV_ACT_RELU, true, true, 2, 2},
    /* the stem layer itself (several bands of aligned phase rows, the next
     * block's outputs prefetched), and at an odd size whose rows end on an
     * overlapping vector */
    {1, 3, 224, 224, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, CONV_ACT_RELU6, true, false, 2, 2},
    {1, 3, 225, 227, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, CONV_ACT_NONE, true, false, 2, 2},
    /* tall maps padded band by band (several bands even on one thread):
     * halo rows from a dilated and a strided 5-row kernel, a last band
     * shorter than the others, groups with batch, the suite's grouped layer */
    {1, 16, 200, 64, 8, 3, 3, 2, 1, 1, 2, 2, 1, 1, CONV_ACT_NONE, true, false, 1, 1},
    {1, 8, 301, 150, 6, 5, 5, 1, 1, 1, 2, 2, 2, 2, CONV_ACT_RELU6, true, false, 2, 2},
    {2, 32, 45, 23, 16, 3, 3, 1, 1, 4, 1, 1, 1, 1, CONV_ACT_RELU, true, false, 1, 1},
    {1, 128, 28, 28, 128, 3, 3, 1, 1, 8, 1, 1, 1, 1, CONV_ACT_NONE, true, false, 1, 1},
    /* rows sharing their padding (column stride 1): right padding wider
     * than the left, left wider than the right with a row stride, padding
     * wider than a 1x1 kernel reaches (rows as wide as the output) */
    {1, 3, 17, 21, 5, 3, 3, 1, 2, 1, 1, 2, 0, 3, CONV_ACT_RELU6, true, false, 2, 1},
    {2, 4, 12, 13, 6, 3, 5, 2, 1, 2, 2, 0, 4, 1, CONV_ACT_NONE, true, false, 3, 1},
    {1, 3, 7, 6, 4, 1, 1, 1, 1, 1, 1, 1, 2, 2, CONV_ACT_NONE, true, false, 1, 1},
    /* whole-row vectors: rows of exactly one vector read in place, rows of
     * 9 and 10 whose last vector overlaps its neighbour by 7 and 6 lanes,
     * batch 2 read in place, a group of 3 outputs (a 2-row and a 1-row
     * block), strides 3 and 4 and a dilated stride 2 on rows a few vectors
     * wide, and block tails of 1 to 5 vectors */
    {1, 3, 10, 10, 5, 3, 3, 1, 1, 1, 0, 0, 0, 0, CONV_ACT_NONE, true, false, 1, 1},
    {2, 3, 12, 11, 7, 3, 3, 1, 1, 1, 0, 0, 0, 0, CONV_ACT_RELU, true, false, 1, 1},
    {1, 3, 5, 9, 4, 1, 1, 1, 1, 1, 0, 0, 0, 0, CONV_ACT_NONE, true, false, 1, 1},
    {1, 6, 9, 17, 9, 3, 3, 1, 1, 3, 1, 1, 1, 1, CONV_ACT_RELU6, true, false, 1, 1},
    {1, 2, 40, 50, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, CONV_ACT_NONE, true, false, 3, 3},
    {1, 3, 33, 70, 6, 5, 5, 1, 1, 1, 2, 2, 2, 2, CONV_ACT_RELU6, true, false, 4, 4},
    {1, 3, 30, 45, 9, 3, 3, 2, 2, 1, 2, 2, 2, 2, CONV_ACT_NONE, true, false, 2, 2},
    {1, 2, 3, 19, 3, 1, 3, 1, 1, 1, 0, 0, 1, 1, CONV_ACT_NONE, false, false, 1, 1},
    {1, 2, 5, 25, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, CONV_ACT_NONE, true, false, 1, 1},
    /* rows narrower than a vector (flat mode): read without padding (still
     * copied, for the slack the last vector reads), tall maps in several
     * bands, stride 2, NaN */
    {1, 2, 9, 7, 3, 3, 3, 1, 1, 1, 0, 0, 0, 0, CONV_ACT_NONE, true, false, 1, 1},
    {1, 2, 300, 5, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, CONV_ACT_RELU, true, false, 1, 1},
    {2, 3, 9, 7, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, CONV_ACT_NONE, true, false, 2, 2},
    {1, 2, 6, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, CONV_ACT_RELU, true, true, 1, 1},
};

static void run_case(const ig_case *k, conv_threadpool *pool, size_t index)
{
    int64_t sh = k->sh, sw = k->sw;
    conv_params p = {
        .in_channels = k->c, .out_channels = k->out, .groups = k->groups, .kernel_h = k->kh, .kernel_w = k->kw,
        .stride_h = sh, .stride_w = sw, .dilation_h = k->dh, .dilation_w = k->dw, .pad_top = k->pt,
        .pad_bottom = k->pb, .pad_left = k->pl, .pad_right = k->pr, .activation = k->act,
    };
    conv_dims in = {k->n, k->c, k->h, k->w};
    conv_dims out = {k->n, k->out, (k->h + k->pt + k->pb - k->dh * (k->kh - 1) - 1) / sh + 1,
                     (k->w + k->pl + k->pr - k->dw * (k->kw - 1) - 1) / sw + 1};
    assert_true(out.h > 0 && out.w > 0);
    assert_true(conv_implicit_gemm_supports(&p));
    size_t in_n = (size_t)(in.n * in.c * in.h * in.w), out_n = (size_t)(out.n * out.c * out.h * out.w);
    size_t w_n = (size_t)(k->out * (k->c / k->groups) * k->kh * k->kw);
    float *x = random_floats(in_n), *w = random_floats(w_n), *b = random_floats((size_t)k->out);
    if (k->nan_input) x[in_n / 2] = NAN;
    float *want = random_floats(out_n), *got = random_floats(out_n);
    size_t ws_bytes = 0;
    assert_true(conv_implicit_gemm_workspace(&p, &in, &out, conv_threadpool_size(pool), &ws_bytes));
    void *ws = conv_aligned_alloc(ws_bytes + 64);
    assert_non_null(ws);
    conv_run_args a = {.params = &p, .weight = w, .bias = k->bias ? b : NULL, .input = x, .in = in, .out = out,
                       .workspace = NULL, .pool = NULL};
    a.output = want;
    conv_kernel_direct.run(&a);
    a.output = got;
    a.workspace = ws;
    a.pool = pool;
    conv_implicit_gemm_run(&a);
    char what[64];
    snprintf(what, sizeof what, "implicit case %zu (%d threads)", index, conv_threadpool_size(pool));
    assert_close(got, want, out_n, 1e-5, what);
    if (k->nan_input) {
        size_t nans = 0;
        for (size_t i = 0; i < out_n; i++) nans += isnan(got[i]);
        assert_true(nans > 0); /* the case does test NaN propagation */
    }
    conv_aligned_free(ws);
    conv_aligned_free(x), conv_aligned_free(w), conv_aligned_free(b);
    conv_aligned_free(want), conv_aligned_free(got);
}

static void test_implicit_gemm_matches_direct(void **state)
{
    (void)state;
    conv_params probe = {.stride_h = 1, .stride_w = 1};
    if (!conv_implicit_gemm_supports(&probe)) skip(); /* no AVX2/FMA on this CPU */
    /* 2 and 3 threads: the band count is rounded to a multiple of either */
    conv_threadpool *pool, *pool3;
    assert_int_equal(conv_threadpool_create(2, &pool, NULL), CONV_OK);
    assert_int_equal(conv_threadpool_create(3, &pool3, NULL), CONV_OK);
    for (size_t i = 0; i < sizeof ig_cases / sizeof *ig_cases; i++) {
        run_case(&ig_cases[i], NULL, i);
        run_case(&ig_cases[i], pool, i);
        run_case(&ig_cases[i], pool3, i);
    }
    conv_threadpool_destroy(pool);
    conv_threadpool_destroy(pool3);
}

static void test_implicit_gemm_scope(void **state)
{
    (void)state;
    conv_params p = {.in_channels = 4, .out_channels = 4, .groups = 1, .kernel_h = 3, .kernel_w = 3,
                     .stride_h = 1, .stride_w = 1, .dilation_h = 1, .dilation_w = 1};
    assert_int_equal(conv_implicit_gemm_supports(&p), conv_cpu()->avx2_fma);
    /* strides by polyphase components, up to 4 (beyond, most phases go unread) */
    p.stride_w = 4;
    assert_int_equal(conv_implicit_gemm_supports(&p), conv_cpu()->avx2_fma);
    p.stride_w = 5;
    assert_false(conv_implicit_gemm_supports(&p));
    p.stride_w = 1, p.stride_h = 5;
    assert_false(conv_implicit_gemm_supports(&p));
    /* the rest lives in the AVX2 file, which callers reach only through
     * supports(): on a CPU without AVX2 (make generic-cpu) it may not run */
    if (!conv_cpu()->avx2_fma) return;
    /* The AVX-512 build (taken where the CPU has it) works in 16-lane
     * vectors: rows narrower than 16 go flat, rows are rounded to 16. */
    bool wide = conv_cpu()->avx512;
    p.stride_h = 1;
    conv_dims wide_in = {1, 4, 8, 10}, wide_out = {1, 4, 6, 8};
    size_t bytes = 1;
    if (!wide) {
        /* without padding the input is read in place: only the tables of
         * 4 x 3 x 3 tap offsets and of the rows to prefetch (2 x 288 bytes) */
        assert_true(conv_implicit_gemm_workspace(&p, &wide_in, &wide_out, 1, &bytes));
        assert_int_equal(bytes, 576);
        assert_true(conv_implicit_gemm_workspace(&p, &wide_in, &wide_out, 2, &bytes));
        assert_int_equal(bytes, 576);
    } else {
        /* 8-wide rows are flat for 16 lanes: copied, 4 planes of 8 rows of
         * 10 floats and 16 of slack; on two threads 6 bands of one row (+ 2
         * halo), 4 x 3 x 10 + 16 floats each, rounded up to 64 bytes */
        assert_true(conv_implicit_gemm_workspace(&p, &wide_in, &wide_out, 1, &bytes));
        assert_int_equal(bytes, 576 + 336 * sizeof(float));
        assert_true(conv_implicit_gemm_workspace(&p, &wide_in, &wide_out, 2, &bytes));
        assert_int_equal(bytes, 576 + 2 * 144 * sizeof(float));
    }
    /* rows narrower than a vector are copied even so: 4 planes of 8 rows
     * of 8 floats and the vector of slack the last one reads past them
     * (8 or 16 floats), rounded up to 64 bytes */
    conv_dims in = {1, 4, 8, 8}, out = {1, 4, 6, 6};
    assert_true(conv_implicit_gemm_workspace(&p, &in, &out, 1, &bytes));
    assert_int_equal(bytes, 576 + 272 * sizeof(float));
    p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = 1;
    out.h = out.w = 8;
    if (!wide) {
        /* with padding, one padded band per thread: here the whole padded
         * input fits one band, 4 planes of 10 rows of 16 floats (the
         * 10-float padded rows rounded up to a multiple of 8, so every row
         * starts 32-byte aligned) */
        assert_true(conv_implicit_gemm_workspace(&p, &in, &out, 1, &bytes));
        assert_int_equal(bytes, 576 + 640 * sizeof(float));
        /* two threads: 8 bands of one output row (+ 2 halo rows), 4 x 3 x 16
         * floats each */
        assert_true(conv_implicit_gemm_workspace(&p, &in, &out, 2, &bytes));
        assert_int_equal(bytes, 576 + 2 * 192 * sizeof(float));
    } else {
        /* flat: rows share their padding (9 floats), the last row's right
         * padding spills one float: 4 x 10 x 9 + 1 + 16 -> 384 floats; two
         * threads, bands of 3 rows: 4 x 3 x 9 + 1 + 16 -> 128 each */
        assert_true(conv_implicit_gemm_workspace(&p, &in, &out, 1, &bytes));
        assert_int_equal(bytes, 576 + 384 * sizeof(float));
        assert_true(conv_implicit_gemm_workspace(&p, &in, &out, 2, &bytes));
        assert_int_equal(bytes, 576 + 2 * 128 * sizeof(float));
    }
    /* rows mode with padding: 20-float padded rows rounded up to a vector
     * (24 or 32 floats), 4 planes of 18 rows in one band */
    conv_dims row_in = {1, 4, 16, 18}, row_out = {1, 4, 16, 18};
    assert_true(conv_implicit_gemm_workspace(&p, &row_in, &row_out, 1, &bytes));
    assert_int_equal(bytes, 576 + 4 * 18 * (wide ? 32 : 24) * sizeof(float));
    /* a band too large to address is refused, not wrapped */
    conv_dims huge = {1, 4, 1 << 20, INT64_C(1) << 50};
    assert_false(conv_implicit_gemm_workspace(&p, &huge, &out, 1, &bytes));
}

/* ----------------------------------------------- through the model API */

typedef struct model_case {
    int64_t n, c, h, w, out, k, stride, pad, dil, groups;
    conv_padding_kind kind;
    conv_padding_mode mode;
    conv_algorithm algo;
    bool relu_after;
} model_case;

static const model_case model_cases[] = {
    /* implicit GEMM inside im2col, each padding mode */
    {1, 3, 19, 23, 10, 3, 1, 1, 1, 1, CONV_PADDING_EXPLICIT, CONV_PAD_ZEROS, CONV_ALGO_IM2COL, false},
    {2, 3, 9, 8, 5, 3, 1, 2, 1, 1, CONV_PADDING_EXPLICIT, CONV_PAD_REFLECT, CONV_ALGO_IM2COL, true},
    {1, 4, 7, 9, 6, 3, 1, 3, 1, 2, CONV_PADDING_EXPLICIT, CONV_PAD_REPLICATE, CONV_ALGO_IM2COL, false},
    {1, 2, 6, 5, 4, 4, 1, 0, 1, 1, CONV_PADDING_SAME, CONV_PAD_CIRCULAR, CONV_ALGO_IM2COL, true},
    {1, 32, 10, 10, 32, 3, 1, 1, 1, 8, CONV_PADDING_EXPLICIT, CONV_PAD_ZEROS, CONV_ALGO_IM2COL, true},
    {2, 16, 11, 11, 16, 3, 1, 2, 2, 1, CONV_PADDING_EXPLICIT, CONV_PAD_ZEROS, CONV_ALGO_IM2COL, false},
    {1, 1, 1, 1, 3, 3, 1, 1, 1, 1, CONV_PADDING_EXPLICIT, CONV_PAD_ZEROS, CONV_ALGO_IM2COL, false},
    /* stride 2 on the polyphase components, each padding mode, groups */
    {1, 3, 19, 23, 16, 3, 2, 1, 1, 1, CONV_PADDING_EXPLICIT, CONV_PAD_REFLECT, CONV_ALGO_IM2COL, false},
    {2, 3, 20, 21, 8, 3, 2, 1, 1, 1, CONV_PADDING_EXPLICIT, CONV_PAD_CIRCULAR, CONV_ALGO_IM2COL, true},
    {1, 3, 15, 16, 8, 3, 2, 1, 1, 1, CONV_PADDING_EXPLICIT, CONV_PAD_REPLICATE, CONV_ALGO_IM2COL, false},
    {1, 3, 15, 16, 8, 3, 2, 2, 2, 1, CONV_PADDING_EXPLICIT, CONV_PAD_ZEROS, CONV_ALGO_IM2COL, true},
    {1, 16, 14, 13, 16, 3, 2, 1, 1, 4, CONV_PADDING_EXPLICIT, CONV_PAD_ZEROS, CONV_ALGO_IM2COL, false},
    /* sgemm on unfolded slices: several K blocks (dilated, 40x40 columns),
     * strided unfolding with padding on both sides */
    {1, 64, 40, 40, 40, 3, 1, 2, 2, 1, CONV_PADDING_EXPLICIT, CONV_PAD_ZEROS, CONV_ALGO_IM2COL, true},
    {2, 40, 15, 17, 36, 3, 2, 1, 1, 1, CONV_PADDING_EXPLICIT, CONV_PAD_ZEROS, CONV_ALGO_IM2COL, false},
    {1, 40, 16, 16, 36, 5, 3, 2, 1, 1, CONV_PADDING_EXPLICIT, CONV_PAD_REFLECT, CONV_ALGO_IM2COL, false},
    {1, 72, 5, 5, 72, 3, 1, 1, 1, 1, CONV_PADDING_EXPLICIT, CONV_PAD_CIRCULAR, CONV_ALGO_IM2COL, true},
    /* gemm_1x1: implicit (few channels) and sgemm (many), groups, batch */
    {1, 3, 31, 29, 10, 1, 1, 0, 1, 1, CONV_PADDING_EXPLICIT, CONV_PAD_ZEROS, CONV_ALGO_GEMM_1X1, false},
    {3, 12, 5, 7, 9, 1, 1, 0, 1, 3, CONV_PADDING_EXPLICIT, CONV_PAD_ZEROS, CONV_ALGO_GEMM_1X1, true},
    {2, 96, 9, 9, 80, 1, 1, 0, 1, 1, CONV_PADDING_EXPLICIT, CONV_PAD_ZEROS, CONV_ALGO_GEMM_1X1, true},
    {1, 128, 1, 1, 64, 1, 1, 0, 1, 2, CONV_PADDING_EXPLICIT, CONV_PAD_ZEROS, CONV_ALGO_GEMM_1X1, false},
};

typedef struct model_weights {
    conv_named_tensor t[2];
} model_weights;

static conv_status run_model(const conv_layer_spec *layers, size_t n_layers, const model_weights *w,
                             const conv_tensor *in, conv_tensor *out, conv_threadpool *pool, conv_error *err)
{
    conv_model *m;
    conv_status st = conv_model_create(layers, n_layers, w->t, 2, NULL, &m, err);
    if (st) return st;
    st = conv_model_run_alloc(m, in, out, pool, NULL, err);
    conv_model_destroy(m);
    return st;
}

static void test_forced_gemm_algorithms_match_direct(void **state)
{
    (void)state;
    conv_threadpool *pool;
    assert_int_equal(conv_threadpool_create(2, &pool, NULL), CONV_OK);
    for (size_t i = 0; i < sizeof model_cases / sizeof *model_cases; i++) {
        const model_case *k = &model_cases[i];
        conv_layer_spec layers[2];
        conv_layer_spec_init(&layers[0], CONV_LAYER_CONV2D);
        conv_layer_spec_init(&layers[1], CONV_LAYER_RELU);
        conv_layer_spec *s = &layers[0];
        s->in_channels = k->c, s->out_channels = k->out, s->groups = k->groups;
        s->kernel_size[0] = s->kernel_size[1] = k->k;
        s->stride[0] = s->stride[1] = k->stride;
        s->padding[0] = s->padding[1] = k->pad;
        s->dilation[0] = s->dilation[1] = k->dil;
        s->padding_kind = k->kind, s->padding_mode = k->mode;
        size_t n_layers = k->relu_after ? 2 : 1;

        int64_t wd[4] = {k->out, k->c / k->groups, k->k, k->k}, bd[1] = {k->out};
        model_weights w = {{{.name = "0.weight", .is_float = true}, {.name = "0.bias", .is_float = true}}};
        assert_int_equal(conv_tensor_alloc(&w.t[0].tensor, 4, wd, NULL), CONV_OK);
        assert_int_equal(conv_tensor_alloc(&w.t[1].tensor, 1, bd, NULL), CONV_OK);
        for (size_t j = 0; j < conv_tensor_numel(&w.t[0].tensor); j++) w.t[0].tensor.data[j] = rnd();
        for (size_t j = 0; j < conv_tensor_numel(&w.t[1].tensor); j++) w.t[1].tensor.data[j] = rnd();
        int64_t xd[4] = {k->n, k->c, k->h, k->w};
        conv_tensor x, ref, out;
        assert_int_equal(conv_tensor_alloc(&x, 4, xd, NULL), CONV_OK);
        for (size_t j = 0; j < conv_tensor_numel(&x); j++) x.data[j] = rnd();

        conv_error err;
        s->algorithm = CONV_ALGO_DIRECT;
        assert_int_equal(run_model(layers, n_layers, &w, &x, &ref, NULL, &err), CONV_OK);
        s->algorithm = k->algo;
        for (int threaded = 0; threaded < 2; threaded++) {
            conv_status st = run_model(layers, n_layers, &w, &x, &out, threaded ? pool : NULL, &err);
            if (st) fail_msg("model case %zu: %s", i, err.message);
            char what[64];
            snprintf(what, sizeof what, "model case %zu %s%s", i, conv_algorithm_name(k->algo),
                     threaded ? " threaded" : "");
            assert_close(out.data, ref.data, conv_tensor_numel(&ref), 1e-5, what);
            conv_tensor_free(&out);
        }
        conv_tensor_free(&x), conv_tensor_free(&ref);
        conv_tensor_free(&w.t[0].tensor), conv_tensor_free(&w.t[1].tensor);
    }
    conv_threadpool_destroy(pool);
}

/* The heuristic's grouped 3x3 rule: Winograd from 16 channels in and out
 * per group (32 with the AVX-512 implicit GEMM, 64 when dilated), the
 * implicit GEMM (im2col) below that or when Winograd is not allowed. */
static void test_grouped_heuristic(void **state)
{
    (void)state;
    conv_params p = {.in_channels = 128, .out_channels = 128, .groups = 8, .kernel_h = 3, .kernel_w = 3,
                     .stride_h = 1, .stride_w = 1, .dilation_h = 1, .dilation_w = 1,
                     .pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1};
    conv_dims in = {1, 128, 28, 28};
    conv_algorithm algo;
    bool wino = conv_kernel_for(CONV_ALGO_WINOGRAD) && conv_kernel_for(CONV_ALGO_WINOGRAD)->supports(&p);
    assert_int_equal(conv_select_algorithm(&p, &in, CONV_ALGO_AUTO, true, &algo, NULL), CONV_OK);
    assert_int_equal(algo, wino && !conv_cpu()->avx512 ? CONV_ALGO_WINOGRAD : CONV_ALGO_IM2COL); /* 16 per group */
    assert_int_equal(conv_select_algorithm(&p, &in, CONV_ALGO_AUTO, false, &algo, NULL), CONV_OK);
    assert_int_equal(algo, CONV_ALGO_IM2COL);
    p.groups = 16; /* 8 per group */
    assert_int_equal(conv_select_algorithm(&p, &in, CONV_ALGO_AUTO, true, &algo, NULL), CONV_OK);
    assert_int_equal(algo, CONV_ALGO_IM2COL);
    p.groups = 4; /* 32 per group */
    assert_int_equal(conv_select_algorithm(&p, &in, CONV_ALGO_AUTO, true, &algo, NULL), CONV_OK);
    assert_int_equal(algo, wino ? CONV_ALGO_WINOGRAD : CONV_ALGO_IM2COL);
    p.dilation_h = p.dilation_w = 2; /* 32 per group, dilated */
    assert_int_equal(conv_select_algorithm(&p, &in, CONV_ALGO_AUTO, true, &algo, NULL), CONV_OK);
    assert_int_equal(algo, CONV_ALGO_IM2COL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_implicit_gemm_matches_direct),
        cmocka_unit_test(test_implicit_gemm_scope),
        cmocka_unit_test(test_forced_gemm_algorithms_match_direct),
        cmocka_unit_test(test_grouped_heuristic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
