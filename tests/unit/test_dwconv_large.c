/* test_dwconv_large.c — the depthwise kernel's per-plane AVX2 path on large
 * maps against the direct reference kernel: the 3x3 stride-1 column strips
 * that read the input in place (every pad that takes them and the ones just
 * past, odd widths around the edge strips, several row blocks, every
 * activation, NaN), plus 5x5, dilation, stride 2, batches and multipliers
 * on maps of 40-120 columns, with 1, 2 and 3 threads, and every padding
 * mode through the model layer. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/kernels/dwconv.h"

extern const conv_kernel conv_kernel_depthwise;

static uint32_t rng_state = 4242;
static float rnd(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)((rng_state >> 8) & 0xffff) / 32768.0f - 1.0f;
}

typedef struct big_case {
    int64_t n, c, mult, h, w;
    int64_t k, s, d;
    int64_t pt, pb, pl, pr;
    conv_activation act;
} big_case;

#define NOACT CONV_ACT_NONE
#define RELU CONV_ACT_RELU
#define RELU6 CONV_ACT_RELU6

/* n c m h w | k s d | pt pb pl pr | act */
static const big_case cases[] = {
    /* the benchmark layer's planes, and odd widths around the edge strips */
    {1, 3, 1, 112, 112, 3, 1, 1, 1, 1, 1, 1, NOACT},
    {1, 2, 1, 57, 113, 3, 1, 1, 1, 1, 1, 1, RELU},
    {1, 2, 1, 40, 33, 3, 1, 1, 1, 1, 1, 1, RELU6},
    {1, 2, 1, 41, 32, 3, 1, 1, 1, 1, 1, 1, NOACT},
    {1, 2, 1, 30, 34, 3, 1, 1, 0, 0, 0, 0, NOACT}, /* ow 32: the narrowest in-place plane */
    {1, 2, 1, 30, 35, 3, 1, 1, 1, 1, 0, 0, RELU},
    {1, 2, 1, 29, 47, 3, 1, 1, 0, 2, 1, 0, NOACT},
    {1, 2, 1, 29, 61, 3, 1, 1, 2, 0, 0, 1, RELU6},
    {1, 2, 1, 31, 100, 3, 1, 1, 1, 1, 7, 8, NOACT},
    {1, 2, 1, 31, 100, 3, 1, 1, 1, 1, 8, 7, RELU},
    {1, 2, 1, 31, 77, 3, 1, 1, 3, 4, 5, 6, NOACT},
    {1, 2, 1, 31, 77, 3, 1, 1, 1, 1, 9, 1, NOACT},  /* pads past 8: the buffered tiles */
    {1, 2, 1, 31, 77, 3, 1, 1, 1, 1, 1, 10, RELU6},
    {1, 2, 1, 23, 31, 3, 1, 1, 1, 1, 1, 1, NOACT},  /* ow 31: the buffered tiles */
    {1, 2, 1, 1, 90, 3, 1, 1, 1, 1, 1, 1, NOACT},   /* one row: both its neighbours padding */
    {1, 2, 1, 3, 90, 3, 1, 1, 0, 0, 1, 1, RELU},    /* one output row, no padding rows */
    {1, 2, 1, 5, 90, 3, 1, 1, 6, 6, 1, 1, NOACT},   /* more padding rows than input rows */
    /* rows longer than the buffer holds in one block: several blocks a plane */
    {1, 2, 1, 150, 300, 3, 1, 1, 1, 1, 1, 1, NOACT},
    {1, 1, 1, 97, 1000, 3, 1, 1, 1, 1, 1, 1, RELU},
    /* batches, multipliers, many planes per task */
    {2, 5, 1, 45, 64, 3, 1, 1, 1, 1, 1, 1, NOACT},
    {2, 3, 2, 33, 50, 3, 1, 1, 1, 1, 1, 1, RELU6},
    {1, 1, 4, 40, 40, 3, 1, 1, 1, 1, 1, 1, NOACT},
    {1, 1, 5, 40, 40, 3, 1, 1, 1, 1, 1, 1, RELU},
    {3, 9, 1, 40, 48, 3, 1, 1, 1, 1, 1, 1, NOACT},
    /* the other per-plane tiles on large maps */
    {1, 3, 1, 56, 56, 5, 1, 1, 2, 2, 2, 2, NOACT},
    {1, 2, 1, 57, 59, 5, 1, 1, 2, 2, 2, 2, RELU6},
    {2, 2, 2, 40, 45, 5, 2, 1, 2, 2, 2, 2, RELU},
    {1, 2, 1, 60, 67, 3, 2, 1, 1, 1, 1, 1, NOACT},
    {1, 2, 1, 45, 80, 3, 1, 2, 2, 2, 2, 2, NOACT},
    {1, 2, 1, 45, 81, 3, 2, 2, 2, 2, 2, 2, RELU},
    {1, 2, 1, 40, 70, 7, 1, 1, 3, 3, 3, 3, NOACT},
};

