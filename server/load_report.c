/* load_report.c — report.md, report.json and the SVG plots of
 * `convd load --compare separable`. The SVG is written by hand (no plotting
 * library): a log2 concurrency axis, a linear or, when the series span more
 * than a factor LOG_Y_SPAN, a log10 value axis, one polyline with markers per
 * series, and a legend to the right of the plot. */
#include "server/load_report.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "proto/fileio.h"

/* ------------------------------------------------------------ helpers */

double load_flop_ratio_bound(int64_t out_channels, int64_t kernel_size)
{
    if (out_channels <= 0 || kernel_size <= 0) return NAN;
    double n = (double)out_channels, k2 = (double)kernel_size * (double)kernel_size;
    return 1.0 / (1.0 / n + 1.0 / k2);
}

double load_compute_speedup(const load_shape_result *s)
{
    if (!(s->compute_p50_standard_ms > 0) || !(s->compute_p50_separable_ms > 0)) return NAN;
    return s->compute_p50_standard_ms / s->compute_p50_separable_ms;
}

static double best_throughput(const load_point *p, size_t n)
{
    double best = 0;
    for (size_t i = 0; i < n; i++)
        if (p[i].throughput_rps > best) best = p[i].throughput_rps;
    return best;
}

double load_throughput_speedup(const load_shape_result *s, size_t n_levels)
{
    double std = best_throughput(s->standard, n_levels);
    double sep = best_throughput(s->separable, n_levels);
    return std > 0 && sep > 0 ? sep / std : NAN;
}

/* A growing string; after a failed allocation every append is a no-op and
 * text_finish returns NULL, so callers check once at the end. */
typedef struct text {
    char *data;
    size_t len, cap;
    bool failed;
} text;

__attribute__((format(printf, 2, 3))) static void put(text *t, const char *fmt, ...)
{
    if (t->failed) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = t->cap - t->len;
        int n = vsnprintf(t->data ? t->data + t->len : NULL, t->data ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = true;
            return;
        }
        if (t->data && (size_t)n < room) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap ? t->cap : 4096;
        while (cap - t->len <= (size_t)n) cap *= 2;
        char *grown = realloc(t->data, cap);
        if (!grown) {
            t->failed = true;
            return;
        }
        t->data = grown;
        t->cap = cap;
    }
}

static char *text_finish(text *t)
{
    if (t->failed || !t->data) {
        free(t->data);
        return NULL;
    }
    return t->data;
}

/* "12.3" or "-" for a missing number, into buf */
static const char *fmt_num(char *buf, size_t len, double v, int decimals)
{
    if (!isfinite(v)) snprintf(buf, len, "-");
    else snprintf(buf, len, "%.*f", decimals, v);
    return buf;
}

/* decimals that show about three significant digits */
static int decimals_for(double v)
{
    double a = fabs(v);
    return a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3;
}

static const char *fmt_auto(char *buf, size_t len, double v)
{
    return fmt_num(buf, len, v, isfinite(v) ? decimals_for(v) : 0);
}

/* ------------------------------------------------------------ report.md */

