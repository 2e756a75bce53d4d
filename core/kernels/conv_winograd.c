/* conv_winograd.c — Winograd F(4x4, 3x3) for 3x3 stride-1 convolutions: weights
 * transformed once at load, then per (image, group, block of tiles) the input
 * transform, the 36 GEMMs (wino_gemm, or wino_pgemm on packed operands for
 * wider layers) and the output transform (see winograd.h). */
#include <limits.h>

#include "core/kernels/winograd.h"

/* Up to WINO_FUSED_MAX_CIN input channels: bytes of V and M one block may
 * take, so both stay in the 512 KiB L2, with a floor of 64 tiles (set when
 * the GEMMs were OpenBLAS's, which re-packed U too often below it). */
#define WINO_BLOCK_BYTES (384 * 1024)
#define WINO_BLOCK_MIN 64
#define WINO_BLOCK_MAX 256

/* Up to 64 input channels per group the GEMMs run in wino_gemm (winograd.h)
 * on V and M as they lie, WINO_FUSED_ROWS output channels at a time, each
 * pass's M rows output-transformed while still in L2. OpenBLAS spent
 * nearly half of its time zeroing M (beta = 0) and packing V and U, and M of
 * all output channels with V overflowed L2 (32 -> 64 channels at 56x56:
 * 1.37 -> 1.05 ms CPU per image). With more input channels each GEMM's K
 * rows of V lie on as many pages at a 36 * ld stride and packed panels win
 * (256 -> 256 at 28x28: OpenBLAS 5.7 ms there, 10 ms unpacked). */
#define WINO_FUSED_MAX_CIN 64
#define WINO_FUSED_ROWS 32

/* More input channels per group: packed operands (winograd.h, wino_pgemm).
 * Each (image, group, block) runs in two parallel steps: the input
 * transform, WINO_PACKED_CHANNELS channels a task, into V shared by the
 * threads; then passes of WINO_PACKED_ROWS output channels, each its 36
 * GEMMs (input channels in blocks of WINO_PACKED_KC, so a V panel stays in
 * L1) and its output transform while its M rows are in L2. Splitting the
 * threads over output channels keeps every GEMM as wide as the block. */
#define WINO_PACKED_CHANNELS 8
#define WINO_PACKED_ROWS 32
#define WINO_PACKED_KC 256
#define WINO_PACKED_BLOCK_MAX 128

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

static bool wino_packed_operands(int64_t cin_g) { return cin_g > WINO_FUSED_MAX_CIN; }

/* U as [group][xi][cout_g][cin_g], the A operand of each GEMM, or with
 * packed operands [group][panel][xi][cin_g][WINO_PU], the panels' rows past
 * cout_g zero */
static conv_status winograd_pack(const conv_params *p, const float *weight, const float *bias, void **packed,
                                 conv_error *err)
{
    (void)bias;
    size_t cin_g = (size_t)(p->in_channels / p->groups), cout_g = (size_t)(p->out_channels / p->groups);
    bool panels = wino_packed_operands((int64_t)cin_g);
    size_t rows_g = panels ? (cout_g + WINO_PU - 1) / WINO_PU * WINO_PU : cout_g;
    size_t bytes;
    if (!conv_size_mul((size_t)p->groups, rows_g, &bytes) || !conv_size_mul(bytes, cin_g, &bytes) ||
        !conv_size_mul(bytes, WINO_POINTS, &bytes) || !conv_size_mul(bytes, sizeof(float), &bytes))
        return conv_fail(err, CONV_LIMIT_EXCEEDED, "Winograd weights of %lld x %zu channels overflow",
                         (long long)p->out_channels, cin_g);
    float *u = conv_aligned_alloc(bytes);
    if (!u) return conv_fail(err, CONV_OUT_OF_MEMORY, "out of memory packing %zu bytes of Winograd weights", bytes);
    if (panels) memset(u, 0, bytes);
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
                    size_t xi = (size_t)(i * WINO_IN + j);
                    if (panels)
                        u[(((g * rows_g + row) / WINO_PU * WINO_POINTS + xi) * cin_g + ic) * WINO_PU + row % WINO_PU] =
                            (float)v;
                    else
                        u[((g * WINO_POINTS + xi) * cout_g + row) * cin_g + ic] = (float)v;
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
    int64_t fused_rows;      /* output channels per wino_gemm + output transform pass; 0: packed operands */
    bool packed;             /* packed operands: V shared, then per thread a transform scratch and M */
    size_t vx_stride;        /* packed: floats between transformed elements of V */
    size_t shared_floats;    /* packed: V */
    bool mosaic;             /* packed: the mosaic planes built per channel (wino_mosaic_io) */
    size_t mosaic_in, mosaic_out; /* their offsets in a thread's slice */
    size_t slice_floats;     /* per-thread workspace */
} wino_layout;

