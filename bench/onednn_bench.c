/* onednn_bench.c — times oneDNN's convolution on one bench/suite.txt entry, the
 * oneDNN columns of `make bench`: "onednn_nchw" (NCHW in and out, reorders to and
 * from the primitive's preferred layout timed every iteration, weights reordered
 * once as at model load) and "onednn_blocked" (the primitive alone, in its
 * preferred layout, no reorders). Benchmark-only: built by bench/run.sh against
 * Debian's libdnnl-dev, never part of convd's build. Threads: OMP_NUM_THREADS.
 *
 *   onednn_bench --entry 'conv 1,3,128,128 10 3 1 1 1 1' [--min-time S] [--min-repeat R]
 *                [--repeat R] [--warmup W]
 *   onednn_bench --version
 *
 * A "sep" entry is the depthwise and the pointwise convolution run back to back,
 * each timed in the same iteration, the entry's time being their sum. */
#define _GNU_SOURCE
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHECK(call)                                                                            \
    do {                                                                                       \
        dnnl_status_t s_ = (call);                                                             \
        if (s_ != dnnl_success) {                                                              \
            fprintf(stderr, "onednn_bench: %s failed with status %d (line %d)\n", #call, (int)s_, \
                    __LINE__);                                                                 \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)

typedef struct entry {
    char text[256];
    int separable;
    long n, c, h, w, out, k, stride, pad, dilation, groups;
} entry;

/* One convolution with NCHW user memories and memories in the layout the
 * primitive prefers; a reorder is NULL where both layouts are the same. */
typedef struct stage {
    dnnl_primitive_t conv, src_reorder, dst_reorder;
    dnnl_memory_t user_src, user_dst, src, weights, bias, dst;
    char impl[64];
} stage;

typedef struct timing {
    double min_time;
    long min_repeat, repeat, warmup;
} timing;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int parse_entry(const char *text, entry *e)
{
    char kind[16];
    int used = 0;
    memset(e, 0, sizeof *e);
    snprintf(e->text, sizeof e->text, "%s", text);
    if (sscanf(text, " %15s %ld,%ld,%ld,%ld %ld %ld %ld %ld %ld %ld %n", kind, &e->n, &e->c, &e->h, &e->w, &e->out,
               &e->k, &e->stride, &e->pad, &e->dilation, &e->groups, &used) != 11 || text[used])
        return 0;
    if (strcmp(kind, "conv") && strcmp(kind, "sep")) return 0;
    e->separable = !strcmp(kind, "sep");
    if (e->n < 1 || e->c < 1 || e->h < 1 || e->w < 1 || e->out < 1 || e->k < 1 || e->stride < 1 || e->pad < 0 ||
        e->dilation < 1 || e->groups < 1 || e->c % e->groups || e->out % e->groups)
        return 0;
    if (e->separable && e->groups != 1) return 0;
    /* the same words, single-spaced, so results join with the other tools' */
    snprintf(e->text, sizeof e->text, "%s %ld,%ld,%ld,%ld %ld %ld %ld %ld %ld %ld", kind, e->n, e->c, e->h, e->w,
             e->out, e->k, e->stride, e->pad, e->dilation, e->groups);
    return 1;
}

/* A small local generator: the harness keeps no global state. */
static float next_uniform(unsigned long long *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return (float)((double)(*state >> 11) / 9007199254740992.0) * 2.0f - 1.0f;
}

static dnnl_memory_t plain_memory(dnnl_engine_t engine, int ndims, const dnnl_dims_t dims, dnnl_format_tag_t tag,
                                  unsigned long long *rng)
{
    dnnl_memory_desc_t md;
    dnnl_memory_t mem;
    CHECK(dnnl_memory_desc_init_by_tag(&md, ndims, dims, dnnl_f32, tag));
    CHECK(dnnl_memory_create(&mem, &md, engine, DNNL_MEMORY_ALLOCATE));
    float *data;
    CHECK(dnnl_memory_get_data_handle(mem, (void **)&data));
    size_t count = dnnl_memory_desc_get_size(&md) / sizeof(float);
    for (size_t i = 0; i < count; i++) data[i] = next_uniform(rng);
    return mem;
}

static const dnnl_memory_desc_t *memory_md(dnnl_memory_t mem)
{
    const dnnl_memory_desc_t *md;
    CHECK(dnnl_memory_get_memory_desc(mem, &md));
    return md;
}

static dnnl_primitive_t make_reorder(dnnl_engine_t engine, const dnnl_memory_desc_t *from,
                                     const dnnl_memory_desc_t *to)
{
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
    CHECK(dnnl_reorder_primitive_desc_create(&pd, from, engine, to, engine, NULL));
    CHECK(dnnl_primitive_create(&prim, pd));
    CHECK(dnnl_primitive_desc_destroy(pd));
    return prim;
}

static void run_reorder(dnnl_primitive_t reorder, dnnl_stream_t stream, dnnl_memory_t from, dnnl_memory_t to)
{
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    CHECK(dnnl_primitive_execute(reorder, stream, 2, args));
}

/* The memory in the layout `want`: `user` itself if the layouts match,
 * otherwise a new memory and (in *reorder) the reorder that fills it. */
static dnnl_memory_t preferred(dnnl_engine_t engine, dnnl_memory_t user, const dnnl_memory_desc_t *want,
                               int user_is_source, dnnl_primitive_t *reorder)
{
    *reorder = NULL;
    if (dnnl_memory_desc_equal(memory_md(user), want)) return user;
    dnnl_memory_t mem;
    CHECK(dnnl_memory_create(&mem, want, engine, DNNL_MEMORY_ALLOCATE));
    *reorder = user_is_source ? make_reorder(engine, memory_md(user), want) : make_reorder(engine, want, memory_md(user));
    return mem;
}

/* Sets up Conv2d(c, out, k, stride, pad, dilation, groups) on an n x c x h x w
 * NCHW input. user_src may be given (the previous stage's NCHW output) or NULL. */
static void stage_create(stage *st, dnnl_engine_t engine, dnnl_stream_t stream, long n, long c, long h, long w,
                         long out, long k, long stride, long pad, long dilation, long groups, dnnl_memory_t user_src,
                         unsigned long long *rng)
{
    memset(st, 0, sizeof *st);
    long oh = (h + 2 * pad - dilation * (k - 1) - 1) / stride + 1;
    long ow = (w + 2 * pad - dilation * (k - 1) - 1) / stride + 1;
    dnnl_dims_t src_dims = {n, c, h, w}, dst_dims = {n, out, oh, ow}, bias_dims = {out};
    dnnl_dims_t wei_dims = {groups, out / groups, c / groups, k, k};
    int wei_ndims = groups > 1 ? 5 : 4;
    if (groups == 1) memmove(wei_dims, wei_dims + 1, 4 * sizeof wei_dims[0]);
    dnnl_dims_t strides = {stride, stride}, dilates = {dilation - 1, dilation - 1}, padding = {pad, pad};

    st->user_src = user_src ? user_src : plain_memory(engine, 4, src_dims, dnnl_nchw, rng);
    st->user_dst = plain_memory(engine, 4, dst_dims, dnnl_nchw, rng);
    dnnl_memory_t user_weights =
        plain_memory(engine, wei_ndims, wei_dims, groups > 1 ? dnnl_goihw : dnnl_oihw, rng);
    st->bias = plain_memory(engine, 1, bias_dims, dnnl_x, rng);

    dnnl_memory_desc_t src_any, wei_any, dst_any;
    CHECK(dnnl_memory_desc_init_by_tag(&src_any, 4, src_dims, dnnl_f32, dnnl_format_tag_any));
    CHECK(dnnl_memory_desc_init_by_tag(&wei_any, wei_ndims, wei_dims, dnnl_f32, dnnl_format_tag_any));
    CHECK(dnnl_memory_desc_init_by_tag(&dst_any, 4, dst_dims, dnnl_f32, dnnl_format_tag_any));
    dnnl_convolution_desc_t desc;
    CHECK(dnnl_dilated_convolution_forward_desc_init(&desc, dnnl_forward_inference, dnnl_convolution_auto, &src_any,
                                                     &wei_any, memory_md(st->bias), &dst_any, strides, dilates,
                                                     padding, padding));
    dnnl_primitive_desc_t pd;
    CHECK(dnnl_primitive_desc_create(&pd, &desc, NULL, engine, NULL));
    const char *impl = NULL;
    CHECK(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl));
    snprintf(st->impl, sizeof st->impl, "%s", impl ? impl : "?");

    dnnl_primitive_t weights_reorder;
    st->src = preferred(engine, st->user_src, dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0), 1,
                        &st->src_reorder);
    st->weights = preferred(engine, user_weights, dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0), 1,
                            &weights_reorder);
    st->dst = preferred(engine, st->user_dst, dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), 0,
                        &st->dst_reorder);
    CHECK(dnnl_primitive_create(&st->conv, pd));
    CHECK(dnnl_primitive_desc_destroy(pd));

    /* weights once, as a model load would; the source once too, so the
     * blocked-only runs read real (zero-padded) data, not uninitialised memory */
    if (weights_reorder) {
        run_reorder(weights_reorder, stream, user_weights, st->weights);
        CHECK(dnnl_primitive_destroy(weights_reorder));
        CHECK(dnnl_memory_destroy(user_weights));
    }
    if (st->src_reorder) run_reorder(st->src_reorder, stream, st->user_src, st->src);
    CHECK(dnnl_stream_wait(stream));
}