char *load_report_markdown(const load_comparison *c)
{
    text t = {0};
    char b[16][32];
    time_t now = time(NULL);
    struct tm tm;
    char when[64] = "";
    if (gmtime_r(&now, &tm)) strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", &tm);

    put(&t, "# Separable vs standard convolution under load\n\n");
    put(&t, "Server `%s`, %s. Each point is a closed-loop run of %.3g s at the given number of "
            "keep-alive connections (`convd load --compare separable`). Latencies are measured by "
            "the client; *compute* is the server's own `compute_ms` median from the replies' "
            "`stats` (queueing excluded).\n\n",
      c->url, when, c->duration_s);
    put(&t, "The FLOP ratio bound is 1 / (1/n + 1/k²) (n = output channels, k = kernel size): the "
            "most a depthwise 3×3 + pointwise 1×1 pair can gain over the standard layer. "
            "*Realised* speedups are the ratio of the server compute medians (all levels pooled) "
            "and the ratio of the best throughputs.\n\n");
    put(&t, "![throughput](throughput.svg)\n![p99 latency](latency_p99.svg)\n![speedup](speedup.svg)\n\n");

    put(&t, "## Summary\n\n| shape | input | out | k | FLOP ratio bound | compute speedup | "
            "throughput speedup | compute p50 ms std / sep |\n|---|---|---|---|---|---|---|---|\n");
    for (size_t s = 0; s < c->n_shapes; s++) {
        const load_shape_result *r = &c->shapes[s];
        const int64_t *d = r->input_shape;
        put(&t, "| %s | %lldx%lldx%lldx%lld | %lld | %lld | %s | %s | %s | %s / %s |\n", r->name,
            (long long)d[0], (long long)d[1], (long long)d[2], (long long)d[3],
            (long long)r->out_channels, (long long)r->kernel_size,
            fmt_num(b[0], 32, load_flop_ratio_bound(r->out_channels, r->kernel_size), 2),
            fmt_num(b[1], 32, load_compute_speedup(r), 2),
            fmt_num(b[2], 32, load_throughput_speedup(r, c->n_levels), 2),
            fmt_auto(b[3], 32, r->compute_p50_standard_ms), fmt_auto(b[4], 32, r->compute_p50_separable_ms));
    }

    for (size_t s = 0; s < c->n_shapes; s++) {
        const load_shape_result *r = &c->shapes[s];
        const int64_t *d = r->input_shape;
        put(&t, "\n## %s: %lldx%lldx%lldx%lld, %lld→%lld channels, %lldx%lld kernel, padding %lld\n\n",
            r->name, (long long)d[0], (long long)d[1], (long long)d[2], (long long)d[3],
            (long long)d[1], (long long)r->out_channels, (long long)r->kernel_size,
            (long long)r->kernel_size, (long long)(r->kernel_size / 2));
        put(&t, "FLOP ratio bound %s; realised: compute %s, throughput %s.\n\n",
            fmt_num(b[0], 32, load_flop_ratio_bound(r->out_channels, r->kernel_size), 2),
            fmt_num(b[1], 32, load_compute_speedup(r), 2),
            fmt_num(b[2], 32, load_throughput_speedup(r, c->n_levels), 2));
        put(&t, "| concurrency | req/s std | req/s sep | p50 ms std | p50 ms sep | p99 ms std | "
                "p99 ms sep | compute ms std | compute ms sep | speedup compute | speedup req/s | "
                "errors std / sep |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        for (size_t i = 0; i < c->n_levels; i++) {
            const load_point *p = &r->standard[i], *q = &r->separable[i];
            double sc = p->compute_p50_ms / q->compute_p50_ms;
            double st = q->throughput_rps > 0 && p->throughput_rps > 0
                            ? q->throughput_rps / p->throughput_rps
                            : NAN;
            put(&t, "| %ld | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %llu / %llu |\n",
                p->concurrency, fmt_auto(b[0], 32, p->throughput_rps),
                fmt_auto(b[1], 32, q->throughput_rps), fmt_auto(b[2], 32, p->latency_p50_ms),
                fmt_auto(b[3], 32, q->latency_p50_ms), fmt_auto(b[4], 32, p->latency_p99_ms),
                fmt_auto(b[5], 32, q->latency_p99_ms), fmt_auto(b[6], 32, p->compute_p50_ms),
                fmt_auto(b[7], 32, q->compute_p50_ms), fmt_num(b[8], 32, sc, 2),
                fmt_num(b[9], 32, st, 2), (unsigned long long)p->errors,
                (unsigned long long)q->errors);
        }
    }
    return text_finish(&t);
}

/* ------------------------------------------------------------ report.json */

