/* cli_run.c — `convd run` (a model folder on an .npy input) and `convd analyze`
 * (statistics for an input shape without computing). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/conv.h"
#include "proto/model_dir.h"
#include "proto/npy.h"
#include "proto/stats_json.h"
#include "server/cli.h"

static const char run_usage[] =
    "usage: convd run MODEL_DIR INPUT.npy -o OUTPUT.npy [--stats] [--threads T]\n"
    "\n"
    "Runs the model folder MODEL_DIR (model.json + weights.safetensors) on the\n"
    "NCHW float tensor in INPUT.npy and writes the output as .npy.\n"
    "  -o, --output PATH  where to write the output (required)\n"
    "  --stats            print the statistics (shapes, MACs, FLOPs, receptive\n"
    "                     fields, algorithms, times) as JSON on stdout\n"
    "  --threads T        threads for the computation (default 1)\n"
    "  --autotune         time every kernel that can run each convolution once\n"
    "                     and keep the fastest instead of the heuristic's choice\n";

static const char analyze_usage[] =
    "usage: convd analyze MODEL_DIR [--input-shape N,C,H,W] [--json]\n"
    "\n"
    "Prints per-layer output shapes, parameters, MACs, FLOPs, receptive field,\n"
    "jump (effective stride) and algorithm for an input shape, without\n"
    "computing; for depthwise and separable layers also the cost of the\n"
    "standard convolution they replace and both cost ratios.\n"
    "  --input-shape S  N,C,H,W (default: the shape declared in model.json)\n"
    "  --json           print the statistics as JSON\n";

static int print_json(json_t *doc)
{
    if (!doc) return cli_fail("run", EXIT_ERROR, "out of memory formatting statistics");
    char *text = json_dumps(doc, JSON_INDENT(2));
    json_decref(doc);
    if (!text) return cli_fail("run", EXIT_ERROR, "out of memory formatting statistics");
    puts(text);
    free(text);
    return EXIT_OK;
}

int cli_run(int argc, char **argv)
{
    const char *model_path = NULL, *input_path = NULL, *output_path = NULL;
    bool want_stats = false, autotune = false;
    long threads = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(run_usage, stdout);
            return EXIT_OK;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (++i == argc) return cli_fail("run", EXIT_USAGE, "%s needs a path", a);
            output_path = argv[i];
        } else if (!strcmp(a, "--stats")) {
            want_stats = true;
        } else if (!strcmp(a, "--autotune")) {
            autotune = true;
        } else if (!strcmp(a, "--threads")) {
            if (++i == argc || !cli_parse_int(argv[i], 1, 1024, &threads))
                return cli_fail("run", EXIT_USAGE, "--threads needs an integer in 1..1024");
        } else if (a[0] == '-' && a[1]) {
            return cli_fail("run", EXIT_USAGE, "unknown option %s (see convd run --help)", a);
        } else if (!model_path) {
            model_path = a;
        } else if (!input_path) {
            input_path = a;
        } else {
            return cli_fail("run", EXIT_USAGE, "unexpected argument \"%s\"", a);
        }
    }
    if (!model_path || !input_path || !output_path)
        return cli_fail("run", EXIT_USAGE, "needs MODEL_DIR, INPUT.npy and -o OUTPUT.npy (see convd run --help)");

    conv_error err;
    model_dir md;
    conv_model_options opts;
    conv_model_options_init(&opts);
    opts.autotune = autotune;
    if (model_dir_load(model_path, &opts, &md, &err)) return cli_fail("run", EXIT_ERROR, "%s: %s", model_path, err.message);

    int status = EXIT_ERROR;
    conv_tensor input = {0}, output = {0};
    conv_threadpool *pool = NULL;
    conv_model_stats stats = {0};
    if (npy_read_file(input_path, &input, &err)) {
        cli_fail("run", EXIT_ERROR, "%s: %s", input_path, err.message);
        goto done;
    }
    if (conv_threadpool_create((int)threads, &pool, &err)) {
        cli_fail("run", EXIT_ERROR, "%s", err.message);
        goto done;
    }
    stats.layers = calloc(conv_model_layer_count(md.model), sizeof *stats.layers);
    if (!stats.layers) {
        cli_fail("run", EXIT_ERROR, "out of memory");
        goto done;
    }
    if (conv_model_run_alloc(md.model, &input, &output, pool, &stats, &err)) {
        cli_fail("run", EXIT_ERROR, "%s: %s", input_path, err.message);
        goto done;
    }
    if (npy_write_file(output_path, &output, &err)) {
        cli_fail("run", EXIT_ERROR, "%s: %s", output_path, err.message);
        goto done;
    }
    status = want_stats ? print_json(stats_to_json(&stats)) : EXIT_OK;
done:
    free(stats.layers);
    conv_threadpool_destroy(pool);
    conv_tensor_free(&input);
    conv_tensor_free(&output);
    model_dir_free(&md);
    return status;
}

static void format_count(int64_t v, char *buf, size_t len)
{
    if (v >= 10000000000LL) snprintf(buf, len, "%.2fG", (double)v / 1e9);
    else if (v >= 10000000LL) snprintf(buf, len, "%.2fM", (double)v / 1e6);
    else if (v >= 100000LL) snprintf(buf, len, "%.1fK", (double)v / 1e3);
    else snprintf(buf, len, "%lld", (long long)v);
}

static void print_table(const char *name, const conv_model *model, const conv_model_stats *st)
{
    char shape[96], a[32], b[32], c[32], rf[32], jump[32];
    conv_shape_format(st->input_shape, 4, shape, sizeof shape);
    printf("model %s, input %s\n\n", name, shape);
    printf("%3s  %-16s %-20s %9s %9s %9s %9s %7s  %s\n", "#", "layer", "output", "params", "MACs", "FLOPs",
           "RF", "jump", "algorithm");
    for (size_t i = 0; i < st->n_layers; i++) {
        const conv_layer_stats *ls = &st->layers[i];
        conv_shape_format(ls->output_shape, 4, shape, sizeof shape);
        format_count(ls->params, a, sizeof a);
        format_count(ls->macs, b, sizeof b);
        format_count(ls->flops, c, sizeof c);
        snprintf(rf, sizeof rf, "%lldx%lld", (long long)ls->receptive_field[0], (long long)ls->receptive_field[1]);
        snprintf(jump, sizeof jump, "%lldx%lld", (long long)ls->jump[0], (long long)ls->jump[1]);
        printf("%3zu  %-16s %-20s %9s %9s %9s %9s %7s  %s\n", i, conv_layer_type_name(ls->type), shape, a, b, c, rf,
               jump, ls->execution);
    }
    format_count(st->params, a, sizeof a);
    format_count(st->macs, b, sizeof b);
    format_count(st->flops, c, sizeof c);
    conv_shape_format(st->output_shape, 4, shape, sizeof shape);
    printf("\ntotal: output %s, params %s (%lld), MACs %s (%lld), FLOPs %s (%lld), receptive field %lldx%lld, jump "
           "%lldx%lld\n",
           shape, a, (long long)st->params, b, (long long)st->macs, c, (long long)st->flops,
           (long long)st->receptive_field[0], (long long)st->receptive_field[1], (long long)st->jump[0],
           (long long)st->jump[1]);

    bool header = false;
    for (size_t i = 0; i < st->n_layers; i++) {
        const conv_layer_stats *ls = &st->layers[i];
        if (!ls->has_standard_equivalent) continue;
        if (!header) {
            printf("\ndepthwise / separable layers against the standard Conv2d with the same in/out channels and "
                   "kernel:\n");
            printf("%3s  %-16s %12s %14s %16s %12s %14s\n", "#", "layer", "FLOPs", "standard FLOPs",
                   "1/n + 1/k^2", "FLOP ratio", "speedup bound");
            header = true;
        }
        printf("%3zu  %-16s %12lld %14lld %16.4f %12.4f %13.2fx\n", i, conv_layer_type_name(ls->type),
               (long long)ls->flops, (long long)ls->standard_flops, ls->textbook_ratio, ls->flop_ratio,
               ls->flop_ratio > 0 ? 1.0 / ls->flop_ratio : 0.0);
    }
    (void)model;
}

int cli_analyze(int argc, char **argv)
{
    const char *model_path = NULL;
    bool json = false, have_shape = false;
    int64_t shape[4];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(analyze_usage, stdout);
            return EXIT_OK;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if (!strcmp(a, "--input-shape")) {
            if (++i == argc || !cli_parse_shape(argv[i], shape))
                return cli_fail("analyze", EXIT_USAGE, "--input-shape needs N,C,H,W with positive integers");
            have_shape = true;
        } else if (a[0] == '-' && a[1]) {
            return cli_fail("analyze", EXIT_USAGE, "unknown option %s (see convd analyze --help)", a);
        } else if (!model_path) {
            model_path = a;
        } else {
            return cli_fail("analyze", EXIT_USAGE, "unexpected argument \"%s\"", a);
        }
    }
    if (!model_path) return cli_fail("analyze", EXIT_USAGE, "needs MODEL_DIR (see convd analyze --help)");

    conv_error err;
    model_dir md;
    conv_model_options opts;
    conv_model_options_init(&opts);
    opts.structure_only = true; /* statistics need no weights */
    if (model_dir_load(model_path, &opts, &md, &err))
        return cli_fail("analyze", EXIT_ERROR, "%s: %s", model_path, err.message);
    int status = EXIT_ERROR;
    if (!have_shape) {
        if (!md.spec.has_input_shape) {
            status = cli_fail("analyze", EXIT_USAGE, "%s declares no input shape: pass --input-shape N,C,H,W",
                              model_path);
            goto done;
        }
        memcpy(shape, md.spec.input_shape, sizeof shape);
    }
    conv_plan *plan;
    if (conv_plan_create(md.model, shape, &plan, &err)) {
        status = cli_fail("analyze", EXIT_ERROR, "%s", err.message);
        goto done;
    }
    if (json) {
        json_t *doc = stats_to_json(conv_plan_stats(plan));
        if (doc && md.spec.name[0]) json_object_set_new(doc, "model", json_string(md.spec.name));
        status = print_json(doc);
    } else {
        print_table(md.spec.name, md.model, conv_plan_stats(plan));
        status = EXIT_OK;
    }
    conv_plan_destroy(plan);
done:
    model_dir_free(&md);
    return status;
}
