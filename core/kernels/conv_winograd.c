/* conv_winograd.c — Winograd F(4x4, 3x3) for 3x3 stride-1 convolutions: weights
 * transformed once at load, then per (image, group, block of tiles) the input
 * transform, the 36 GEMMs (wino_gemm or cblas_sgemm) and the output transform
 * (see winograd.h). */
#include <cblas.h>
#include <limits.h>

#include "core/kernels/winograd.h"

/* Bytes of V and M one block may take: both stay in the 512 KiB L2 for
 * narrow layers. Wider layers get a floor of 64 tiles: below it OpenBLAS
 * re-packs U too often for too few columns (256 channels at 28x28 ran 1.4x
 * slower with 32-tile blocks than with one 56-tile block). */
#define WINO_BLOCK_BYTES (384 * 1024)
#define WINO_BLOCK_MIN 64
#define WINO_BLOCK_MAX 256

/* Up to 64 input channels per group the GEMMs run in wino_gemm (winograd.h)
 * on V and M as they lie, WINO_FUSED_ROWS output channels at a time, each
 * pass's M rows output-transformed while still in L2. OpenBLAS spent
 * nearly half of its time zeroing M (beta = 0) and packing V and U, and M of
 * all output channels with V overflowed L2 (32 -> 64 channels at 56x56:
 * 1.37 -> 1.05 ms CPU per image). With more input channels each GEMM's K
 * rows of V lie on as many pages at a 36 * ld stride and OpenBLAS's packed
 * panels win (256 -> 256 at 28x28: 5.7 ms there, 10 ms unpacked). */
#define WINO_FUSED_MAX_CIN 64
#define WINO_FUSED_ROWS 32

static bool winograd_supports(const conv_params *p)
{
    return p->kernel_h == 3 && p->kernel_w == 3 && p->stride_h == 1 && p->stride_w == 1 && p->dilation_h == 1 &&
           p->dilation_w == 1 && p->groups >= 1 && p->in_channels / p->groups <= INT_MAX / WINO_POINTS &&
           p->out_channels / p->groups <= INT_MAX / WINO_POINTS;
}

/* G, exactly; U = G g G^T is formed in double and rounded once */
static const double wino_g[WINO_IN][3] = {
    {1.0, 0.0, 0.0},
    {1.0 / 6, 1.0 / 6, 1.0 / 6},
    {1.0 / 6, -1.0 / 6, 1.0 / 6},
    {1.0 / 30, 1.0 / 15, 2.0 / 15},
    {16.0 / 15, -8.0 / 15, 4.0 / 15},
    {0.0, 0.0, 1.0},
};

/* packed: U as [group][xi][cout_g][cin_g], the A operand of each GEMM */
static conv_status winograd_pack(const conv_params *p, const float *weight, const float *bias, void **packed,
                                 conv_error *err)
{
    (void)bias;
    size_t cin_g = (size_t)(p->in_channels / p->groups), cout_g = (size_t)(p->out_channels / p->groups);
    size_t bytes;
    if (!conv_size_mul((size_t)p->out_channels, cin_g, &bytes) || !conv_size_mul(bytes, WINO_POINTS, &bytes) ||
        !conv_size_mul(bytes, sizeof(float), &bytes))
        return conv_fail(err, CONV_LIMIT_EXCEEDED, "Winograd weights of %lld x %zu channels overflow",
                         (long long)p->out_channels, cin_g);
    float *u = conv_aligned_alloc(bytes);
    if (!u) return conv_fail(err, CONV_OUT_OF_MEMORY, "out of memory packing %zu bytes of Winograd weights", bytes);
    for (size_t oc = 0; oc < (size_t)p->out_channels; oc++) {
        size_t g = oc / cout_g, row = oc % cout_g;
        for (size_t ic = 0; ic < cin_g; ic++) {
            const float *k = weight + (oc * cin_g + ic) * 9;
            double gk[WINO_IN][3]; /* G g */
            for (int i = 0; i < WINO_IN; i++)
                for (int c = 0; c < 3; c++)
                    gk[i][c] = wino_g[i][0] * k[c] + wino_g[i][1] * k[3 + c] + wino_g[i][2] * k[6 + c];
            for (int i = 0; i < WINO_IN; i++) {
                for (int j = 0; j < WINO_IN; j++) {
                    double v = gk[i][0] * wino_g[j][0] + gk[i][1] * wino_g[j][1] + gk[i][2] * wino_g[j][2];
                    u[((g * WINO_POINTS + (size_t)(i * WINO_IN + j)) * cout_g + row) * cin_g + ic] = (float)v;
                }
            }
        }
    }
    *packed = u;
    return CONV_OK;
}