static json_t *number_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *point_json(const load_point *p)
{
    return json_pack("{s:I, s:I, s:I, s:o, s:o, s:{s:o, s:o, s:o}, s:I, s:{s:o, s:o, s:o}, "
                     "s:{s:o, s:o, s:o}}",
                     "concurrency", (json_int_t)p->concurrency, "requests", (json_int_t)p->requests,
                     "errors", (json_int_t)p->errors, "elapsed_s", number_or_null(p->elapsed_s),
                     "throughput_rps", number_or_null(p->throughput_rps), "latency_ms", "p50",
                     number_or_null(p->latency_p50_ms), "p99", number_or_null(p->latency_p99_ms),
                     "mean", number_or_null(p->latency_mean_ms), "replies_with_stats",
                     (json_int_t)p->replies_with_stats, "compute_ms", "p50",
                     number_or_null(p->compute_p50_ms), "p99", number_or_null(p->compute_p99_ms),
                     "mean", number_or_null(p->compute_mean_ms), "queue_ms", "p50",
                     number_or_null(p->queue_p50_ms), "p99", number_or_null(p->queue_p99_ms),
                     "mean", number_or_null(p->queue_mean_ms));
}

char *load_report_json(const load_comparison *c)
{
    json_t *levels = json_array(), *shapes = json_array();
    for (size_t i = 0; i < c->n_levels; i++) json_array_append_new(levels, json_integer(c->levels[i]));
    for (size_t s = 0; s < c->n_shapes; s++) {
        const load_shape_result *r = &c->shapes[s];
        json_t *std = json_array(), *sep = json_array();
        for (size_t i = 0; i < c->n_levels; i++) {
            json_array_append_new(std, point_json(&r->standard[i]));
            json_array_append_new(sep, point_json(&r->separable[i]));
        }
        json_array_append_new(
            shapes,
            json_pack("{s:s, s:[I,I,I,I], s:I, s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "name",
                      r->name, "input_shape", (json_int_t)r->input_shape[0],
                      (json_int_t)r->input_shape[1], (json_int_t)r->input_shape[2],
                      (json_int_t)r->input_shape[3], "out_channels", (json_int_t)r->out_channels,
                      "kernel_size", (json_int_t)r->kernel_size, "padding",
                      (json_int_t)(r->kernel_size / 2), "flop_ratio_bound",
                      number_or_null(load_flop_ratio_bound(r->out_channels, r->kernel_size)),
                      "compute_p50_standard_ms", number_or_null(r->compute_p50_standard_ms),
                      "compute_p50_separable_ms", number_or_null(r->compute_p50_separable_ms),
                      "speedup_compute", number_or_null(load_compute_speedup(r)),
                      "speedup_throughput", number_or_null(load_throughput_speedup(r, c->n_levels)),
                      "standard", std, "separable", sep));
    }
    json_t *root = json_pack("{s:s, s:s, s:o, s:o, s:o}", "tool", "convd load --compare separable",
                             "url", c->url, "duration_s", json_real(c->duration_s), "concurrency",
                             levels, "shapes", shapes);
    char *out = root ? json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(root);
    return out;
}

/* ------------------------------------------------------------ SVG */

enum { SVG_W = 1000, SVG_H = 540, PLOT_L = 90, PLOT_R = 700, PLOT_T = 60, PLOT_B = 470 };
static const double LOG_Y_SPAN = 30.0;

/* per shape: a dark colour for the standard layer, a lighter one of the same
 * hue for the separable one, so pairs read together yet stay distinct */
static const char *const shape_colors[][2] = {
    {"#1f4e99", "#5fa2dd"}, {"#b2182b", "#ef8a62"}, {"#1b7837", "#7fbf7b"},
    {"#6a3d9a", "#b294c7"}, {"#8c510a", "#dfc27d"}, {"#01665e", "#80cdc1"},
};
#define N_SHAPE_COLORS (sizeof shape_colors / sizeof shape_colors[0])

typedef struct series {
    char name[96];
    const char *color;
    bool dashed, square;
    double x[64], y[64];
    size_t n;
} series;

static void xml_escaped(text *t, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': put(t, "&lt;"); break;
        case '>': put(t, "&gt;"); break;
        case '&': put(t, "&amp;"); break;
        case '"': put(t, "&quot;"); break;
        default: put(t, "%c", *s);
        }
    }
}