static int64_t round8(int64_t v) { return (v + 7) / 8 * 8; }

static size_t align_floats(size_t floats)
{
    size_t per = CONV_ALIGNMENT / sizeof(float);
    return (floats + per - 1) / per * per;
}

/* Packed operands: blocks of at most WINO_PACKED_BLOCK_MAX tiles, the same
 * at any thread count and batch size (the threads share each block). */
static bool wino_plan_packed(int64_t cin_g, int64_t cout_g, const conv_dims *in, const conv_dims *out, bool mosaic,
                             wino_layout *l)
{
    int64_t blocks = (l->tiles + WINO_PACKED_BLOCK_MAX - 1) / WINO_PACKED_BLOCK_MAX;
    if (blocks < 1) blocks = 1;
    l->block = round8((l->tiles + blocks - 1) / blocks);
    if (l->block < WINO_LANES) l->block = WINO_LANES;
    l->blocks = (l->tiles + l->block - 1) / l->block;
    l->ld = (size_t)l->block + 8;
    l->fused_rows = 0;
    l->packed = true;
    /* one cache line more than a whole number of them between elements:
     * the copy into V writes all 36 in turn, and a multiple of 4 KiB would
     * put them in the same cache sets */
    size_t per_element, rows = (size_t)(cout_g < WINO_PACKED_ROWS ? cout_g : WINO_PACKED_ROWS);
    rows = (rows + WINO_PU - 1) / WINO_PU * WINO_PU;
    if (!conv_size_mul((size_t)cin_g, (size_t)l->block, &per_element)) return false;
    l->vx_stride = align_floats(per_element) + CONV_ALIGNMENT / sizeof(float);
    size_t scratch, m, floats;
    if (!conv_size_mul(l->vx_stride, WINO_POINTS, &l->shared_floats) ||
        !conv_size_mul(WINO_PACKED_CHANNELS * WINO_POINTS, l->ld, &scratch) ||
        !conv_size_mul(rows * WINO_POINTS, l->ld, &m) || !conv_size_add(scratch, m, &floats))
        return false;
    floats = align_floats(floats);
    /* with several blocks each would gather every plane again */
    l->mosaic = mosaic && l->blocks == 1;
    if (l->mosaic) {
        size_t in_plane, out_plane;
        if (!conv_size_mul((size_t)in->h, (size_t)in->w, &in_plane) ||
            !conv_size_mul((size_t)out->h, (size_t)out->w, &out_plane))
            return false;
        l->mosaic_in = floats;
        if (!conv_size_add(floats, align_floats(in_plane), &floats)) return false;
        l->mosaic_out = floats;
        if (!conv_size_add(floats, align_floats(out_plane), &floats)) return false;
    }
    l->slice_floats = floats;
    return true;
}

static bool wino_plan(const conv_params *p, const conv_dims *in, const conv_dims *out, int threads, bool mosaic,
                      wino_layout *l)
{
    int64_t cin_g = p->in_channels / p->groups, cout_g = p->out_channels / p->groups;
    int64_t tiles_h = (out->h + WINO_OUT - 1) / WINO_OUT;
    l->tiles_w = (out->w + WINO_OUT - 1) / WINO_OUT;
    size_t tiles;
    if (!conv_size_mul((size_t)tiles_h, (size_t)l->tiles_w, &tiles) || tiles > (size_t)INT_MAX) return false;
    l->tiles = (int64_t)tiles;
    if (wino_packed_operands(cin_g)) return wino_plan_packed(cin_g, cout_g, in, out, mosaic, l);
    l->packed = l->mosaic = false;
    l->shared_floats = 0;

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
    l->slice_floats = align_floats(floats);
    return true;
}