static int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t d, int64_t p0, int64_t p1)
{
    return (in + p0 + p1 - d * (k - 1) - 1) / s + 1;
}

typedef struct setup {
    conv_params p;
    conv_dims in, out;
    float *x, *w, *b, *ref, *got;
    size_t in_n, out_n;
    void *packed;
} setup;

static void setup_case(const big_case *k, setup *s)
{
    memset(s, 0, sizeof *s);
    s->p = (conv_params){.in_channels = k->c,
                         .out_channels = k->c * k->mult,
                         .groups = k->c,
                         .kernel_h = k->k,
                         .kernel_w = k->k,
                         .stride_h = k->s,
                         .stride_w = k->s,
                         .dilation_h = k->d,
                         .dilation_w = k->d,
                         .pad_top = k->pt,
                         .pad_bottom = k->pb,
                         .pad_left = k->pl,
                         .pad_right = k->pr,
                         .activation = k->act};
    s->in = (conv_dims){k->n, k->c, k->h, k->w};
    s->out = (conv_dims){k->n, k->c * k->mult, out_size(k->h, k->k, k->s, k->d, k->pt, k->pb),
                         out_size(k->w, k->k, k->s, k->d, k->pl, k->pr)};
    assert_true(s->out.h >= 1 && s->out.w >= 1);
    s->in_n = (size_t)(k->n * k->c * k->h * k->w);
    s->out_n = (size_t)(s->out.n * s->out.c * s->out.h * s->out.w);
    size_t wn = (size_t)(s->p.out_channels * k->k * k->k);
    s->x = malloc(s->in_n * sizeof(float));
    s->w = malloc(wn * sizeof(float));
    s->b = malloc((size_t)s->p.out_channels * sizeof(float));
    s->ref = malloc(s->out_n * sizeof(float));
    s->got = malloc(s->out_n * sizeof(float));
    assert_non_null(s->x), assert_non_null(s->w), assert_non_null(s->b);
    assert_non_null(s->ref), assert_non_null(s->got);
    /* inputs up to +-4 so ReLU6 clamps some outputs from above too */
    for (size_t i = 0; i < s->in_n; i++) s->x[i] = 4.0f * rnd();
    for (size_t i = 0; i < wn; i++) s->w[i] = rnd();
    for (int64_t i = 0; i < s->p.out_channels; i++) s->b[i] = rnd();
    assert_int_equal(conv_kernel_depthwise.pack(&s->p, s->w, s->b, &s->packed, NULL), CONV_OK);
    conv_run_args ra = {.params = &s->p, .weight = s->w, .bias = s->b, .input = s->x, .output = s->ref,
                        .in = s->in, .out = s->out};
    conv_kernel_direct.run(&ra);
}

static void free_case(setup *s)
{
    conv_kernel_depthwise.release(s->packed);
    free(s->x), free(s->w), free(s->b), free(s->ref), free(s->got);
}

/* NaN where the reference has NaN, else within 1e-5 of the output's scale */
static void check_close(const setup *s, const char *what)
{
    double scale = 0, worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < s->out_n; i++)
        if (!isnan(s->ref[i])) scale = fmax(scale, fabs(s->ref[i]));
    for (size_t i = 0; i < s->out_n; i++) {
        if (isnan(s->ref[i]) && isnan(s->got[i])) continue;
        double e = fabs((double)s->got[i] - s->ref[i]);
        if (!(e <= worst)) worst = e, at = i; /* NaN on one side only counts as the worst */
    }
    if (!(worst <= 1e-5 * (scale > 0 ? scale : 1)))
        fail_msg("%s: max error %g at %zu (got %g want %g) over scale %g", what, worst, at, s->got[at], s->ref[at],
                 scale);
}

