/* load_report.h — the folder `convd load --compare separable` writes: report.md
 * (a table per shape), report.json (every number) and three hand-drawn SVG
 * plots (throughput, p99 latency, realised vs theoretical speedup). */
#ifndef CONVD_SERVER_LOAD_REPORT_H
#define CONVD_SERVER_LOAD_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "core/conv.h"

/* One closed-loop run at one concurrency level. Server times are read from
 * the replies' "stats"; NaN where no reply carried them. */
typedef struct load_point {
    long concurrency;
    uint64_t requests; /* completed, ok + errors */
    uint64_t errors;   /* non-2xx replies and transport errors */
    double elapsed_s;
    double throughput_rps;
    double latency_p50_ms, latency_p99_ms, latency_mean_ms;
    uint64_t replies_with_stats;
    double compute_p50_ms, compute_p99_ms, compute_mean_ms;
    double queue_p50_ms, queue_p99_ms, queue_mean_ms;
} load_point;

/* A standard Conv2d(in, out, k, padding=k//2) against the equivalent
 * SeparableConv2d on one input shape, both at every concurrency level. */
typedef struct load_shape_result {
    char name[64];
    int64_t input_shape[4]; /* N, C, H, W */
    int64_t out_channels;
    int64_t kernel_size;
    load_point *standard;  /* n_levels points each, owned by the caller */
    load_point *separable;
    /* server compute medians over the replies of all levels together */
    double compute_p50_standard_ms, compute_p50_separable_ms;
} load_shape_result;

typedef struct load_comparison {
    const char *url;
    double duration_s; /* per point */
    const long *levels;
    size_t n_levels;
    const load_shape_result *shapes;
    size_t n_shapes;
} load_comparison;

/* standard FLOPs / separable FLOPs = k²·C·n / (k²·C + C·n) = 1 / (1/n + 1/k²),
 * the most a separable layer can gain (bias and padding aside) */
double load_flop_ratio_bound(int64_t out_channels, int64_t kernel_size);
/* standard / separable server compute median (NaN if either is missing) */
double load_compute_speedup(const load_shape_result *s);
/* best throughput of the separable layer over all levels / the standard's best */
double load_throughput_speedup(const load_shape_result *s, size_t n_levels);

/* Each returns a malloc'ed NUL-terminated document, or NULL when out of memory. */
char *load_report_markdown(const load_comparison *c);
char *load_report_json(const load_comparison *c);
char *load_svg_throughput(const load_comparison *c);
char *load_svg_latency_p99(const load_comparison *c);
char *load_svg_speedup(const load_comparison *c);

/* Creates dir if needed and writes report.md, report.json, throughput.svg,
 * latency_p99.svg and speedup.svg into it. */
conv_status load_report_write(const load_comparison *c, const char *dir, conv_error *err);

#endif