static bool wino_workspace(const conv_params *p, const conv_dims *in, const conv_dims *out, int threads, bool mosaic,
                           bool *per_channel, size_t *bytes)
{
    wino_layout l;
    size_t floats;
    if (threads < 1) threads = 1;
    if (!wino_plan(p, in, out, threads, mosaic, &l)) return false;
    *per_channel = l.mosaic;
    return conv_size_mul(l.slice_floats, (size_t)threads, &floats) && conv_size_add(floats, l.shared_floats, &floats) &&
           conv_size_mul(floats, sizeof(float), bytes);
}

static bool winograd_workspace(const conv_params *p, const conv_dims *in, const conv_dims *out, int threads,
                               size_t *bytes)
{
    bool per_channel;
    return wino_workspace(p, in, out, threads, false, &per_channel, bytes);
}

bool conv_winograd_mosaic_workspace(const conv_params *p, const conv_dims *in, const conv_dims *out, int threads,
                                    bool *per_channel, size_t *bytes)
{
    return wino_workspace(p, in, out, threads, true, per_channel, bytes);
}

typedef struct wino_job {
    const conv_run_args *a;
    wino_layout l;
    wino_input_fn input;
    wino_output_fn output;
    wino_gemm_fn gemm;
    wino_pgemm_fn pgemm;
    int64_t pv;                 /* tile vectors a packed V panel holds, as pgemm reads them */
    int64_t n, g, first, count; /* packed: the block being computed */
    const wino_mosaic_io *io;   /* when l.mosaic */
} wino_job;

static void winograd_outputs(const wino_job *job, const float *m, int64_t n, int64_t g, int64_t first, int64_t count,
                             int64_t oc0, int64_t rows, int thread);

/* V = B^T d B for tiles [first, first + count) of one input plane, tile t
 * at dst + (t - first) (row stride ld): one call per run of tiles along a
 * tile row, with the rows above or below the input passed as NULL. */
static void input_tiles(const wino_job *job, const float *plane, int64_t first, int64_t count, float *dst, size_t ld)
{
    const conv_run_args *a = job->a;
    const conv_params *p = a->params;
    const wino_layout *l = &job->l;
    for (int64_t t = first; t < first + count;) {
        int64_t ty = t / l->tiles_w, tx = t % l->tiles_w;
        int64_t seg = l->tiles_w - tx < first + count - t ? l->tiles_w - tx : first + count - t;
        const float *rows[WINO_IN];
        for (int r = 0; r < WINO_IN; r++) {
            int64_t y = ty * WINO_OUT - p->pad_top + r;
            rows[r] = y >= 0 && y < a->in.h ? plane + y * a->in.w : NULL;
        }
        job->input(rows, tx * WINO_OUT - p->pad_left, a->in.w, seg, dst + (size_t)(t - first), ld);
        t += seg;
    }
}

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
    float *v = (float *)a->workspace + l->shared_floats + (size_t)thread * l->slice_floats;
    float *m = v + (size_t)cin_g * ld * WINO_POINTS;

    /* The block runs along tile rows; each row's part is one segment. */
    for (int64_t c = 0; c < cin_g; c++) {
        const float *plane = a->input + ((n * p->in_channels + g * cin_g + c) * a->in.h) * a->in.w;
        input_tiles(job, plane, first, count, v + (size_t)c * WINO_POINTS * ld, ld);
    }

    const float *u = (const float *)a->packed + (size_t)g * WINO_POINTS * (size_t)(cout_g * cin_g);
    for (int64_t oc = 0; oc < cout_g; oc += l->fused_rows) {
        int64_t rows = cout_g - oc < l->fused_rows ? cout_g - oc : l->fused_rows;
        job->gemm(u + (size_t)(oc * cin_g), (size_t)(cout_g * cin_g), rows, cin_g, v, ld, count, m);
        winograd_outputs(job, m, n, g, first, count, oc, rows, thread);
    }
}

/* Y for output channels [oc0, oc0 + rows) of group g, whose M rows start at m. */
static void winograd_outputs(const wino_job *job, const float *m, int64_t n, int64_t g, int64_t first, int64_t count,
                             int64_t oc0, int64_t rows, int thread)
{
    const conv_run_args *a = job->a;
    const conv_params *p = a->params;
    const wino_layout *l = &job->l;
    int64_t cout_g = p->out_channels / p->groups;
    size_t ld = l->ld;
    float *mosaic = l->mosaic ? (float *)a->workspace + l->shared_floats + (size_t)thread * l->slice_floats +
                                    l->mosaic_out
                              : NULL;
    for (int64_t oc = oc0; oc < oc0 + rows; oc++) {
        int64_t channel = g * cout_g + oc;
        float *plane = mosaic ? mosaic : a->output + ((n * p->out_channels + channel) * a->out.h) * a->out.w;
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
        if (mosaic) job->io->scatter(job->io->ctx, n, channel, mosaic);
    }
}

