/* cli_bench.c — `convd bench`: times one layer (random weights, packed once as
 * at model load) or a whole model folder, the convd column of `make bench`.
 *
 * Only conv_model_run is timed: the model is created, planned and given its
 * workspace once, before the warm-up, the way the service holds a loaded model.
 * With no --repeat the runs go on until --min-time seconds and at least
 * MIN_AUTO_REPEAT runs have passed; the median is the figure to quote (the
 * minimum shows how much the machine's noise moved it). */
#include <cblas.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/conv.h"
#include "proto/model_dir.h"
#include "proto/model_json.h"
#include "proto/random_init.h"
#include "server/cli.h"

enum { MIN_AUTO_REPEAT = 20, MAX_REPEAT = 1000000, DEFAULT_WARMUP = 3 };
static const double DEFAULT_MIN_TIME_S = 0.5;
static const double MIN_WARMUP_S = 0.1;

static const char bench_usage[] =
    "usage: convd bench --layer '<layer JSON>' --input-shape N,C,H,W [options]\n"
    "       convd bench MODEL_DIR [--input-shape N,C,H,W] [options]\n"
    "\n"
    "Times one layer (random weights in [-1, 1), packed once as at model load)\n"
    "or a model folder, after a warm-up, and prints the median and minimum time\n"
    "of a run, the achieved GFLOP/s (the plan's FLOPs / median time) and the\n"
    "algorithm; for a model also each layer's median time.\n"
    "  --layer JSON      one layer as in model.json, e.g. '{\"type\": \"Conv2d\",\n"
    "                    \"in_channels\": 3, \"out_channels\": 10, \"kernel_size\": 3,\n"
    "                    \"padding\": 1, \"algorithm\": \"im2col\"}'\n"
    "  --input-shape S   N,C,H,W (for a model, default: the shape in model.json)\n"
    "  --threads T       threads for the computation (default 1)\n"
    "  --repeat R        timed runs (default: enough for --min-time, at least 20)\n"
    "  --min-time S      seconds of timed runs when --repeat is not given (default 0.5)\n"
    "  --warmup W        untimed runs first (default 3, and at least 0.1 s)\n"
    "  --json            print the result as one JSON object\n"
    "  --autotune        time every kernel that can run each convolution once and\n"
    "                    keep the fastest (the planning happens before the warm-up)\n";

typedef struct bench_options {
    long threads;
    long repeat; /* 0: time-based */
    long warmup; /* -1: default */
    double min_time_s;
    bool json;
} bench_options;