static void winograd_release(void *packed) { conv_aligned_free(packed); }

/* How one run is cut: tiles per image, tiles per block and the row stride
 * of V and M (a block plus the 7 columns a segment's last vector step may
 * spill into). Both workspace_size and run derive it from the same inputs. */
typedef struct wino_layout {
    int64_t tiles_w, tiles;  /* per image */
    int64_t block, blocks;   /* tiles per block, blocks per image */
    size_t ld;               /* floats per V/M row */
    int64_t fused_rows;      /* output channels per wino_gemm + output transform pass; 0: OpenBLAS */
    size_t slice_floats;     /* per-thread workspace */
} wino_layout;

static int64_t round8(int64_t v) { return (v + 7) / 8 * 8; }

static bool wino_plan(const conv_params *p, const conv_dims *in, const conv_dims *out, int threads,
                      wino_layout *l)
{
    int64_t cin_g = p->in_channels / p->groups, cout_g = p->out_channels / p->groups;
    int64_t tiles_h = (out->h + WINO_OUT - 1) / WINO_OUT;
    l->tiles_w = (out->w + WINO_OUT - 1) / WINO_OUT;
    size_t tiles;
    if (!conv_size_mul((size_t)tiles_h, (size_t)l->tiles_w, &tiles) || tiles > (size_t)INT_MAX) return false;
    l->tiles = (int64_t)tiles;

    int64_t most = WINO_BLOCK_BYTES / (WINO_POINTS * (int64_t)sizeof(float) * (cin_g + cout_g));
    most = most / 8 * 8;
    if (most < WINO_BLOCK_MIN) most = WINO_BLOCK_MIN;
    if (most > WINO_BLOCK_MAX) most = WINO_BLOCK_MAX;
    int64_t blocks = (l->tiles + most - 1) / most;
    /* a single small image still gets one block per thread */
    int64_t tasks_per_block = in->n * p->groups > 0 ? in->n * p->groups : 1;
    if (blocks * tasks_per_block < threads) {
        int64_t want = (threads + tasks_per_block - 1) / tasks_per_block;
        int64_t at_most = (l->tiles + 7) / 8;
        blocks = want < at_most ? want : at_most;
    }
    if (blocks < 1) blocks = 1;
    l->block = round8((l->tiles + blocks - 1) / blocks);
    if (l->block < WINO_LANES) l->block = WINO_LANES; /* an empty map */
    l->blocks = (l->tiles + l->block - 1) / l->block;
    l->ld = (size_t)l->block + 8;

    l->fused_rows = cin_g <= WINO_FUSED_MAX_CIN ? WINO_FUSED_ROWS : 0;
    int64_t m_rows = l->fused_rows && l->fused_rows < cout_g ? l->fused_rows : cout_g;

    size_t v, m, floats;
    if (!conv_size_mul((size_t)cin_g, l->ld * WINO_POINTS, &v) ||
        !conv_size_mul((size_t)m_rows, l->ld * WINO_POINTS, &m) || !conv_size_add(v, m, &floats))
        return false;
    floats = (floats + CONV_ALIGNMENT / sizeof(float) - 1) / (CONV_ALIGNMENT / sizeof(float)) *
             (CONV_ALIGNMENT / sizeof(float));
    l->slice_floats = floats;
    return true;
}