/* Packed operands, step 1: V of input channels [c0, c0 + WINO_PACKED_CHANNELS)
 * for the job's block, transformed into the thread's scratch, then copied
 * into the shared V's panels (one run of the chunk's rows per panel). */
static void winograd_packed_input_task(void *ctx, size_t task, int thread)
{
    const wino_job *job = ctx;
    const conv_run_args *a = job->a;
    const conv_params *p = a->params;
    const wino_layout *l = &job->l;
    int64_t cin_g = p->in_channels / p->groups;
    int64_t c0 = (int64_t)task * WINO_PACKED_CHANNELS;
    int64_t chunk = cin_g - c0 < WINO_PACKED_CHANNELS ? cin_g - c0 : WINO_PACKED_CHANNELS;
    int64_t first = job->first, count = job->count, cols = round8(count);
    size_t ld = l->ld;
    float *shared = a->workspace;
    float *scratch = shared + l->shared_floats + (size_t)thread * l->slice_floats;

    for (int64_t c = 0; c < chunk; c++) {
        int64_t channel = job->g * cin_g + c0 + c;
        const float *plane;
        if (l->mosaic) {
            float *mosaic = scratch + l->mosaic_in;
            job->io->gather(job->io->ctx, job->n, channel, mosaic);
            plane = mosaic;
        } else {
            plane = a->input + ((job->n * p->in_channels + channel) * a->in.h) * a->in.w;
        }
        float *vc = scratch + (size_t)c * WINO_POINTS * ld;
        /* the next plane is read from L3 while this one is transformed (the
         * loads of a cold plane were a third of the input transform) */
        if (c + 1 < chunk && !l->mosaic) {
            const char *next = (const char *)(plane + a->in.h * a->in.w);
            size_t bytes = (size_t)(a->in.h * a->in.w) * sizeof(float);
            if (bytes > 16384) bytes = 16384;
            for (size_t off = 0; off < bytes; off += 64) __builtin_prefetch(next + off);
        }
        input_tiles(job, plane, first, count, vc, ld);
        /* the GEMMs compute whole vectors; past the block's last tile they
         * read zeros, not what an earlier block left */
        if (cols > count)
            for (size_t xi = 0; xi < WINO_POINTS; xi++)
                memset(vc + xi * ld + (size_t)count, 0, (size_t)(cols - count) * sizeof(float));
    }
    for (size_t xi = 0; xi < WINO_POINTS; xi++) {
        float *vx = shared + xi * l->vx_stride;
        int64_t panel = job->pv * WINO_LANES;
        for (int64_t q = 0; q * panel < cols; q++) {
            int64_t width = cols - q * panel;
            if (width > panel) width = panel;
            float *dst = vx + (size_t)(q * cin_g * panel) + (size_t)(c0 * width);
            /* whole vectors (memcpy of 32-96 bytes became a slow rep movs) */
            for (int64_t c = 0; c < chunk; c++) {
                const float *src = scratch + ((size_t)c * WINO_POINTS + xi) * ld + (size_t)(q * panel);
                for (int64_t j = 0; j < width; j += WINO_LANES) {
                    wino_v8 x;
                    WINO_LOAD(x, src + j);
                    WINO_STORE(dst + c * width + j, x);
                }
            }
        }
    }
}

/* Packed operands, step 2: M = U V for output channels [oc0, oc0 +
 * WINO_PACKED_ROWS) of the job's block, then their output transform. */