static void stage_destroy(stage *st, int owns_user_src)
{
    if (st->src_reorder) {
        dnnl_primitive_destroy(st->src_reorder);
        dnnl_memory_destroy(st->src);
    }
    if (st->dst_reorder) {
        dnnl_primitive_destroy(st->dst_reorder);
        dnnl_memory_destroy(st->dst);
    }
    dnnl_primitive_destroy(st->conv);
    dnnl_memory_destroy(st->weights);
    dnnl_memory_destroy(st->bias);
    dnnl_memory_destroy(st->user_dst);
    if (owns_user_src) dnnl_memory_destroy(st->user_src);
}

static void stage_run(const stage *st, dnnl_stream_t stream, int with_reorders)
{
    if (with_reorders && st->src_reorder) run_reorder(st->src_reorder, stream, st->user_src, st->src);
    dnnl_exec_arg_t args[4] = {
        {DNNL_ARG_SRC, st->src}, {DNNL_ARG_WEIGHTS, st->weights}, {DNNL_ARG_BIAS, st->bias}, {DNNL_ARG_DST, st->dst}};
    CHECK(dnnl_primitive_execute(st->conv, stream, 4, args));
    if (with_reorders && st->dst_reorder) run_reorder(st->dst_reorder, stream, st->dst, st->user_dst);
    CHECK(dnnl_stream_wait(stream));
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, compare_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Times the stages back to back, each one separately inside every iteration,
 * and prints one JSON line. */
static void measure(const char *tool, const entry *e, const stage *stages, int n_stages, dnnl_stream_t stream,
                    int with_reorders, const timing *tm, const char *version)
{
    double start = now_s();
    for (long done = 0; done < tm->warmup || now_s() - start < 0.05; done++)
        for (int s = 0; s < n_stages; s++) stage_run(&stages[s], stream, with_reorders);

    size_t cap = 1024, count = 0;
    double *totals = malloc(cap * sizeof *totals), *parts[2] = {malloc(cap * sizeof(double)), malloc(cap * sizeof(double))};
    if (!totals || !parts[0] || !parts[1]) {
        fprintf(stderr, "onednn_bench: out of memory\n");
        exit(1);
    }
    start = now_s();
    for (;;) {
        if (count == cap) {
            cap *= 2;
            totals = realloc(totals, cap * sizeof *totals);
            parts[0] = realloc(parts[0], cap * sizeof(double));
            parts[1] = realloc(parts[1], cap * sizeof(double));
            if (!totals || !parts[0] || !parts[1]) {
                fprintf(stderr, "onednn_bench: out of memory\n");
                exit(1);
            }
        }
        double total = 0;
        for (int s = 0; s < n_stages; s++) {
            double t0 = now_s();
            stage_run(&stages[s], stream, with_reorders);
            parts[s][count] = now_s() - t0;
            total += parts[s][count];
        }
        totals[count++] = total;
        if (tm->repeat > 0 ? (long)count >= tm->repeat
                           : (long)count >= tm->min_repeat && now_s() - start >= tm->min_time)
            break;
    }
    double min = totals[0];
    for (size_t i = 1; i < count; i++)
        if (totals[i] < min) min = totals[i];
    const char *threads = getenv("OMP_NUM_THREADS");
    printf("{\"tool\": \"%s\", \"entry\": \"%s\", \"threads\": %d, \"median_ms\": %.6f, \"min_ms\": %.6f, "
           "\"stage_median_ms\": [",
           tool, e->text, threads ? atoi(threads) : 0, median(totals, count) * 1e3, min * 1e3);
    for (int s = 0; s < n_stages; s++) printf("%s%.6f", s ? ", " : "", median(parts[s], count) * 1e3);
    printf("], \"repeat\": %zu, \"impl\": \"", count);
    for (int s = 0; s < n_stages; s++) printf("%s%s", s ? "+" : "", stages[s].impl);
    printf("\", \"version\": \"%s\"}\n", version);
    fflush(stdout);
    free(totals);
    free(parts[0]);
    free(parts[1]);
}

static const char usage[] =
    "usage: onednn_bench --entry 'KIND N,C,H,W OUT K STRIDE PAD DIL GROUPS' [--min-time S]\n"
    "                    [--min-repeat R] [--repeat R] [--warmup W]\n"
    "       onednn_bench --version\n"
    "Times oneDNN's convolution for one bench/suite.txt entry, NCHW with reorders\n"
    "(\"onednn_nchw\") and in the preferred layout alone (\"onednn_blocked\"); one JSON\n"
    "line each. Threads: OMP_NUM_THREADS. Defaults: --min-time 0.5 --min-repeat 20\n"
    "--warmup 3 (and at least 0.05 s of warm-up).\n";

int main(int argc, char **argv)
{
    const dnnl_version_t *v = dnnl_version();
    char version[32];
    snprintf(version, sizeof version, "%d.%d.%d", v->major, v->minor, v->patch);
    const char *entry_text = NULL;
    timing tm = {.min_time = 0.5, .min_repeat = 20, .repeat = 0, .warmup = 3};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--version")) {
            printf("%s\n", version);
            return 0;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            return 0;
        } else if (i + 1 < argc && !strcmp(a, "--entry")) {
            entry_text = argv[++i];
        } else if (i + 1 < argc && !strcmp(a, "--min-time")) {
            tm.min_time = atof(argv[++i]);
        } else if (i + 1 < argc && !strcmp(a, "--min-repeat")) {
            tm.min_repeat = atol(argv[++i]);
        } else if (i + 1 < argc && !strcmp(a, "--repeat")) {
            tm.repeat = atol(argv[++i]);
        } else if (i + 1 < argc && !strcmp(a, "--warmup")) {
            tm.warmup = atol(argv[++i]);
        } else {
            fputs(usage, stderr);
            return 2;
        }
    }
    entry e;
    if (!entry_text || !parse_entry(entry_text, &e)) {
        fprintf(stderr, "onednn_bench: bad or missing --entry (want KIND N,C,H,W OUT K STRIDE PAD DIL GROUPS)\n");
        return 2;
    }

    dnnl_engine_t engine;
    dnnl_stream_t stream;
    CHECK(dnnl_engine_create(&engine, dnnl_cpu, 0));
    CHECK(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags));
    unsigned long long rng = 0x9E3779B97F4A7C15ULL;
    stage stages[2];
    int n_stages = 1;
    if (!e.separable) {
        stage_create(&stages[0], engine, stream, e.n, e.c, e.h, e.w, e.out, e.k, e.stride, e.pad, e.dilation,
                     e.groups, NULL, &rng);
    } else {
        long oh = (e.h + 2 * e.pad - e.dilation * (e.k - 1) - 1) / e.stride + 1;
        long ow = (e.w + 2 * e.pad - e.dilation * (e.k - 1) - 1) / e.stride + 1;
        stage_create(&stages[0], engine, stream, e.n, e.c, e.h, e.w, e.c, e.k, e.stride, e.pad, e.dilation, e.c,
                     NULL, &rng);
        /* the pointwise stage reads the depthwise stage's NCHW output */
        stage_create(&stages[1], engine, stream, e.n, e.c, oh, ow, e.out, 1, 1, 0, 1, 1, stages[0].user_dst, &rng);
        n_stages = 2;
    }
    measure("onednn_nchw", &e, stages, n_stages, stream, 1, &tm, version);
    measure("onednn_blocked", &e, stages, n_stages, stream, 0, &tm, version);
    for (int s = n_stages - 1; s >= 0; s--) stage_destroy(&stages[s], s == 0);
    dnnl_stream_destroy(stream);
    dnnl_engine_destroy(engine);
    return 0;
}