static bool winograd_workspace(const conv_params *p, const conv_dims *in, const conv_dims *out, int threads,
                               size_t *bytes)
{
    wino_layout l;
    size_t per_thread;
    if (threads < 1) threads = 1;
    return wino_plan(p, in, out, threads, &l) && conv_size_mul(l.slice_floats, sizeof(float), &per_thread) &&
           conv_size_mul(per_thread, (size_t)threads, bytes);
}

typedef struct wino_job {
    const conv_run_args *a;
    wino_layout l;
    wino_input_fn input;
    wino_output_fn output;
    wino_gemm_fn gemm;
} wino_job;

static void winograd_outputs(const wino_job *job, const float *m, int64_t n, int64_t g, int64_t first, int64_t count,
                             int64_t oc0, int64_t rows);

/* One (image, group, block): V = B^T d B for the block's tiles of every
 * input channel, M = U V per transformed element, Y = A^T M A into the output. */
static void winograd_task(void *ctx, size_t task, int thread)
{
    const wino_job *job = ctx;
    const conv_run_args *a = job->a;
    const conv_params *p = a->params;
    const wino_layout *l = &job->l;
    int64_t block = (int64_t)task % l->blocks;
    int64_t g = (int64_t)task / l->blocks % p->groups;
    int64_t n = (int64_t)task / l->blocks / p->groups;
    int64_t cin_g = p->in_channels / p->groups, cout_g = p->out_channels / p->groups;
    int64_t first = block * l->block;
    int64_t count = l->tiles - first < l->block ? l->tiles - first : l->block;
    size_t ld = l->ld;

    /* V and M as [channel][xi][tile]: the transforms touch one channel's 36
     * rows as one contiguous run, and each GEMM steps over channels with a
     * row stride of 36 * ld. Laid out [xi][channel][tile] instead, the
     * transforms' 36 rows were cin_g * ld or cout_g * ld floats apart, a power
     * of two (8 or 16 KiB for 32 -> 64 channels), so they shared cache sets
     * and the output transform stalled on its loads (a quarter of the run). */
    float *v = (float *)a->workspace + (size_t)thread * l->slice_floats;
    float *m = v + (size_t)cin_g * ld * WINO_POINTS;

    /* The block runs along tile rows; each row's part is one segment. */
    for (int64_t c = 0; c < cin_g; c++) {
        const float *plane = a->input + ((n * p->in_channels + g * cin_g + c) * a->in.h) * a->in.w;
        for (int64_t t = first; t < first + count;) {
            int64_t ty = t / l->tiles_w, tx = t % l->tiles_w;
            int64_t seg = l->tiles_w - tx < first + count - t ? l->tiles_w - tx : first + count - t;
            const float *rows[WINO_IN];
            for (int r = 0; r < WINO_IN; r++) {
                int64_t y = ty * WINO_OUT - p->pad_top + r;
                rows[r] = y >= 0 && y < a->in.h ? plane + y * a->in.w : NULL;
            }
            job->input(rows, tx * WINO_OUT - p->pad_left, a->in.w, seg,
                       v + (size_t)c * WINO_POINTS * ld + (size_t)(t - first), ld);
            t += seg;
        }
    }

    const float *u = (const float *)a->packed + (size_t)g * WINO_POINTS * (size_t)(cout_g * cin_g);
    if (!l->fused_rows) {
        for (size_t xi = 0; xi < WINO_POINTS; xi++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)cout_g, (int)count, (int)cin_g, 1.0f,
                        u + xi * (size_t)(cout_g * cin_g), (int)cin_g, v + xi * ld, (int)(WINO_POINTS * ld), 0.0f,
                        m + xi * ld, (int)(WINO_POINTS * ld));
        winograd_outputs(job, m, n, g, first, count, 0, cout_g);
        return;
    }
    for (int64_t oc = 0; oc < cout_g; oc += l->fused_rows) {
        int64_t rows = cout_g - oc < l->fused_rows ? cout_g - oc : l->fused_rows;
        job->gemm(u + (size_t)(oc * cin_g), (size_t)(cout_g * cin_g), rows, cin_g, v, ld, count, m);
        winograd_outputs(job, m, n, g, first, count, oc, rows);
    }
}