static void winograd_packed_pass_task(void *ctx, size_t task, int thread)
{
    const wino_job *job = ctx;
    const conv_run_args *a = job->a;
    const conv_params *p = a->params;
    const wino_layout *l = &job->l;
    int64_t cin_g = p->in_channels / p->groups, cout_g = p->out_channels / p->groups;
    int64_t oc0 = (int64_t)task * WINO_PACKED_ROWS;
    int64_t rows = cout_g - oc0 < WINO_PACKED_ROWS ? cout_g - oc0 : WINO_PACKED_ROWS;
    int64_t panels = (rows + WINO_PU - 1) / WINO_PU, vecs = round8(job->count) / WINO_LANES;
    size_t ld = l->ld;
    const float *v = a->workspace;
    float *m = (float *)a->workspace + l->shared_floats + (size_t)thread * l->slice_floats +
               (size_t)WINO_PACKED_CHANNELS * WINO_POINTS * ld;
    size_t panel_stride = (size_t)WINO_POINTS * (size_t)cin_g * WINO_PU;
    int64_t group_panels = (cout_g + WINO_PU - 1) / WINO_PU;
    const float *u = (const float *)a->packed + (size_t)(job->g * group_panels + oc0 / WINO_PU) * panel_stride;
    for (size_t xi = 0; xi < WINO_POINTS; xi++)
        for (int64_t k0 = 0; k0 < cin_g; k0 += WINO_PACKED_KC) {
            int64_t kc = cin_g - k0 < WINO_PACKED_KC ? cin_g - k0 : WINO_PACKED_KC;
            job->pgemm(u + xi * (size_t)cin_g * WINO_PU, panel_stride, panels, v + xi * l->vx_stride, cin_g, k0, kc,
                       vecs, k0 > 0, m + xi * ld, WINO_POINTS * ld);
        }
    winograd_outputs(job, m, job->n, job->g, job->first, job->count, oc0, rows, thread);
}

static void winograd_run_job(const conv_run_args *a, bool allow_avx2, const wino_mosaic_io *io)
{
    const conv_params *p = a->params;
    wino_job job = {.a = a, .io = io};
    bool avx2 = allow_avx2 && conv_cpu()->avx2_fma;
    job.input = avx2 ? wino_input_avx2 : wino_input_generic;
    job.output = avx2 ? wino_output_avx2 : wino_output_generic;
    job.gemm = avx2 ? wino_gemm_avx2 : wino_gemm_generic;
    job.pgemm = avx2 ? wino_pgemm_avx2 : wino_pgemm_generic;
    job.pv = WINO_PV;
    if (avx2 && conv_cpu()->avx512) {
        job.input = wino_input_avx512;
        job.output = wino_output_avx512;
        job.gemm = wino_gemm_avx512;
        job.pgemm = wino_pgemm_avx512;
        job.pv = WINO_PV512;
    }
    /* cannot fail: workspace_size succeeded with the same arguments */
    if (!wino_plan(p, &a->in, &a->out, conv_threadpool_size(a->pool), io != NULL, &job.l)) return;
    if (job.l.packed) {
        int64_t cin_g = p->in_channels / p->groups, cout_g = p->out_channels / p->groups;
        size_t chunks = (size_t)((cin_g + WINO_PACKED_CHANNELS - 1) / WINO_PACKED_CHANNELS);
        size_t passes = (size_t)((cout_g + WINO_PACKED_ROWS - 1) / WINO_PACKED_ROWS);
        for (job.n = 0; job.n < a->in.n; job.n++)
            for (job.g = 0; job.g < p->groups; job.g++)
                for (int64_t block = 0; block < job.l.blocks; block++) {
                    job.first = block * job.l.block;
                    job.count = job.l.tiles - job.first < job.l.block ? job.l.tiles - job.first : job.l.block;
                    conv_parallel_for(a->pool, chunks, winograd_packed_input_task, &job);
                    conv_parallel_for(a->pool, passes, winograd_packed_pass_task, &job);
                }
        return;
    }
    conv_parallel_for(a->pool, (size_t)(a->in.n * p->groups * job.l.blocks), winograd_task, &job);
}

void conv_winograd_run_isa(const conv_run_args *a, bool allow_avx2) { winograd_run_job(a, allow_avx2, NULL); }

void conv_winograd_run_mosaic(const conv_run_args *a, const wino_mosaic_io *io) { winograd_run_job(a, true, io); }

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

void wino_pgemm_generic(const float *u, size_t u_panel_stride, int64_t panels, const float *v, int64_t cin,
                        int64_t k0, int64_t kc, int64_t vecs, bool accumulate, float *m, size_t ms)
{
    wino_pgemm_impl(u, u_panel_stride, panels, v, cin, k0, kc, vecs, accumulate, m, ms);
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