/* Run times: totals[r] for run r; per_layer[l * capacity + r] for layer l. */
typedef struct bench_samples {
    size_t n_layers, count, capacity;
    double *totals;
    double *per_layer;
} bench_samples;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* sorts v in place */
static double median_of(double *v, size_t n)
{
    qsort(v, n, sizeof *v, compare_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static bool samples_grow(bench_samples *s)
{
    size_t cap = s->capacity ? s->capacity * 2 : 256;
    double *totals = realloc(s->totals, cap * sizeof *totals);
    if (!totals) return false;
    s->totals = totals;
    double *per_layer = calloc(s->n_layers ? s->n_layers * cap : 1, sizeof *per_layer);
    if (!per_layer) return false;
    for (size_t l = 0; l < s->n_layers; l++)
        if (s->count) memcpy(per_layer + l * cap, s->per_layer + l * s->capacity, s->count * sizeof *per_layer);
    free(s->per_layer);
    s->per_layer = per_layer;
    s->capacity = cap;
    return true;
}

/* Everything a timed run needs, set up once. */
typedef struct bench_target {
    const conv_model *model;
    conv_plan *plan;
    conv_tensor input, output;
    void *workspace;
    conv_threadpool *pool;
    conv_model_stats stats; /* per-run times land here */
} bench_target;

static int target_prepare(bench_target *t, const conv_model *model, const int64_t shape[4], long threads)
{
    conv_error err;
    t->model = model;
    if (threads > 1 && conv_threadpool_create((int)threads, &t->pool, &err))
        return cli_fail("bench", EXIT_ERROR, "%s", err.message);
    if (conv_plan_create(model, shape, &t->plan, &err)) return cli_fail("bench", EXIT_ERROR, "%s", err.message);
    int64_t out_shape[4];
    conv_plan_output_shape(t->plan, out_shape);
    if (conv_tensor_alloc(&t->input, 4, shape, &err) || conv_tensor_alloc(&t->output, 4, out_shape, &err))
        return cli_fail("bench", EXIT_ERROR, "%s", err.message);
    random_init_fill(1, t->input.data, conv_tensor_numel(&t->input));
    size_t ws = conv_plan_workspace_size(t->plan, conv_threadpool_size(t->pool));
    t->workspace = conv_aligned_alloc(ws ? ws : CONV_ALIGNMENT);
    t->stats.layers = calloc(conv_model_layer_count(model), sizeof *t->stats.layers);
    if (!t->workspace || !t->stats.layers) return cli_fail("bench", EXIT_ERROR, "out of memory (workspace %zu bytes)", ws);
    return EXIT_OK;
}

static void target_release(bench_target *t)
{
    free(t->stats.layers);
    conv_aligned_free(t->workspace);
    conv_tensor_free(&t->input);
    conv_tensor_free(&t->output);
    conv_plan_destroy(t->plan);
    conv_threadpool_destroy(t->pool);
}

static int run_once(bench_target *t, double *seconds)
{
    conv_error err;
    double start = now_s();
    conv_status s = conv_model_run(t->model, t->plan, t->input.data, t->output.data, t->workspace, t->pool, &t->stats,
                                   &err);
    *seconds = now_s() - start;
    return s ? cli_fail("bench", EXIT_ERROR, "%s", err.message) : EXIT_OK;
}

/* Warm-up, then the timed runs into s; returns the warm-up count in *warmed. */
static int time_runs(bench_target *t, const bench_options *o, bench_samples *s, long *warmed)
{
    double elapsed, start = now_s();
    long done = 0;
    long warmup = o->warmup >= 0 ? o->warmup : DEFAULT_WARMUP;
    while (done < warmup || (o->warmup < 0 && now_s() - start < MIN_WARMUP_S)) {
        if (run_once(t, &elapsed)) return EXIT_ERROR;
        done++;
    }
    *warmed = done;
    s->n_layers = conv_model_layer_count(t->model);
    start = now_s();
    for (;;) {
        if (s->count == s->capacity && !samples_grow(s)) return cli_fail("bench", EXIT_ERROR, "out of memory");
        if (run_once(t, &elapsed)) return EXIT_ERROR;
        s->totals[s->count] = elapsed * 1e3;
        for (size_t l = 0; l < s->n_layers; l++) s->per_layer[l * s->capacity + s->count] = t->stats.layers[l].compute_ms;
        s->count++;
        bool enough = o->repeat > 0 ? (long)s->count >= o->repeat
                                    : (long)s->count >= MIN_AUTO_REPEAT && now_s() - start >= o->min_time_s;
        if (enough || s->count >= MAX_REPEAT) return EXIT_OK;
    }
}

static double gflops(int64_t flops, double ms) { return ms > 0 ? (double)flops / (ms * 1e6) : 0.0; }

static json_t *shape_json(const int64_t dims[4])
{
    json_t *a = json_array();
    for (int i = 0; i < 4; i++) json_array_append_new(a, json_integer(dims[i]));
    return a;
}

static int print_json(json_t *doc)
{
    char *text = doc ? json_dumps(doc, JSON_REAL_PRECISION(6)) : NULL;
    json_decref(doc);
    if (!text) return cli_fail("bench", EXIT_ERROR, "out of memory formatting the result");
    puts(text);
    free(text);
    return EXIT_OK;
}

static int report_layer(const bench_target *t, bench_samples *s, const bench_options *o, long warmed)
{
    const conv_model_stats *st = conv_plan_stats(t->plan);
    const conv_layer_stats *ls = &st->layers[0];
    double median = median_of(s->totals, s->count);
    double min = s->totals[0]; /* sorted by median_of */
    if (o->json) {
        json_t *doc = json_pack("{s:f, s:f, s:f, s:s, s:s, s:I, s:i, s:i, s:i}", "median_ms", median, "min_ms", min,
                                "gflops_per_s", gflops(st->flops, median), "algorithm",
                                conv_algorithm_name(ls->algorithm), "execution", ls->execution, "flops",
                                (json_int_t)st->flops, "threads", (int)o->threads, "repeat", (int)s->count, "warmup",
                                (int)warmed);
        if (doc) {
            json_object_set_new(doc, "input_shape", shape_json(st->input_shape));
            json_object_set_new(doc, "output_shape", shape_json(st->output_shape));
            /* the layers on OpenBLAS (im2col) run as fast as the core it chose */
            json_object_set_new(doc, "blas_core", json_string(openblas_get_corename()));
        }
        return print_json(doc);
    }
    char in[96], out[96];
    conv_shape_format(st->input_shape, 4, in, sizeof in);
    conv_shape_format(st->output_shape, 4, out, sizeof out);
    printf("%s %s -> %s, threads %ld\n", conv_layer_type_name(ls->type), in, out, o->threads);
    printf("algorithm %s (execution %s)\n", conv_algorithm_name(ls->algorithm), ls->execution);
    printf("median %.4f ms, min %.4f ms over %zu runs (after %ld warm-up)\n", median, min, s->count, warmed);
    printf("%lld FLOPs, %.2f GFLOP/s at the median\n", (long long)st->flops, gflops(st->flops, median));
    return EXIT_OK;
}

static int report_model(const char *name, const bench_target *t, bench_samples *s, const bench_options *o,
                        long warmed)
{
    const conv_model_stats *st = conv_plan_stats(t->plan);
    double median = median_of(s->totals, s->count);
    double min = s->totals[0]; /* sorted by median_of */
    double *layer_median = calloc(s->n_layers, sizeof *layer_median);
    if (!layer_median) return cli_fail("bench", EXIT_ERROR, "out of memory");
    for (size_t l = 0; l < s->n_layers; l++) layer_median[l] = median_of(s->per_layer + l * s->capacity, s->count);

    int status = EXIT_OK;
    if (o->json) {
        json_t *doc = json_pack("{s:s, s:f, s:f, s:f, s:I, s:i, s:i, s:i}", "model", name, "median_ms", median,
                                "min_ms", min, "gflops_per_s", gflops(st->flops, median), "flops",
                                (json_int_t)st->flops, "threads", (int)o->threads, "repeat", (int)s->count, "warmup",
                                (int)warmed);
        json_t *layers = json_array();
        if (doc && layers) {
            json_object_set_new(doc, "input_shape", shape_json(st->input_shape));
            json_object_set_new(doc, "output_shape", shape_json(st->output_shape));
            for (size_t l = 0; l < s->n_layers; l++) {
                const conv_layer_stats *ls = &st->layers[l];
                json_array_append_new(
                    layers, json_pack("{s:I, s:s, s:s, s:s, s:I, s:f, s:f, s:I}", "index", (json_int_t)l, "type",
                                      conv_layer_type_name(ls->type), "algorithm", conv_algorithm_name(ls->algorithm),
                                      "execution", ls->execution, "flops", (json_int_t)ls->flops, "median_ms",
                                      layer_median[l], "gflops_per_s", gflops(ls->flops, layer_median[l]),
                                      "fused_into", (json_int_t)ls->fused_into));
            }
        }
        json_object_set_new(doc, "layers", layers);
        status = print_json(doc);
    } else {
        char shape[96];
        conv_shape_format(st->input_shape, 4, shape, sizeof shape);
        printf("model %s, input %s, threads %ld, %zu runs (after %ld warm-up)\n\n", name, shape, o->threads,
               s->count, warmed);
        printf("%3s  %-16s %-20s %-34s %10s %6s %9s\n", "#", "layer", "output", "execution", "median ms", "share",
               "GFLOP/s");
        for (size_t l = 0; l < s->n_layers; l++) {
            const conv_layer_stats *ls = &st->layers[l];
            conv_shape_format(ls->output_shape, 4, shape, sizeof shape);
            printf("%3zu  %-16s %-20s %-34s %10.4f %5.1f%% %9.2f\n", l, conv_layer_type_name(ls->type), shape,
                   ls->execution, layer_median[l], median > 0 ? 100.0 * layer_median[l] / median : 0.0,
                   gflops(ls->flops, layer_median[l]));
        }
        printf("\ntotal: median %.4f ms, min %.4f ms, %lld FLOPs, %.2f GFLOP/s at the median\n", median, min,
               (long long)st->flops, gflops(st->flops, median));
    }
    free(layer_median);
    return status;
}

/* One layer from its JSON, with random weights (BatchNorm's running_var kept
 * positive so the layer computes finite numbers). */
static int create_layer_model(const char *layer_text, bool autotune, conv_model **model)
{
    json_error_t jerr;
    json_t *obj = json_loads(layer_text, 0, &jerr);
    if (!obj) return cli_fail("bench", EXIT_USAGE, "--layer is not JSON: %s (column %d)", jerr.text, jerr.column);
    conv_error err;
    conv_layer_spec spec;
    conv_status s = layer_spec_from_json(obj, "layer", &spec, &err);
    json_decref(obj);
    if (s) return cli_fail("bench", EXIT_ERROR, "%s", err.message);

    conv_param_desc descs[CONV_MAX_LAYER_PARAMS];
    size_t n = conv_layer_param_descs(&spec, descs);
    conv_named_tensor weights[CONV_MAX_LAYER_PARAMS];
    char names[CONV_MAX_LAYER_PARAMS][64];
    memset(weights, 0, sizeof weights);
    int status = EXIT_OK;
    for (size_t i = 0; i < n && status == EXIT_OK; i++) {
        snprintf(names[i], sizeof names[i], "0.%s", descs[i].suffix);
        weights[i].name = names[i];
        weights[i].is_float = true;
        if (conv_tensor_alloc(&weights[i].tensor, descs[i].rank, descs[i].dims, &err)) {
            status = cli_fail("bench", EXIT_ERROR, "weight %s: %s", names[i], err.message);
            break;
        }
        size_t count = conv_tensor_numel(&weights[i].tensor);
        float *data = weights[i].tensor.data;
        random_init_fill(100 + i, data, count);
        if (!strcmp(descs[i].suffix, "running_var"))
            for (size_t k = 0; k < count; k++) data[k] = 1.0f + 0.5f * data[k];
    }
    conv_model_options opts;
    conv_model_options_init(&opts);
    opts.autotune = autotune;
    if (status == EXIT_OK && conv_model_create(&spec, 1, weights, n, &opts, model, &err))
        status = cli_fail("bench", EXIT_ERROR, "%s", err.message);
    for (size_t i = 0; i < n; i++) conv_tensor_free(&weights[i].tensor);
    return status;
}

int cli_bench(int argc, char **argv)
{
    const char *layer_text = NULL, *model_path = NULL;
    bench_options o = {.threads = 1, .repeat = 0, .warmup = -1, .min_time_s = DEFAULT_MIN_TIME_S, .json = false};
    int64_t shape[4];
    bool have_shape = false, autotune = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(bench_usage, stdout);
            return EXIT_OK;
        } else if (!strcmp(a, "--json")) {
            o.json = true;
        } else if (!strcmp(a, "--autotune")) {
            autotune = true;
        } else if (!strcmp(a, "--layer")) {
            if (++i == argc) return cli_fail("bench", EXIT_USAGE, "--layer needs a JSON object");
            layer_text = argv[i];
        } else if (!strcmp(a, "--input-shape")) {
            if (++i == argc || !cli_parse_shape(argv[i], shape))
                return cli_fail("bench", EXIT_USAGE, "--input-shape needs N,C,H,W with positive integers");
            have_shape = true;
        } else if (!strcmp(a, "--threads")) {
            if (++i == argc || !cli_parse_int(argv[i], 1, 1024, &o.threads))
                return cli_fail("bench", EXIT_USAGE, "--threads needs an integer in 1..1024");
        } else if (!strcmp(a, "--repeat")) {
            if (++i == argc || !cli_parse_int(argv[i], 1, MAX_REPEAT, &o.repeat))
                return cli_fail("bench", EXIT_USAGE, "--repeat needs an integer in 1..%d", MAX_REPEAT);
        } else if (!strcmp(a, "--warmup")) {
            if (++i == argc || !cli_parse_int(argv[i], 0, MAX_REPEAT, &o.warmup))
                return cli_fail("bench", EXIT_USAGE, "--warmup needs an integer in 0..%d", MAX_REPEAT);
        } else if (!strcmp(a, "--min-time")) {
            char *end = NULL;
            o.min_time_s = ++i == argc ? -1.0 : strtod(argv[i], &end);
            if (!end || *end || end == argv[i] || !(o.min_time_s >= 0.0 && o.min_time_s <= 3600.0))
                return cli_fail("bench", EXIT_USAGE, "--min-time needs seconds in 0..3600");
        } else if (a[0] == '-' && a[1]) {
            return cli_fail("bench", EXIT_USAGE, "unknown option %s (see convd bench --help)", a);
        } else if (!model_path) {
            model_path = a;
        } else {
            return cli_fail("bench", EXIT_USAGE, "unexpected argument \"%s\"", a);
        }
    }
    if (!layer_text == !model_path)
        return cli_fail("bench", EXIT_USAGE, "needs either --layer JSON or MODEL_DIR (see convd bench --help)");
    if (layer_text && !have_shape) return cli_fail("bench", EXIT_USAGE, "--layer needs --input-shape N,C,H,W");

    conv_error err;
    conv_model *layer_model = NULL;
    model_dir md;
    bool have_dir = false;
    const conv_model *model;
    const char *name = "";
    if (layer_text) {
        int s = create_layer_model(layer_text, autotune, &layer_model);
        if (s) return s;
        model = layer_model;
    } else {
        conv_model_options opts;
        conv_model_options_init(&opts);
        opts.autotune = autotune;
        if (model_dir_load(model_path, &opts, &md, &err))
            return cli_fail("bench", EXIT_ERROR, "%s: %s", model_path, err.message);
        have_dir = true;
        model = md.model;
        name = md.spec.name[0] ? md.spec.name : model_path;
        if (!have_shape && !md.spec.has_input_shape) {
            model_dir_free(&md);
            return cli_fail("bench", EXIT_USAGE, "%s declares no input shape: pass --input-shape N,C,H,W", model_path);
        }
        if (!have_shape) memcpy(shape, md.spec.input_shape, sizeof shape);
    }

    bench_target target;
    memset(&target, 0, sizeof target);
    bench_samples samples;
    memset(&samples, 0, sizeof samples);
    long warmed = 0;
    int status = target_prepare(&target, model, shape, o.threads);
    if (status == EXIT_OK) status = time_runs(&target, &o, &samples, &warmed);
    if (status == EXIT_OK)
        status = layer_text ? report_layer(&target, &samples, &o, warmed)
                            : report_model(name, &target, &samples, &o, warmed);
    free(samples.totals);
    free(samples.per_layer);
    target_release(&target);
    conv_model_destroy(layer_model);
    if (have_dir) model_dir_free(&md);
    return status;
}