/* Y for output channels [oc0, oc0 + rows) of group g, whose M rows start at m. */
static void winograd_outputs(const wino_job *job, const float *m, int64_t n, int64_t g, int64_t first, int64_t count,
                             int64_t oc0, int64_t rows)
{
    const conv_run_args *a = job->a;
    const conv_params *p = a->params;
    const wino_layout *l = &job->l;
    int64_t cout_g = p->out_channels / p->groups;
    size_t ld = l->ld;
    for (int64_t oc = oc0; oc < oc0 + rows; oc++) {
        int64_t channel = g * cout_g + oc;
        float *plane = a->output + ((n * p->out_channels + channel) * a->out.h) * a->out.w;
        float bias = a->bias ? a->bias[channel] : 0.0f;
        for (int64_t t = first; t < first + count;) {
            int64_t ty = t / l->tiles_w, tx = t % l->tiles_w;
            int64_t seg = l->tiles_w - tx < first + count - t ? l->tiles_w - tx : first + count - t;
            float *out_rows[WINO_OUT];
            for (int i = 0; i < WINO_OUT; i++) {
                int64_t y = ty * WINO_OUT + i;
                out_rows[i] = y < a->out.h ? plane + y * a->out.w : NULL;
            }
            job->output(m + (size_t)(oc - oc0) * WINO_POINTS * ld + (size_t)(t - first), ld, seg, bias,
                        p->activation, out_rows, tx * WINO_OUT, a->out.w);
            t += seg;
        }
    }
}

void conv_winograd_run_isa(const conv_run_args *a, bool allow_avx2)
{
    const conv_params *p = a->params;
    wino_job job = {.a = a};
    bool avx2 = allow_avx2 && conv_cpu()->avx2_fma;
    job.input = avx2 ? wino_input_avx2 : wino_input_generic;
    job.output = avx2 ? wino_output_avx2 : wino_output_generic;
    job.gemm = avx2 ? wino_gemm_avx2 : wino_gemm_generic;
    /* cannot fail: workspace_size succeeded with the same arguments */
    if (!wino_plan(p, &a->in, &a->out, conv_threadpool_size(a->pool), &job.l)) return;
    conv_parallel_for(a->pool, (size_t)(a->in.n * p->groups * job.l.blocks), winograd_task, &job);
}

static void winograd_run(const conv_run_args *a) { conv_winograd_run_isa(a, true); }

void wino_input_generic(const float *const rows[WINO_IN], int64_t x0, int64_t width, int64_t tiles, float *v,
                        size_t xi_stride)
{
    wino_input_impl(rows, x0, width, tiles, v, xi_stride);
}

void wino_gemm_generic(const float *u, size_t u_xi_stride, int64_t rows, int64_t cin, const float *v, size_t ld,
                       int64_t tiles, float *m)
{
    wino_gemm_impl(u, u_xi_stride, rows, cin, v, ld, tiles, m);
}

void wino_output_generic(const float *m, size_t xi_stride, int64_t tiles, float bias, conv_activation act,
                         float *const out_rows[WINO_OUT], int64_t x0, int64_t out_width)
{
    wino_output_impl(m, xi_stride, tiles, bias, act, out_rows, x0, out_width);
}

const conv_kernel conv_kernel_winograd = {
    .algorithm = CONV_ALGO_WINOGRAD,
    .supports = winograd_supports,
    .pack = winograd_pack,
    .release = winograd_release,
    .workspace_size = winograd_workspace,
    .run = winograd_run,
};
