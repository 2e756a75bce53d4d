/* main.c — entry point of build/convd: dispatches to the subcommands. */
#include <cblas.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

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

/* OpenBLAS 0.3.21 (Debian 12) takes CPUs newer than it knows for a
 * "Prescott" and runs its SSE3 kernels: on an Emerald Rapids Xeon (family 6,
 * model 207) its sgemm ran a 256 -> 256 1x1 layer on 28x28 at 31 GFLOP/s,
 * 108 with its SkylakeX kernels. It reads OPENBLAS_CORETYPE only as it
 * loads, so where it chose a core without AVX2 on a CPU that has AVX2 and
 * FMA, convd sets the core from the CPU's features and runs itself again,
 * once (the variable, now set, stops a second round; a user's own setting
 * is left alone). If the exec fails, it goes on with the slow core. */
static void openblas_use_cpu_core(char **argv)
{
    if (getenv("OPENBLAS_CORETYPE")) return;
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return;
    bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                  __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    static const char *const capable[] = {"Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids"};
    const char *core = openblas_get_corename();
    for (size_t i = 0; core && i < sizeof capable / sizeof *capable; i++)
        if (!strcasecmp(core, capable[i])) return;
    if (setenv("OPENBLAS_CORETYPE", avx512 ? "SkylakeX" : "Haswell", 1) != 0) return;
    execv("/proc/self/exe", argv);
}

int main(int argc, char **argv)
{
    openblas_use_cpu_core(argv);
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
