/* main.c — entry point of build/convd: dispatches to the subcommands. */
#include <cblas.h>
#include <stdio.h>
#include <string.h>

#include "core/conv.h"
#include "server/cli.h"

static const char usage[] =
    "usage: convd <command> [options]\n"
    "\n"
    "commands:\n"
    "  run MODEL_DIR INPUT.npy -o OUTPUT.npy [--stats] [--threads T]\n"
    "                 run a model folder on an input tensor\n"
    "  analyze MODEL_DIR [--input-shape N,C,H,W] [--json]\n"
    "                 per-layer shapes, parameters, MACs/FLOPs and receptive fields,\n"
    "                 without computing\n"
    "  bench (--layer JSON | MODEL_DIR) --input-shape N,C,H,W [--threads T] [--json]\n"
    "                 time a layer (random weights) or a model: median/min ms, GFLOP/s, algorithm\n"
    "  serve [--port P] [--models DIR] [--workers N] ...   HTTP inference daemon (see convd serve --help)\n"
    "  healthcheck [--url URL]\n"
    "                 exit 0 when a local server's /healthz answers 200\n"
    "  load --url URL [--concurrency C | --rate R] [--duration S] [--compare separable] ...\n"
    "                 HTTP load generator: throughput, latency percentiles, server times\n"
    "\n"
    "  convd --version, convd --help, convd <command> --help\n";

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs("convd: missing command (try convd --help)\n", stderr);
        return EXIT_USAGE;
    }
    /* Parallelism is ours (core thread pools, server workers): OpenBLAS
     * running threads of its own inside them would oversubscribe the cores. */
    openblas_set_num_threads(1);
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        fputs(usage, stdout);
        return EXIT_OK;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("convd %s\n", CONVD_VERSION);
        return EXIT_OK;
    }
    if (!strcmp(cmd, "run")) return cli_run(argc - 1, argv + 1);
    if (!strcmp(cmd, "analyze")) return cli_analyze(argc - 1, argv + 1);
    if (!strcmp(cmd, "bench")) return cli_bench(argc - 1, argv + 1);
    if (!strcmp(cmd, "serve")) return cli_serve(argc - 1, argv + 1);
    if (!strcmp(cmd, "healthcheck")) return cli_healthcheck(argc - 1, argv + 1);
    if (!strcmp(cmd, "load")) return cli_load(argc - 1, argv + 1);
    fprintf(stderr, "convd: unknown command \"%s\" (try convd --help)\n", cmd);
    return EXIT_USAGE;
}