static void svg_open(text *t, const char *title)
{
    put(t, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
           "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
           "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"13\">\n",
      SVG_W, SVG_H, SVG_W, SVG_H);
    put(t, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    put(t, "<text x=\"%d\" y=\"32\" font-size=\"18\" font-weight=\"bold\" text-anchor=\"middle\">",
        (PLOT_L + PLOT_R) / 2);
    xml_escaped(t, title);
    put(t, "</text>\n");
}

static void axis_labels(text *t, const char *xlabel, const char *ylabel)
{
    put(t, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", PLOT_L, PLOT_B, PLOT_R,
        PLOT_B);
    put(t, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", PLOT_L, PLOT_T, PLOT_L,
        PLOT_B);
    put(t, "<text x=\"%d\" y=\"%d\" font-size=\"14\" text-anchor=\"middle\">", (PLOT_L + PLOT_R) / 2,
        PLOT_B + 48);
    xml_escaped(t, xlabel);
    put(t, "</text>\n<text x=\"24\" y=\"%d\" font-size=\"14\" text-anchor=\"middle\" "
           "transform=\"rotate(-90 24 %d)\">",
        (PLOT_T + PLOT_B) / 2, (PLOT_T + PLOT_B) / 2);
    xml_escaped(t, ylabel);
    put(t, "</text>\n");
}

/* a "nice" step (1, 2 or 5 times a power of ten) giving about `want` ticks */
static double nice_step(double range, int want)
{
    double raw = range / want, mag = pow(10, floor(log10(raw))), f = raw / mag;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

static void fmt_tick(char *buf, size_t len, double v)
{
    if (v != 0 && (fabs(v) >= 1e5 || fabs(v) < 1e-3)) snprintf(buf, len, "%.0e", v);
    else snprintf(buf, len, "%g", v);
}

typedef struct y_axis {
    bool log;
    double lo, hi; /* linear: the range; log: log10 of it */
} y_axis;

static double y_pixel(const y_axis *a, double v)
{
    double u = a->log ? (log10(v) - a->lo) / (a->hi - a->lo) : (v - a->lo) / (a->hi - a->lo);
    return PLOT_B - u * (PLOT_B - PLOT_T);
}

/* chooses the value axis for the positive values of all series and draws its ticks */
static y_axis draw_y_axis(text *t, const series *s, size_t ns)
{
    double lo = INFINITY, hi = 0;
    for (size_t i = 0; i < ns; i++)
        for (size_t j = 0; j < s[i].n; j++)
            if (s[i].y[j] > 0 && isfinite(s[i].y[j])) {
                if (s[i].y[j] < lo) lo = s[i].y[j];
                if (s[i].y[j] > hi) hi = s[i].y[j];
            }
    if (!(hi > 0)) lo = hi = 1;
    y_axis a;
    char label[32];
    if (hi / lo > LOG_Y_SPAN) {
        a.log = true;
        a.lo = floor(log10(lo));
        a.hi = ceil(log10(hi));
        for (int d = (int)a.lo; d <= (int)a.hi; d++) {
            for (int m = 1; m <= 5; m += (m == 1 ? 1 : 3)) { /* 1, 2, 5 */
                double v = m * pow(10, d);
                if (log10(v) > a.hi + 1e-9) break;
                double y = y_pixel(&a, v);
                put(t, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"%s\"/>\n", PLOT_L, y,
                    PLOT_R, y, m == 1 ? "#d0d0d0" : "#eeeeee");
                put(t, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"black\"/>\n", PLOT_L - 5,
                    y, PLOT_L, y);
                fmt_tick(label, sizeof label, v);
                put(t, "<text x=\"%d\" y=\"%.1f\" font-size=\"12\" text-anchor=\"end\">%s</text>\n",
                    PLOT_L - 8, y + 4, label);
            }
        }
    } else {
        a.log = false;
        a.lo = 0;
        double step = nice_step(hi, 5);
        a.hi = ceil(hi * 1.05 / step) * step;
        for (double v = 0; v <= a.hi + step * 1e-9; v += step) {
            double y = y_pixel(&a, v);
            put(t, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#e0e0e0\"/>\n", PLOT_L, y,
                PLOT_R, y);
            put(t, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"black\"/>\n", PLOT_L - 5, y,
                PLOT_L, y);
            fmt_tick(label, sizeof label, v);
            put(t, "<text x=\"%d\" y=\"%.1f\" font-size=\"12\" text-anchor=\"end\">%s</text>\n",
                PLOT_L - 8, y + 4, label);
        }
    }
    return a;
}

static void legend_entry(text *t, size_t index, const char *name, const char *color, bool dashed,
                         bool square, bool bar)
{
    int x = PLOT_R + 20, y = PLOT_T + 10 + (int)index * 24;
    if (bar) {
        put(t, "<rect x=\"%d\" y=\"%d\" width=\"24\" height=\"12\" fill=\"%s\"/>\n", x, y - 6, color);
    } else {
        put(t, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2.5\"%s/>\n", x,
            y, x + 28, y, color, dashed ? " stroke-dasharray=\"7 4\"" : "");
        if (square)
            put(t, "<rect x=\"%d\" y=\"%d\" width=\"8\" height=\"8\" fill=\"%s\"/>\n", x + 10, y - 4, color);
        else
            put(t, "<circle cx=\"%d\" cy=\"%d\" r=\"4.5\" fill=\"%s\"/>\n", x + 14, y, color);
    }
    put(t, "<text x=\"%d\" y=\"%d\" font-size=\"13\">", x + 36, y + 5);
    xml_escaped(t, name);
    put(t, "</text>\n");
}

/* x: concurrency on a log2 axis; y: see draw_y_axis */
static char *line_chart(const char *title, const char *ylabel, const series *s, size_t ns)
{
    text t = {0};
    svg_open(&t, title);
    double xlo = INFINITY, xhi = 0;
    for (size_t i = 0; i < ns; i++)
        for (size_t j = 0; j < s[i].n; j++) {
            if (s[i].x[j] < xlo) xlo = s[i].x[j];
            if (s[i].x[j] > xhi) xhi = s[i].x[j];
        }
    if (!(xhi >= xlo) || xlo <= 0) xlo = xhi = 1;
    double l2lo = floor(log2(xlo)), l2hi = ceil(log2(xhi));
    if (l2hi <= l2lo) l2hi = l2lo + 1;
    const double pad = 0.04 * (PLOT_R - PLOT_L);
#define X_PIXEL(v) (PLOT_L + pad + (log2(v) - l2lo) / (l2hi - l2lo) * (PLOT_R - PLOT_L - 2 * pad))
    y_axis ya = draw_y_axis(&t, s, ns);
    for (double e = l2lo; e <= l2hi + 1e-9; e++) {
        double v = pow(2, e), x = X_PIXEL(v);
        put(&t, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#eeeeee\"/>\n", x, PLOT_T, x,
            PLOT_B);
        put(&t, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"black\"/>\n", x, PLOT_B, x,
            PLOT_B + 5);
        put(&t, "<text x=\"%.1f\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\">%g</text>\n", x,
            PLOT_B + 20, v);
    }
    axis_labels(&t, "concurrency (connections, log2 scale)", ylabel);
    for (size_t i = 0; i < ns; i++) {
        put(&t, "<g class=\"series\" data-name=\"");
        xml_escaped(&t, s[i].name);
        put(&t, "\">\n<title>");
        xml_escaped(&t, s[i].name);
        put(&t, "</title>\n<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2.5\"%s points=\"",
            s[i].color, s[i].dashed ? " stroke-dasharray=\"7 4\"" : "");
        for (size_t j = 0; j < s[i].n; j++)
            if (s[i].y[j] > 0 && isfinite(s[i].y[j]))
                put(&t, "%.1f,%.1f ", X_PIXEL(s[i].x[j]), y_pixel(&ya, s[i].y[j]));
        put(&t, "\"/>\n");
        for (size_t j = 0; j < s[i].n; j++) {
            if (!(s[i].y[j] > 0 && isfinite(s[i].y[j]))) continue;
            double x = X_PIXEL(s[i].x[j]), y = y_pixel(&ya, s[i].y[j]);
            if (s[i].square)
                put(&t, "<rect x=\"%.1f\" y=\"%.1f\" width=\"8\" height=\"8\" fill=\"%s\"/>\n", x - 4,
                    y - 4, s[i].color);
            else
                put(&t, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4.5\" fill=\"%s\"/>\n", x, y, s[i].color);
        }
        put(&t, "</g>\n");
        legend_entry(&t, i, s[i].name, s[i].color, s[i].dashed, s[i].square, false);
    }
#undef X_PIXEL
    if (ya.log)
        put(&t, "<text x=\"%d\" y=\"%d\" font-size=\"12\" fill=\"#555555\">value axis: log10 scale</text>\n",
            PLOT_R + 20, PLOT_B);
    put(&t, "</svg>\n");
    return text_finish(&t);
}

typedef double (*point_metric)(const load_point *p);
static double metric_throughput(const load_point *p) { return p->throughput_rps; }
static double metric_p99(const load_point *p) { return p->latency_p99_ms; }

static char *series_chart(const load_comparison *c, const char *title, const char *ylabel,
                          point_metric metric)
{
    size_t ns = 2 * c->n_shapes;
    series *s = calloc(ns ? ns : 1, sizeof *s);
    if (!s) return NULL;
    size_t n_levels = c->n_levels < 64 ? c->n_levels : 64;
    for (size_t i = 0; i < c->n_shapes; i++) {
        for (int v = 0; v < 2; v++) {
            series *out = &s[2 * i + (size_t)v];
            snprintf(out->name, sizeof out->name, "%s %s", c->shapes[i].name, v ? "separable" : "standard");
            out->color = shape_colors[i % N_SHAPE_COLORS][v];
            out->dashed = out->square = v == 1;
            const load_point *p = v ? c->shapes[i].separable : c->shapes[i].standard;
            for (size_t j = 0; j < n_levels; j++) {
                out->x[j] = (double)p[j].concurrency;
                out->y[j] = metric(&p[j]);
            }
            out->n = n_levels;
        }
    }
    char *svg = line_chart(title, ylabel, s, ns);
    free(s);
    return svg;
}

char *load_svg_throughput(const load_comparison *c)
{
    return series_chart(c, "Throughput: standard vs separable convolution", "requests / s",
                        metric_throughput);
}

char *load_svg_latency_p99(const load_comparison *c)
{
    return series_chart(c, "p99 latency: standard vs separable convolution", "p99 latency (ms)",
                        metric_p99);
}

char *load_svg_speedup(const load_comparison *c)
{
    static const char *const bar_names[3] = {"theoretical: FLOP ratio bound", "realised: compute median",
                                             "realised: best throughput"};
    static const char *const bar_colors[3] = {"#7f7f7f", "#1f78b4", "#e6550d"};
    text t = {0};
    svg_open(&t, "Speedup of SeparableConv2d over Conv2d: realised vs theoretical");
    series dummy;
    memset(&dummy, 0, sizeof dummy);
    double hi = 1;
    for (size_t i = 0; i < c->n_shapes; i++) {
        double v[3] = {load_flop_ratio_bound(c->shapes[i].out_channels, c->shapes[i].kernel_size),
                       load_compute_speedup(&c->shapes[i]), load_throughput_speedup(&c->shapes[i], c->n_levels)};
        for (int k = 0; k < 3; k++)
            if (isfinite(v[k]) && v[k] > hi) hi = v[k];
    }
    dummy.y[0] = hi;
    dummy.y[1] = hi / 2; /* keeps the axis linear and starting at 0 */
    dummy.n = 2;
    y_axis ya = draw_y_axis(&t, &dummy, 1);
    axis_labels(&t, "shape", "speedup (standard / separable)");
    double y1 = y_pixel(&ya, 1.0);
    put(&t, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"black\" stroke-dasharray=\"4 3\"/>\n",
        PLOT_L, y1, PLOT_R, y1);
    size_t ng = c->n_shapes ? c->n_shapes : 1;
    double group_w = (double)(PLOT_R - PLOT_L) / (double)ng, bar_w = group_w * 0.8 / 3;
    for (size_t i = 0; i < c->n_shapes; i++) {
        const load_shape_result *r = &c->shapes[i];
        double v[3] = {load_flop_ratio_bound(r->out_channels, r->kernel_size), load_compute_speedup(r),
                       load_throughput_speedup(r, c->n_levels)};
        double gx = PLOT_L + group_w * (double)i + group_w * 0.1;
        for (int k = 0; k < 3; k++) {
            double x = gx + bar_w * k;
            put(&t, "<g class=\"series\" data-name=\"%s\">\n", bar_names[k]);
            if (isfinite(v[k]) && v[k] > 0) {
                double y = y_pixel(&ya, v[k]);
                put(&t, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"><title>",
                    x, y, bar_w - 2, PLOT_B - y, bar_colors[k]);
                xml_escaped(&t, r->name);
                put(&t, ": %s %.2f</title></rect>\n", bar_names[k], v[k]);
                put(&t, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\">%.2f×</text>\n",
                    x + bar_w / 2 - 1, y - 4, v[k]);
            } else {
                put(&t, "<text x=\"%.1f\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\">n/a</text>\n",
                    x + bar_w / 2 - 1, PLOT_B - 4);
            }
            put(&t, "</g>\n");
        }
        put(&t, "<text x=\"%.1f\" y=\"%d\" font-size=\"13\" text-anchor=\"middle\">", gx + bar_w * 1.5,
            PLOT_B + 20);
        xml_escaped(&t, r->name);
        put(&t, "</text>\n");
    }
    for (int k = 0; k < 3; k++) legend_entry(&t, (size_t)k, bar_names[k], bar_colors[k], false, false, true);
    int ly = PLOT_T + 10 + 3 * 24;
    put(&t, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\" stroke-dasharray=\"4 3\"/>\n",
        PLOT_R + 20, ly, PLOT_R + 48, ly);
    put(&t, "<text x=\"%d\" y=\"%d\" font-size=\"13\">1× = no speedup</text>\n", PLOT_R + 56, ly + 5);
    put(&t, "<text x=\"%d\" y=\"%d\" font-size=\"12\" fill=\"#555555\">bound = 1/(1/n + 1/k²),</text>\n",
        PLOT_R + 20, ly + 40);
    put(&t, "<text x=\"%d\" y=\"%d\" font-size=\"12\" fill=\"#555555\">n = out channels, k = kernel</text>\n",
        PLOT_R + 20, ly + 58);
    put(&t, "</svg>\n");
    return text_finish(&t);
}

/* ------------------------------------------------------------ files */

conv_status load_report_write(const load_comparison *c, const char *dir, conv_error *err)
{
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return conv_fail(err, CONV_INVALID_PARAMETER, "--out %s: cannot create the folder: %s", dir,
                         strerror(errno));
    struct {
        const char *name;
        char *(*render)(const load_comparison *);
    } files[] = {
        {"report.md", load_report_markdown},      {"report.json", load_report_json},
        {"throughput.svg", load_svg_throughput},  {"latency_p99.svg", load_svg_latency_p99},
        {"speedup.svg", load_svg_speedup},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char *doc = files[i].render(c);
        if (!doc) return conv_fail(err, CONV_OUT_OF_MEMORY, "out of memory rendering %s", files[i].name);
        char path[4096];
        int n = snprintf(path, sizeof path, "%s/%s", dir, files[i].name);
        conv_status st = n > 0 && (size_t)n < sizeof path
                             ? fileio_write_all(path, doc, strlen(doc), err)
                             : conv_fail(err, CONV_LIMIT_EXCEEDED, "--out %s: path too long", dir);
        free(doc);
        if (st != CONV_OK) return st;
    }
    return CONV_OK;
}