/* the kernel's own choice, then the per-plane path with packed and unpacked
 * taps, each with pools of 1, 2 and 3 threads */
static void run_all(setup *s, conv_threadpool *const pools[3], const char *label)
{
    for (int path = 0; path < 3; path++) {
        if (path > 0 && !conv_cpu()->avx2_fma) continue;
        for (int t = 0; t < 3; t++) {
            for (size_t i = 0; i < s->out_n; i++) s->got[i] = NAN; /* catch outputs never written */
            conv_run_args ra = {.params = &s->p, .packed = path == 2 ? NULL : s->packed, .weight = s->w,
                                .bias = s->b, .input = s->x, .output = s->got, .in = s->in, .out = s->out,
                                .pool = pools[t]};
            if (path == 0)
                conv_kernel_depthwise.run(&ra);
            else
                conv_dwconv_run_path(&ra, DW_PATH_PLANES);
            char what[240];
            snprintf(what, sizeof what,
                     "%s [n%lld c%lld o%lld %lldx%lld k%lld s%lld d%lld pad %lld,%lld,%lld,%lld act %d] %s, %d threads",
                     label, (long long)s->in.n, (long long)s->in.c, (long long)s->out.c, (long long)s->in.h,
                     (long long)s->in.w, (long long)s->p.kernel_h, (long long)s->p.stride_h,
                     (long long)s->p.dilation_h, (long long)s->p.pad_top, (long long)s->p.pad_bottom,
                     (long long)s->p.pad_left, (long long)s->p.pad_right, (int)s->p.activation,
                     path == 0 ? "auto" : path == 1 ? "planes packed" : "planes unpacked", t + 1);
            check_close(s, what);
        }
    }
}

typedef struct pools {
    conv_threadpool *p[3];
} pools;

static int pools_setup(void **state)
{
    pools *ps = calloc(1, sizeof *ps);
    if (!ps) return -1;
    if (conv_threadpool_create(2, &ps->p[1], NULL) || conv_threadpool_create(3, &ps->p[2], NULL)) return -1;
    *state = ps;
    return 0;
}

static int pools_teardown(void **state)
{
    pools *ps = *state;
    conv_threadpool_destroy(ps->p[1]);
    conv_threadpool_destroy(ps->p[2]);
    free(ps);
    return 0;
}

static void test_cases_match_direct(void **state)
{
    pools *ps = *state;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        setup s;
        setup_case(&cases[i], &s);
        char label[32];
        snprintf(label, sizeof label, "case %zu", i);
        run_all(&s, ps->p, label);
        free_case(&s);
    }
}

/* every width 32..72 and every left pad 0..9 of a 3x3 stride-1 map: the
 * in-place strips, the edge strips at both ends, the overlapping last strip */
static void test_widths_and_pads(void **state)
{
    pools *ps = *state;
    const conv_activation acts[] = {NOACT, RELU, RELU6};
    for (int64_t w = 30; w <= 72; w++) {
        big_case k = {1, 2, 1, 9, w, 3, 1, 1, 1, 1, w % 3, (w / 3) % 3, acts[w % 3]};
        setup s;
        setup_case(&k, &s);
        run_all(&s, ps->p, "width");
        free_case(&s);
    }
    for (int64_t pl = 0; pl <= 9; pl++)
        for (int64_t pr = 0; pr <= 9; pr += 3) {
            big_case k = {1, 1, 1, 7, 41, 3, 1, 1, 1, 0, pl, pr, NOACT};
            setup s;
            setup_case(&k, &s);
            run_all(&s, ps->p, "pads");
            free_case(&s);
        }
}

/* NaN inputs stay NaN through each activation, in the in-place strips and
 * the edge strips, exactly where the reference has them */
static void test_nan_passes_through(void **state)
{
    pools *ps = *state;
    for (int act = NOACT; act <= RELU6; act++) {
        big_case k = {1, 2, 1, 20, 50, 3, 1, 1, 1, 1, 1, 1, (conv_activation)act};
        setup s;
        setup_case(&k, &s);
        s.x[0] = NAN;                  /* a corner: an edge strip */
        s.x[20 * 50 + 9 * 50 + 24] = NAN; /* channel 1, an in-place strip */
        s.x[20 * 50 + 15 * 50 + 49] = NAN; /* channel 1, the right edge */
        conv_run_args ra = {.params = &s.p, .weight = s.w, .bias = s.b, .input = s.x, .output = s.ref,
                            .in = s.in, .out = s.out};
        conv_kernel_direct.run(&ra);
        size_t nans = 0;
        for (size_t i = 0; i < s.out_n; i++) nans += isnan(s.ref[i]) != 0;
        assert_int_equal(nans, 4 + 9 + 6);
        run_all(&s, ps->p, "nan");
        free_case(&s);
    }
}

/* a one-layer model of s run on in */
static conv_status run_model(const conv_layer_spec *s, const conv_tensor *in, conv_tensor *out, conv_error *err)
{
    conv_param_desc d[CONV_MAX_LAYER_PARAMS];
    size_t nd = conv_layer_param_descs(s, d);
    conv_named_tensor w[CONV_MAX_LAYER_PARAMS];
    char names[CONV_MAX_LAYER_PARAMS][32];
    uint32_t saved = rng_state;
    rng_state = 77; /* the same weights on every call */
    for (size_t i = 0; i < nd; i++) {
        snprintf(names[i], sizeof names[i], "0.%s", d[i].suffix);
        w[i] = (conv_named_tensor){.name = names[i], .is_float = true};
        assert_int_equal(conv_tensor_alloc(&w[i].tensor, d[i].rank, d[i].dims, NULL), CONV_OK);
        for (size_t k = 0; k < conv_tensor_numel(&w[i].tensor); k++) w[i].tensor.data[k] = rnd();
    }
    rng_state = saved;
    conv_model *m = NULL;
    conv_status st = conv_model_create(s, 1, w, nd, NULL, &m, err);
    if (st == CONV_OK) st = conv_model_run_alloc(m, in, out, NULL, NULL, err);
    conv_model_destroy(m);
    for (size_t i = 0; i < nd; i++) conv_tensor_free(&w[i].tensor);
    return st;
}

/* Reflect, replicate and circular padding reach the kernel as a padded copy
 * with no zero padding left (so every strip reads in place): a 2x6x40x45
 * map, 3x3 and 5x5, against the direct kernel through the model layer. */
static void test_every_padding_mode(void **state)
{
    (void)state;
    const conv_padding_mode modes[] = {CONV_PAD_ZEROS, CONV_PAD_REFLECT, CONV_PAD_REPLICATE, CONV_PAD_CIRCULAR};
    for (size_t m = 0; m < sizeof modes / sizeof *modes; m++)
        for (int k = 3; k <= 5; k += 2) {
            conv_layer_spec s;
            conv_layer_spec_init(&s, CONV_LAYER_CONV2D);
            s.in_channels = 6, s.out_channels = 6, s.groups = 6;
            s.kernel_size[0] = s.kernel_size[1] = k;
            s.padding[0] = s.padding[1] = k / 2;
            s.padding_mode = modes[m];
            s.bias = true;
            int64_t dims[4] = {2, 6, 40, 45};
            conv_tensor in, ref, out;
            assert_int_equal(conv_tensor_alloc(&in, 4, dims, NULL), CONV_OK);
            for (size_t i = 0; i < conv_tensor_numel(&in); i++) in.data[i] = rnd();
            conv_error err;
            s.algorithm = CONV_ALGO_DIRECT;
            assert_int_equal(run_model(&s, &in, &ref, &err), CONV_OK);
            s.algorithm = CONV_ALGO_DEPTHWISE;
            assert_int_equal(run_model(&s, &in, &out, &err), CONV_OK);
            assert_int_equal(conv_tensor_numel(&out), conv_tensor_numel(&ref));
            double scale = 0, worst = 0;
            for (size_t i = 0; i < conv_tensor_numel(&ref); i++) scale = fmax(scale, fabs(ref.data[i]));
            for (size_t i = 0; i < conv_tensor_numel(&ref); i++)
                worst = fmax(worst, fabs(out.data[i] - ref.data[i]));
            if (!(worst <= 1e-5 * scale))
                fail_msg("padding mode %s k%d: max error %g over scale %g", conv_padding_mode_name(modes[m]), k, worst,
                         scale);
            conv_tensor_free(&in), conv_tensor_free(&ref), conv_tensor_free(&out);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases_match_direct),
        cmocka_unit_test(test_widths_and_pads),
        cmocka_unit_test(test_nan_passes_through),
        cmocka_unit_test(test_every_padding_mode),
    };
    return cmocka_run_group_tests(tests, pools_setup, pools_teardown);
}
