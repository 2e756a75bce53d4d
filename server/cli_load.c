/* cli_load.c — `convd load`: an HTTP/1.1 load generator for the convd service,
 * and `convd load --compare separable`, which loads the service with a
 * standard and the equivalent separable convolution and writes a report.
 *
 * Design: one thread runs a libuv loop over keep-alive TCP connections
 * (server/load_http.h). The request is serialised once per run and every
 * connection writes the same bytes; replies are parsed in place as they are
 * read. This replaced libcurl's multi interface, whose per-request URL
 * re-parse, allocations and extra polls made the client, not the server, the
 * bottleneck (0.68x of wrk's requests/s on /healthz). Plain http:// only:
 * convd serve has no TLS.
 * Closed loop (--concurrency C): C connections, each starting its next
 * request as soon as its reply is in. Open loop (--rate R): request k is due
 * at t0 + k/R, sent from a timer; it takes an idle connection (a new one
 * while fewer than --max-inflight exist) or, when all are busy, is counted
 * as not sent; its
 * latency runs from the time it was due, not from when it went out, so a
 * stalled server cannot hide its stall by slowing the client down
 * (coordinated omission, corrected as wrk2 does).
 * Latencies go into an HDR-style histogram (server/load_hdr.h); the server's
 * queue/compute times come from each reply's Server-Timing header or its
 * "stats" object, found by scanning the body as it streams past (no JSON
 * parse, nothing of a multi-MB reply is kept). */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "core/conv.h"
#include "proto/fileio.h"
#include "server/cli.h"
#include "server/load_hdr.h"
#include "server/load_http.h"
#include "server/load_report.h"

static const char load_usage[] =
    "usage: convd load --url URL [--concurrency C | --rate R] [--duration S] [--requests N]\n"
    "                  [--body FILE | --layer JSON --input-shape N,C,H,W] [options]\n"
    "       convd load --url URL --compare separable [--shapes FILE] [--concurrency 1,2,4,8,16]\n"
    "                  [--duration S] [--out DIR]\n"
    "\n"
    "Sends HTTP/1.1 requests over keep-alive connections and reports throughput,\n"
    "latency percentiles (HDR histogram, ~0.4% precision), errors by status, bytes,\n"
    "and the server's queue/compute times read from each reply's \"stats\".\n"
    "  --url URL            http://HOST[:PORT]/PATH (no https: convd serve has no TLS); with\n"
    "                       --layer or --compare the server base URL\n"
    "                       (\"/v1/conv2d?encoding=b64\" is appended) or a /v1/conv2d URL\n"
    "  --concurrency C      closed loop: C connections, each sending its next request\n"
    "                       when the previous reply is in (default 1)\n"
    "  --rate R             open loop: R requests/s at fixed intervals, latency measured\n"
    "                       from the scheduled send time (corrected for coordinated omission)\n"
    "  --max-inflight N     open loop: outstanding requests cap; requests due while N are\n"
    "                       outstanding are counted as not sent (default 1024)\n"
    "  --duration S         seconds to send for (default 10, or unbounded with --requests)\n"
    "  --requests N         requests to send at most\n"
    "  --timeout S          per-request timeout in seconds (default 30)\n"
    "  --method M           HTTP method (default GET, or POST with a body)\n"
    "  --body FILE          request body; .json → application/json, .npy → application/x-npy\n"
    "  --content-type T     overrides the body's content type\n"
    "  --header 'K: V'      an extra request header (repeatable)\n"
    "  --layer JSON         POST /v1/conv2d with this layer, random weights and input\n"
    "  --input-shape S      N,C,H,W of the random input for --layer\n"
    "  --json               print the report as one JSON object\n"
    "  --compare separable  Conv2d(in, out, k, padding=k//2) vs SeparableConv2d at each\n"
    "                       --concurrency level (default 1,2,4,8,16), --duration each\n"
    "                       (default 3); writes report.md, report.json and SVG plots\n"
    "  --shapes FILE        lines \"name N,C,H,W out k\" (default: classic 1,3,128,128 10 3;\n"
    "                       mobilenet_32_64 1,32,112,112 64 3; mobilenet_256 1,256,28,28 256 3)\n"
    "  --out DIR            report folder for --compare (default loadtest-report)\n";

enum {
    MAX_HEADERS = 16,
    MAX_LEVELS = 32,
    MAX_SHAPES = 16,
    STATUS_SLOTS = 600, /* HTTP statuses 0..599 */
    STATS_KEY_LEN = 7,  /* strlen("\"stats\"") */
    STATS_KEEP = 1024, /* bytes kept from "stats" on: its top-level keys come first */
    DEFAULT_MAX_INFLIGHT = 1024,
    WARMUP_REQUESTS = 2,
};
static const double DEFAULT_DURATION_S = 10.0;
static const double DEFAULT_COMPARE_DURATION_S = 3.0;
static const double DEFAULT_TIMEOUT_S = 30.0;

/* ------------------------------------------------------------ time */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------ results */

typedef struct load_result {
    double elapsed_s;     /* first send to last reply */
    uint64_t scheduled;   /* requests due (open loop) or started (closed loop) */
    uint64_t completed;   /* ok + error replies + transport errors */
    uint64_t ok;          /* 2xx */
    uint64_t not_sent;    /* open loop: due while --max-inflight were outstanding */
    uint64_t transport_errors;
    uint64_t bytes_sent, bytes_received;
    uint64_t by_status[STATUS_SLOTS];
    uint64_t by_failure[LOAD_HTTP_FAILURE_COUNT]; /* transport errors by kind */
    char first_failure[512];                       /* the first one's detail */
    uint64_t with_stats; /* replies that carried a server compute time */
    load_hdr latency, queue, compute;
} load_result;

static void result_init(load_result *r)
{
    memset(r, 0, sizeof *r);
    load_hdr_init(&r->latency);
    load_hdr_init(&r->queue);
    load_hdr_init(&r->compute);
}

static uint64_t result_errors(const load_result *r)
{
    return r->completed - r->ok;
}

static double result_throughput(const load_result *r)
{
    return r->elapsed_s > 0 ? (double)r->completed / r->elapsed_s : 0.0;
}

/* ------------------------------------------------------------ what to send */

typedef struct load_plan {
    const char *url;
    const char *method; /* NULL: GET, or POST with a body */
    const char *body;
    size_t body_len;
    bool has_body;
    const char *content_type; /* with a body */
    const char *const *headers; /* "Name: value" */
    size_t n_headers;
    long timeout_ms;
} load_plan;

typedef struct load_limits {
    long concurrency;  /* closed loop when rate == 0 */
    double rate;       /* requests/s; > 0: open loop */
    long max_inflight; /* open loop */
    double duration_s; /* <= 0: unbounded (then max_requests bounds the run) */
    uint64_t max_requests;
    bool progress; /* a line on stderr every second */
} load_limits;

/* ------------------------------------------------------------ connections */

typedef struct load_engine load_engine;

typedef struct load_conn {
    load_http_conn *http;
    load_engine *engine;
    uint64_t start_ns; /* when the request was due (open loop) or sent (closed) */
    uint64_t body_bytes;
    double timing_queue_ms, timing_compute_ms; /* from Server-Timing, NaN if absent */
    /* the reply's "stats" object, found while the body streams past: the
     * last bytes of the previous chunk (a key split between two chunks) and,
     * once found, the first STATS_KEEP bytes from the key on */
    char carry[STATS_KEY_LEN];
    size_t carry_len, stats_len;
    bool stats_found;
    char stats[STATS_KEEP + 1];
} load_conn;

static const char stats_key[] = "\"stats\"";

/* Looks for "stats" in every chunk, so a multi-MB reply is scanned once and
 * never stored; base64 and number arrays cannot contain a quote, so the first
 * match is the key. */
static void scan_for_stats(load_conn *c, const char *data, size_t n)
{
    size_t from = 0;
    if (!c->stats_found) {
        const char *hit = NULL;
        size_t after = 0;
        if (c->carry_len) {
            char window[2 * STATS_KEY_LEN];
            size_t head = n < STATS_KEY_LEN - 1 ? n : STATS_KEY_LEN - 1;
            memcpy(window, c->carry, c->carry_len);
            memcpy(window + c->carry_len, data, head);
            const char *w = memmem(window, c->carry_len + head, stats_key, STATS_KEY_LEN);
            if (w) {
                hit = w;
                after = (size_t)(w - window) + STATS_KEY_LEN - c->carry_len;
            }
        }
        if (!hit) {
            hit = memmem(data, n, stats_key, STATS_KEY_LEN);
            if (hit) after = (size_t)(hit - data) + STATS_KEY_LEN;
        }
        if (!hit) {
            const size_t keep = STATS_KEY_LEN - 1;
            if (n >= keep) {
                memcpy(c->carry, data + n - keep, keep);
                c->carry_len = keep;
            } else {
                size_t total = c->carry_len + n, drop = total > keep ? total - keep : 0;
                memmove(c->carry, c->carry + drop, c->carry_len - drop);
                memcpy(c->carry + c->carry_len - drop, data, n);
                c->carry_len = total - drop;
            }
            return;
        }
        c->stats_found = true;
        memcpy(c->stats, stats_key, STATS_KEY_LEN);
        c->stats_len = STATS_KEY_LEN;
        from = after;
    }
    if (c->stats_len < STATS_KEEP && from < n) {
        size_t take = n - from;
        if (take > STATS_KEEP - c->stats_len) take = STATS_KEEP - c->stats_len;
        memcpy(c->stats + c->stats_len, data + from, take);
        c->stats_len += take;
    }
}

static void on_body(void *user, const char *data, size_t n)
{
    load_conn *c = user;
    c->body_bytes += n;
    if (!c->stats_found || c->stats_len < STATS_KEEP) scan_for_stats(c, data, n);
}

/* "Server-Timing: queue;dur=0.1, compute;dur=2.5, total;dur=2.7" */
static void parse_server_timing(load_conn *c, const char *value)
{
    const char *p = value;
    while (*p) {
        while (*p == ' ' || *p == ',' || *p == '\t') p++;
        const char *name = p;
        while (*p && *p != ';' && *p != ',') p++;
        size_t name_len = (size_t)(p - name);
        double dur = NAN;
        while (*p == ';') {
            p++;
            while (*p == ' ') p++;
            if (!strncmp(p, "dur=", 4)) dur = strtod(p + 4, NULL);
            while (*p && *p != ';' && *p != ',') p++;
        }
        if (name_len == 5 && !strncmp(name, "queue", 5)) c->timing_queue_ms = dur;
        if (name_len == 7 && !strncmp(name, "compute", 7)) c->timing_compute_ms = dur;
    }
}

static void on_header(void *user, const char *name, size_t name_len, const char *value, size_t value_len)
{
    load_conn *c = user;
    static const char key[] = "server-timing";
    if (name_len == sizeof key - 1 && !strncasecmp(name, key, name_len)) {
        char line[512];
        size_t len = value_len < sizeof line - 1 ? value_len : sizeof line - 1;
        memcpy(line, value, len);
        line[len] = '\0';
        parse_server_timing(c, line);
    }
}

/* the number after `key` (e.g. "\"compute_ms\"") following "\"stats\"" in
 * buf[0..len) (NUL-terminated), or NaN */
static double stats_number(const char *buf, size_t len, const char *key)
{
    const char *stats = memmem(buf, len, "\"stats\"", 7);
    if (!stats) return NAN;
    size_t rest = len - (size_t)(stats - buf), key_len = strlen(key);
    const char *p = memmem(stats, rest, key, key_len);
    if (!p) return NAN;
    p += key_len;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    if (*p++ != ':') return NAN;
    char *end;
    double v = strtod(p, &end);
    return end == p ? NAN : v;
}

/* the server's queue and compute times of the reply in c: Server-Timing if
 * sent, else the "stats" object of the body */
static void reply_server_times(load_conn *c, double *queue_ms, double *compute_ms)
{
    *queue_ms = c->timing_queue_ms;
    *compute_ms = c->timing_compute_ms;
    if (!isnan(*compute_ms) || !c->stats_found) return;
    c->stats[c->stats_len] = '\0';
    *queue_ms = stats_number(c->stats, c->stats_len, "\"queue_ms\"");
    *compute_ms = stats_number(c->stats, c->stats_len, "\"compute_ms\"");
}

static load_conn *conn_new(load_engine *g, load_http_client *client)
{
    load_conn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->engine = g;
    c->http = load_http_conn_new(client, c);
    if (!c->http) {
        free(c);
        return NULL;
    }
    return c;
}

/* ------------------------------------------------------------ the engine */

struct load_engine {
    const load_limits *limits;
    load_result *result;
    uv_loop_t loop;
    load_http_client *client;
    uv_timer_t schedule; /* open loop: fires when the next request is due */
    uv_timer_t progress;
    load_conn **conns, **idle;
    size_t n_conns, n_idle, max_conns;
    uint64_t inflight;
    uint64_t t0_ns, deadline_ns, last_done_ns;
    double ns_per_request;
    bool open_loop;
    bool sending; /* open loop: requests are still due */
    uint64_t tick_completed;
};

static load_conn *engine_take_conn(load_engine *g)
{
    if (g->n_idle) return g->idle[--g->n_idle];
    if (g->n_conns == g->max_conns) return NULL;
    load_conn *c = conn_new(g, g->client);
    if (c) g->conns[g->n_conns++] = c;
    return c;
}

static void record_failure(load_result *r, load_http_failure failure, const char *detail)
{
    r->completed++;
    r->transport_errors++;
    r->by_failure[failure]++;
    if (!r->first_failure[0]) snprintf(r->first_failure, sizeof r->first_failure, "%s", detail);
}

/* Sends c's next request, due at due_ns. A request that cannot even be
 * handed to the socket (no socket could be created) counts as a transport
 * error at once; false then, and c stays with the caller. */
static bool engine_start(load_engine *g, load_conn *c, uint64_t due_ns)
{
    c->start_ns = due_ns;
    c->body_bytes = 0;
    c->carry_len = c->stats_len = 0;
    c->stats_found = false;
    c->timing_queue_ms = c->timing_compute_ms = NAN;
    g->result->scheduled++;
    conv_error err;
    if (load_http_conn_send(c->http, &err) != CONV_OK) {
        record_failure(g->result, LOAD_HTTP_CONNECT, err.message);
        return false;
    }
    g->inflight++;
    return true;
}

static void engine_finish_if_done(load_engine *g)
{
    if (g->inflight == 0 && (!g->open_loop || !g->sending)) uv_stop(&g->loop);
}

static void engine_record(load_engine *g, load_conn *c, load_http_failure failure, int status,
                          const char *detail, uint64_t done_ns)
{
    load_result *r = g->result;
    if (failure != LOAD_HTTP_OK) {
        record_failure(r, failure, detail ? detail : load_http_failure_name(failure));
        return;
    }
    r->completed++;
    r->by_status[status >= 0 && status < STATUS_SLOTS ? status : 0]++;
    if (status >= 200 && status < 300) r->ok++;
    load_hdr_record(&r->latency, done_ns > c->start_ns ? done_ns - c->start_ns : 0);
    double queue_ms, compute_ms;
    reply_server_times(c, &queue_ms, &compute_ms);
    if (!isnan(compute_ms)) {
        r->with_stats++;
        load_hdr_record_ms(&r->compute, compute_ms);
        if (!isnan(queue_ms)) load_hdr_record_ms(&r->queue, queue_ms);
    }
}

/* a reply (or a transport error) for c: recorded; in the closed loop the
 * connection starts its next request at once while the run goes on */
static void on_done(void *user, load_http_conn *http, load_http_failure failure, int status, const char *detail)
{
    (void)http;
    load_conn *c = user;
    load_engine *g = c->engine;
    uint64_t done = now_ns();
    g->inflight--;
    engine_record(g, c, failure, status, detail, done);
    g->last_done_ns = done;
    const load_limits *lim = g->limits;
    if (!g->open_loop && done < g->deadline_ns && g->result->scheduled < lim->max_requests &&
        engine_start(g, c, done))
        return;
    g->idle[g->n_idle++] = c;
    engine_finish_if_done(g);
}

/* open loop: sends every request due by now, then sleeps until the next */
static void on_schedule(uv_timer_t *t)
{
    load_engine *g = t->data;
    const load_limits *lim = g->limits;
    load_result *r = g->result;
    uint64_t now = now_ns(), next_due = UINT64_MAX;
    uint64_t k = r->scheduled + r->not_sent;
    for (; k < lim->max_requests; k++) {
        next_due = g->t0_ns + (uint64_t)((double)k * g->ns_per_request);
        if (next_due > now || next_due >= g->deadline_ns) break;
        load_conn *c = engine_take_conn(g);
        if (!c) r->not_sent++;
        else if (!engine_start(g, c, next_due)) g->idle[g->n_idle++] = c;
    }
    g->sending = k < lim->max_requests && next_due < g->deadline_ns;
    if (!g->sending) {
        engine_finish_if_done(g);
        return;
    }
    /* rounded up: a request goes out at most ~1 ms late, and its latency
     * counts from when it was due anyway */
    uint64_t wait_ms = (next_due - now + 999999) / 1000000;
    uv_timer_start(t, on_schedule, wait_ms, 0);
}

static void print_progress(const load_result *r, double t_s, double rate_rps)
{
    fprintf(stderr,
            "\r  %6.1f s  %10llu requests  %9.0f req/s  p50 %8.3f ms  p99 %8.3f ms  errors %llu   ",
            t_s, (unsigned long long)r->completed, rate_rps, load_hdr_percentile_ms(&r->latency, 50),
            load_hdr_percentile_ms(&r->latency, 99), (unsigned long long)result_errors(r));
    fflush(stderr);
}

static void on_progress(uv_timer_t *t)
{
    load_engine *g = t->data;
    print_progress(g->result, (double)(now_ns() - g->t0_ns) * 1e-9,
                   (double)(g->result->completed - g->tick_completed));
    g->tick_completed = g->result->completed;
}

/* Runs one load (closed or open loop) to its limits and fills result.
 * Returns false with a message in err when the client itself cannot run. */
static bool run_load(const load_plan *plan, const load_limits *lim, load_result *result, char *err,
                     size_t err_len)
{
    result_init(result);
    conv_error cerr = {{0}};
    load_http_url url;
    char *request = NULL;
    size_t request_len = 0;
    const char *method = plan->method ? plan->method : (plan->has_body ? "POST" : "GET");
    load_engine g = {.limits = lim, .result = result, .open_loop = lim->rate > 0};
    g.client = calloc(1, sizeof *g.client);
    if (!g.client) {
        snprintf(err, err_len, "out of memory");
        return false;
    }
    if (load_http_parse_url(plan->url, &url, &cerr) != CONV_OK ||
        load_http_resolve(&url, &g.client->addr, &cerr) != CONV_OK ||
        load_http_build_request(method, &url, plan->headers, plan->n_headers, plan->content_type,
                                plan->has_body ? plan->body : NULL, plan->body_len, &request, &request_len,
                                &cerr) != CONV_OK) {
        snprintf(err, err_len, "%s", cerr.message);
        free(g.client);
        return false;
    }
    int rc = uv_loop_init(&g.loop);
    if (rc < 0) {
        snprintf(err, err_len, "cannot start the event loop: %s", uv_strerror(rc));
        free(request);
        free(g.client);
        return false;
    }
    load_http_client *cl = g.client;
    cl->loop = &g.loop;
    cl->request = request;
    cl->request_len = request_len;
    cl->head_request = !strcasecmp(method, "HEAD");
    cl->timeout_ms = (uint64_t)plan->timeout_ms;
    cl->on_header = on_header;
    cl->on_body = on_body;
    cl->on_done = on_done;
    g.max_conns = (size_t)(g.open_loop ? lim->max_inflight : lim->concurrency);
    g.conns = calloc(g.max_conns, sizeof *g.conns);
    g.idle = calloc(g.max_conns, sizeof *g.idle);
    bool ok = g.conns && g.idle;
    if (!ok) snprintf(err, err_len, "cannot set up %zu connections: out of memory", g.max_conns);
    uv_timer_init(&g.loop, &g.schedule);
    uv_timer_init(&g.loop, &g.progress);
    g.schedule.data = g.progress.data = &g;

    g.t0_ns = g.last_done_ns = now_ns();
    g.deadline_ns = lim->duration_s > 0 ? g.t0_ns + (uint64_t)(lim->duration_s * 1e9) : UINT64_MAX;
    g.ns_per_request = g.open_loop ? 1e9 / lim->rate : 0;
    bool started = false;
    if (ok && !g.open_loop) {
        for (long i = 0; i < lim->concurrency && result->scheduled < lim->max_requests; i++) {
            load_conn *c = engine_take_conn(&g);
            if (!c) {
                snprintf(err, err_len, "cannot set up connection %ld: out of memory", i + 1);
                ok = false;
                break;
            }
            if (engine_start(&g, c, now_ns())) started = true;
            else g.idle[g.n_idle++] = c;
        }
    } else if (ok) {
        g.sending = true;
        started = true;
        uv_timer_start(&g.schedule, on_schedule, 0, 0);
    }
    if (ok && lim->progress) uv_timer_start(&g.progress, on_progress, 1000, 1000);
    if (ok && started) uv_run(&g.loop, UV_RUN_DEFAULT);
    if (lim->progress && now_ns() - g.t0_ns >= 1000000000ull) fputs("\r\033[K", stderr);
    result->elapsed_s = (double)((result->completed ? g.last_done_ns : now_ns()) - g.t0_ns) * 1e-9;
    result->bytes_sent = cl->bytes_sent;
    result->bytes_received = cl->bytes_received;

    /* requests still out when the loop stopped early are dropped unanswered */
    for (size_t i = 0; i < g.n_conns; i++) {
        load_http_conn_close(g.conns[i]->http);
        free(g.conns[i]);
    }
    uv_close((uv_handle_t *)&g.schedule, NULL);
    uv_close((uv_handle_t *)&g.progress, NULL);
    uv_run(&g.loop, UV_RUN_DEFAULT);
    uv_loop_close(&g.loop);
    free(g.conns);
    free(g.idle);
    free(request);
    free(cl);
    return ok;
}

/* ------------------------------------------------------------ single run report */

static json_t *ms_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *server_times_json(const load_hdr *h)
{
    if (!h->total) return json_null();
    return json_pack("{s:o, s:o, s:o}", "mean", ms_or_null(load_hdr_mean_ms(h)), "p50",
                     ms_or_null(load_hdr_percentile_ms(h, 50)), "p99",
                     ms_or_null(load_hdr_percentile_ms(h, 99)));
}

/* "status" counts every reply by its HTTP status, 2xx included, so requests =
 * sum(status) + transport_errors and errors = requests - ok. */
static void print_json_report(const load_plan *plan, const load_limits *lim, const load_result *r)
{
    json_t *by_status = json_object(), *transport = json_object();
    char key[16];
    for (int s = 0; s < STATUS_SLOTS; s++) {
        if (!r->by_status[s]) continue;
        snprintf(key, sizeof key, "%d", s);
        json_object_set_new(by_status, key, json_integer((json_int_t)r->by_status[s]));
    }
    for (int f = 1; f < LOAD_HTTP_FAILURE_COUNT; f++)
        if (r->by_failure[f])
            json_object_set_new(transport, load_http_failure_name((load_http_failure)f),
                                json_integer((json_int_t)r->by_failure[f]));
    const load_hdr *l = &r->latency;
    bool any = l->total > 0;
    json_t *root = json_pack(
        "{s:s, s:s, s:s, s:o, s:o, s:f, s:I, s:I, s:I, s:f, s:{s:o, s:o, s:o, s:o, s:o, s:o, s:o}, "
        "s:o, s:I, s:o, s:I, s:I, s:I, s:{s:I, s:o, s:o}}",
        "url", plan->url, "method", plan->method ? plan->method : (plan->has_body ? "POST" : "GET"),
        "mode", lim->rate > 0 ? "open" : "closed", "concurrency",
        lim->rate > 0 ? json_null() : json_integer(lim->concurrency), "rate",
        lim->rate > 0 ? json_real(lim->rate) : json_null(), "duration_s", r->elapsed_s, "requests",
        (json_int_t)r->completed, "ok", (json_int_t)r->ok, "errors", (json_int_t)result_errors(r),
        "throughput_rps", result_throughput(r), "latency_ms", "min",
        ms_or_null(any ? load_hdr_percentile_ms(l, 0) : NAN), "p50",
        ms_or_null(any ? load_hdr_percentile_ms(l, 50) : NAN), "p90",
        ms_or_null(any ? load_hdr_percentile_ms(l, 90) : NAN), "p99",
        ms_or_null(any ? load_hdr_percentile_ms(l, 99) : NAN), "p99_9",
        ms_or_null(any ? load_hdr_percentile_ms(l, 99.9) : NAN), "max",
        ms_or_null(any ? load_hdr_percentile_ms(l, 100) : NAN), "mean",
        ms_or_null(any ? load_hdr_mean_ms(l) : NAN), "status", by_status, "transport_errors",
        (json_int_t)r->transport_errors, "transport", transport, "not_sent", (json_int_t)r->not_sent,
        "bytes_sent", (json_int_t)r->bytes_sent, "bytes_received", (json_int_t)r->bytes_received,
        "server", "replies_with_stats", (json_int_t)r->with_stats, "queue_ms",
        server_times_json(&r->queue), "compute_ms", server_times_json(&r->compute));
    if (root) {
        json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
        fputc('\n', stdout);
    }
    json_decref(root);
}

static const char *human_bytes(char *buf, size_t len, uint64_t b)
{
    if (b >= 10ull << 30) snprintf(buf, len, "%.1f GiB", (double)b / (1 << 30));
    else if (b >= 10ull << 20) snprintf(buf, len, "%.1f MiB", (double)b / (1 << 20));
    else if (b >= 10ull << 10) snprintf(buf, len, "%.1f KiB", (double)b / (1 << 10));
    else snprintf(buf, len, "%llu B", (unsigned long long)b);
    return buf;
}

static void print_text_report(const load_plan *plan, const load_limits *lim, const load_result *r)
{
    char b1[32], b2[32];
    const load_hdr *l = &r->latency;
    printf("convd load: %s %s, ", plan->method ? plan->method : (plan->has_body ? "POST" : "GET"),
           plan->url);
    if (lim->rate > 0) printf("open loop at %g req/s (max %ld in flight)", lim->rate, lim->max_inflight);
    else printf("closed loop, %ld connection%s", lim->concurrency, lim->concurrency == 1 ? "" : "s");
    printf(", %.2f s\n", r->elapsed_s);
    printf("  requests     %llu (ok %llu, errors %llu)\n", (unsigned long long)r->completed,
           (unsigned long long)r->ok, (unsigned long long)result_errors(r));
    printf("  throughput   %.1f req/s\n", result_throughput(r));
    if (l->total)
        printf("  latency ms   min %.3f  p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  mean %.3f\n",
               load_hdr_percentile_ms(l, 0), load_hdr_percentile_ms(l, 50),
               load_hdr_percentile_ms(l, 90), load_hdr_percentile_ms(l, 99),
               load_hdr_percentile_ms(l, 99.9), load_hdr_percentile_ms(l, 100), load_hdr_mean_ms(l));
    if (result_errors(r)) {
        printf("  errors      ");
        for (int s = 0; s < STATUS_SLOTS; s++)
            if (r->by_status[s] && !(s >= 200 && s < 300))
                printf(" HTTP %d: %llu;", s, (unsigned long long)r->by_status[s]);
        for (int f = 1; f < LOAD_HTTP_FAILURE_COUNT; f++)
            if (r->by_failure[f])
                printf(" %s: %llu;", load_http_failure_name((load_http_failure)f),
                       (unsigned long long)r->by_failure[f]);
        printf("\n");
        if (r->transport_errors) printf("  first error  %s\n", r->first_failure);
    }
    if (lim->rate > 0) printf("  not sent     %llu (due while %ld were in flight)\n",
                              (unsigned long long)r->not_sent, lim->max_inflight);
    printf("  bytes        sent %s, received %s\n", human_bytes(b1, sizeof b1, r->bytes_sent),
           human_bytes(b2, sizeof b2, r->bytes_received));
    if (r->with_stats) {
        printf("  server ms    compute mean %.3f  p50 %.3f  p99 %.3f", load_hdr_mean_ms(&r->compute),
               load_hdr_percentile_ms(&r->compute, 50), load_hdr_percentile_ms(&r->compute, 99));
        if (r->queue.total)
            printf("; queue mean %.3f  p50 %.3f  p99 %.3f", load_hdr_mean_ms(&r->queue),
                   load_hdr_percentile_ms(&r->queue, 50), load_hdr_percentile_ms(&r->queue, 99));
        printf("  (%llu replies)\n", (unsigned long long)r->with_stats);
    } else {
        printf("  server ms    no reply carried \"stats\" or Server-Timing\n");
    }
}

/* ------------------------------------------------------------ request bodies */

/* {"layer": L, "weight"/"weights", "bias", "input": random} for /v1/conv2d;
 * NULL with a message when layer_json is not a JSON object with a "type" */
static char *conv2d_body(const char *layer_json, const int64_t shape[4], char *err, size_t err_len)
{
    json_error_t jerr;
    json_t *layer = json_loads(layer_json, 0, &jerr);
    if (!json_is_object(layer) || !json_is_string(json_object_get(layer, "type"))) {
        snprintf(err, err_len, "--layer: expected a JSON object with a \"type\"%s%s",
                 layer ? "" : ": ", layer ? "" : jerr.text);
        json_decref(layer);
        return NULL;
    }
    bool separable = !strcmp(json_string_value(json_object_get(layer, "type")), "SeparableConv2d");
    json_t *bias_flag = json_object_get(layer, "bias");
    bool bias = !json_is_false(bias_flag);
    json_t *root = json_object();
    json_object_set_new(root, "layer", layer);
#define RANDOM(seed) json_pack("{s:s, s:i}", "init", "random", "seed", (seed))
    if (separable) {
        json_t *w = json_object();
        json_object_set_new(w, "depthwise.weight", RANDOM(1));
        if (bias) json_object_set_new(w, "depthwise.bias", RANDOM(2));
        json_object_set_new(w, "pointwise.weight", RANDOM(4));
        if (bias) json_object_set_new(w, "pointwise.bias", RANDOM(5));
        json_object_set_new(root, "weights", w);
    } else {
        json_object_set_new(root, "weight", RANDOM(1));
        if (bias) json_object_set_new(root, "bias", RANDOM(2));
    }
#undef RANDOM
    json_object_set_new(root, "input",
                        json_pack("{s:s, s:i, s:[I,I,I,I]}", "init", "random", "seed", 3, "shape",
                                  (json_int_t)shape[0], (json_int_t)shape[1], (json_int_t)shape[2],
                                  (json_int_t)shape[3]));
    char *out = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!out) snprintf(err, err_len, "out of memory building the request body");
    return out;
}

/* a server base URL gets "/v1/conv2d?encoding=b64"; a URL with a path of its
 * own is kept (malloc'ed) */
static char *conv2d_url(const char *url)
{
    const char *scheme = strstr(url, "://");
    const char *path = strchr(scheme ? scheme + 3 : url, '/');
    bool base = !path || !strcmp(path, "/");
    size_t len = strlen(url);
    char *out = malloc(len + 32);
    if (!out) return NULL;
    if (base) {
        if (len && url[len - 1] == '/') len--;
        snprintf(out, len + 32, "%.*s/v1/conv2d?encoding=b64", (int)len, url);
    } else {
        memcpy(out, url, len + 1);
    }
    return out;
}

static const char *content_type_of(const char *path)
{
    const char *dot = strrchr(path, '.');
    if (dot && !strcasecmp(dot, ".json")) return "application/json";
    if (dot && !strcasecmp(dot, ".npy")) return "application/x-npy";
    return "application/octet-stream";
}

/* ------------------------------------------------------------ --compare */

typedef struct shape_spec {
    char name[64];
    int64_t shape[4];
    int64_t out_channels, kernel;
} shape_spec;

static const shape_spec default_shapes[] = {
    {"classic", {1, 3, 128, 128}, 10, 3},
    {"mobilenet_32_64", {1, 32, 112, 112}, 64, 3},
    {"mobilenet_256", {1, 256, 28, 28}, 256, 3},
};

/* lines "name N,C,H,W out k"; '#' starts a comment */
static bool read_shapes(const char *path, shape_spec *out, size_t *n, char *err, size_t err_len)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, err_len, "--shapes %s: %s", path, strerror(errno));
        return false;
    }
    char line[512];
    int lineno = 0;
    *n = 0;
    bool ok = true;
    while (ok && fgets(line, sizeof line, f)) {
        lineno++;
        line[strcspn(line, "#\r\n")] = '\0';
        char name[64], shape_text[128];
        long out_ch, k;
        char extra;
        int got = sscanf(line, "%63s %127s %ld %ld %c", name, shape_text, &out_ch, &k, &extra);
        if (got <= 0) continue;
        if (*n == MAX_SHAPES) {
            snprintf(err, err_len, "--shapes %s: more than %d shapes", path, MAX_SHAPES);
            ok = false;
        } else if (got != 4 || !cli_parse_shape(shape_text, out[*n].shape) || out_ch <= 0 ||
                   out_ch > 1 << 20 || k <= 0 || k > 64) {
            snprintf(err, err_len, "--shapes %s:%d: expected \"name N,C,H,W out k\" with positive numbers",
                     path, lineno);
            ok = false;
        } else {
            snprintf(out[*n].name, sizeof out[*n].name, "%s", name);
            out[*n].out_channels = out_ch;
            out[*n].kernel = k;
            (*n)++;
        }
    }
    fclose(f);
    if (ok && !*n) {
        snprintf(err, err_len, "--shapes %s: no shapes", path);
        ok = false;
    }
    return ok;
}

static bool parse_levels(const char *text, long *levels, size_t *n)
{
    *n = 0;
    const char *p = text;
    while (*p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 1 || v > 100000 || *n == MAX_LEVELS) return false;
        levels[(*n)++] = v;
        if (*end == ',') end++;
        else if (*end) return false;
        p = end;
    }
    return *n > 0;
}

static void point_from_result(load_point *p, long concurrency, const load_result *r)
{
    p->concurrency = concurrency;
    p->requests = r->completed;
    p->errors = result_errors(r);
    p->elapsed_s = r->elapsed_s;
    p->throughput_rps = result_throughput(r);
    bool lat = r->latency.total > 0, comp = r->compute.total > 0, q = r->queue.total > 0;
    p->latency_p50_ms = lat ? load_hdr_percentile_ms(&r->latency, 50) : NAN;
    p->latency_p99_ms = lat ? load_hdr_percentile_ms(&r->latency, 99) : NAN;
    p->latency_mean_ms = lat ? load_hdr_mean_ms(&r->latency) : NAN;
    p->replies_with_stats = r->with_stats;
    p->compute_p50_ms = comp ? load_hdr_percentile_ms(&r->compute, 50) : NAN;
    p->compute_p99_ms = comp ? load_hdr_percentile_ms(&r->compute, 99) : NAN;
    p->compute_mean_ms = comp ? load_hdr_mean_ms(&r->compute) : NAN;
    p->queue_p50_ms = q ? load_hdr_percentile_ms(&r->queue, 50) : NAN;
    p->queue_p99_ms = q ? load_hdr_percentile_ms(&r->queue, 99) : NAN;
    p->queue_mean_ms = q ? load_hdr_mean_ms(&r->queue) : NAN;
}

/* the first error of a failed warm-up, for the message */
static void describe_failure(const load_result *r, char *buf, size_t len)
{
    if (r->transport_errors) {
        snprintf(buf, len, "%s", r->first_failure);
        return;
    }
    for (int s = 0; s < STATUS_SLOTS; s++)
        if (r->by_status[s] && !(s >= 200 && s < 300)) {
            snprintf(buf, len, "HTTP %d", s);
            return;
        }
    snprintf(buf, len, "no reply");
}

typedef struct compare_options {
    const char *url;
    const char *shapes_path;
    const char *out_dir;
    long levels[MAX_LEVELS];
    size_t n_levels;
    double duration_s;
    long timeout_ms;
    const char *const *headers;
    size_t n_headers;
} compare_options;

static int run_compare(const compare_options *o)
{
    char err[512];
    shape_spec shapes[MAX_SHAPES];
    size_t n_shapes = sizeof default_shapes / sizeof default_shapes[0];
    memcpy(shapes, default_shapes, sizeof default_shapes);
    if (o->shapes_path && !read_shapes(o->shapes_path, shapes, &n_shapes, err, sizeof err))
        return cli_fail("load", EXIT_USAGE, "%s", err);
    char *url = conv2d_url(o->url);
    load_result *r = malloc(sizeof *r);
    load_hdr *pooled = malloc(sizeof *pooled);
    load_shape_result *results = calloc(n_shapes, sizeof *results);
    load_point *points = calloc(2 * n_shapes * o->n_levels, sizeof *points);
    if (!url || !r || !pooled || !results || !points) {
        free(url), free(r), free(pooled), free(results), free(points);
        return cli_fail("load", EXIT_ERROR, "out of memory");
    }
    int status = EXIT_OK;
    for (size_t s = 0; s < n_shapes && status == EXIT_OK; s++) {
        const shape_spec *sh = &shapes[s];
        load_shape_result *res = &results[s];
        _Static_assert(sizeof res->name == sizeof sh->name, "shape names have one size");
        memcpy(res->name, sh->name, sizeof res->name);
        memcpy(res->input_shape, sh->shape, sizeof sh->shape);
        res->out_channels = sh->out_channels;
        res->kernel_size = sh->kernel;
        res->standard = &points[2 * s * o->n_levels];
        res->separable = &points[(2 * s + 1) * o->n_levels];
        for (int v = 0; v < 2 && status == EXIT_OK; v++) {
            char layer[256];
            snprintf(layer, sizeof layer,
                     "{\"type\": \"%s\", \"in_channels\": %lld, \"out_channels\": %lld, "
                     "\"kernel_size\": %lld, \"padding\": %lld}",
                     v ? "SeparableConv2d" : "Conv2d", (long long)sh->shape[1], (long long)sh->out_channels,
                     (long long)sh->kernel, (long long)(sh->kernel / 2));
            char *body = conv2d_body(layer, sh->shape, err, sizeof err);
            if (!body) {
                status = cli_fail("load", EXIT_ERROR, "%s", err);
                break;
            }
            load_plan plan = {.url = url, .method = "POST", .body = body, .body_len = strlen(body),
                              .has_body = true, .content_type = "application/json",
                              .headers = o->headers, .n_headers = o->n_headers, .timeout_ms = o->timeout_ms};
            /* warm-up: checks the server takes the layer before timing it */
            load_limits warm = {.concurrency = 1, .max_requests = WARMUP_REQUESTS};
            if (!run_load(&plan, &warm, r, err, sizeof err)) {
                status = cli_fail("load", EXIT_ERROR, "%s", err);
            } else if (r->ok != r->completed || !r->completed) {
                describe_failure(r, err, sizeof err);
                status = cli_fail("load", EXIT_ERROR, "%s %s: the server refused the warm-up request (%s)",
                                  sh->name, v ? "separable" : "standard", err);
            }
            load_hdr_init(pooled);
            for (size_t i = 0; i < o->n_levels && status == EXIT_OK; i++) {
                load_limits lim = {.concurrency = o->levels[i], .duration_s = o->duration_s,
                                   .max_requests = UINT64_MAX};
                if (!run_load(&plan, &lim, r, err, sizeof err)) {
                    status = cli_fail("load", EXIT_ERROR, "%s", err);
                    break;
                }
                load_point *p = v ? &res->separable[i] : &res->standard[i];
                point_from_result(p, o->levels[i], r);
                load_hdr_merge(pooled, &r->compute);
                fprintf(stderr, "%-18s %-9s c=%-4ld %9.1f req/s  p50 %8.2f ms  p99 %8.2f ms  compute p50 %8.2f ms  errors %llu\n",
                        sh->name, v ? "separable" : "standard", o->levels[i], p->throughput_rps,
                        p->latency_p50_ms, p->latency_p99_ms, p->compute_p50_ms,
                        (unsigned long long)p->errors);
            }
            double med = pooled->total ? load_hdr_percentile_ms(pooled, 50) : NAN;
            if (v) res->compute_p50_separable_ms = med;
            else res->compute_p50_standard_ms = med;
            free(body);
        }
    }
    if (status == EXIT_OK) {
        load_comparison c = {.url = url, .duration_s = o->duration_s, .levels = o->levels,
                             .n_levels = o->n_levels, .shapes = results, .n_shapes = n_shapes};
        conv_error cerr = {{0}};
        if (load_report_write(&c, o->out_dir, &cerr) != CONV_OK)
            status = cli_fail("load", EXIT_ERROR, "%s", cerr.message);
        else
            printf("report written to %s/report.md (report.json, throughput.svg, latency_p99.svg, speedup.svg)\n",
                   o->out_dir);
    }
    free(url), free(r), free(pooled), free(results), free(points);
    return status;
}

/* ------------------------------------------------------------ the command */

int cli_load(int argc, char **argv)
{
    const char *url = NULL, *body_path = NULL, *content_type = NULL, *method = NULL;
    const char *layer = NULL, *shape_text = NULL, *compare = NULL, *shapes_path = NULL;
    const char *out_dir = "loadtest-report", *concurrency_text = NULL;
    const char *headers[MAX_HEADERS];
    size_t n_headers = 0;
    double rate = 0, duration = -1, timeout = DEFAULT_TIMEOUT_S;
    long max_inflight = DEFAULT_MAX_INFLIGHT, requests = 0;
    bool json = false;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(load_usage, stdout);
            return EXIT_OK;
        }
        if (!strcmp(a, "--json")) {
            json = true;
            continue;
        }
        if (i + 1 >= argc) return cli_fail("load", EXIT_USAGE, "%s: missing value (try --help)", a);
        const char *v = argv[++i];
        char *end;
        if (!strcmp(a, "--url")) url = v;
        else if (!strcmp(a, "--concurrency") || !strcmp(a, "-c")) concurrency_text = v;
        else if (!strcmp(a, "--rate")) {
            rate = strtod(v, &end);
            if (*end || !(rate > 0) || rate > 1e7)
                return cli_fail("load", EXIT_USAGE, "--rate %s: expected requests/s in (0, 1e7]", v);
        } else if (!strcmp(a, "--duration") || !strcmp(a, "-d")) {
            duration = strtod(v, &end);
            if (*end || !(duration > 0) || duration > 86400)
                return cli_fail("load", EXIT_USAGE, "--duration %s: expected seconds in (0, 86400]", v);
        } else if (!strcmp(a, "--timeout")) {
            timeout = strtod(v, &end);
            if (*end || !(timeout > 0) || timeout > 3600)
                return cli_fail("load", EXIT_USAGE, "--timeout %s: expected seconds in (0, 3600]", v);
        } else if (!strcmp(a, "--requests") || !strcmp(a, "-n")) {
            if (!cli_parse_int(v, 1, 1000000000L, &requests))
                return cli_fail("load", EXIT_USAGE, "--requests %s: expected an integer in [1, 1e9]", v);
        } else if (!strcmp(a, "--max-inflight")) {
            if (!cli_parse_int(v, 1, 100000, &max_inflight))
                return cli_fail("load", EXIT_USAGE, "--max-inflight %s: expected an integer in [1, 100000]", v);
        } else if (!strcmp(a, "--body")) body_path = v;
        else if (!strcmp(a, "--content-type")) content_type = v;
        else if (!strcmp(a, "--method") || !strcmp(a, "-X")) method = v;
        else if (!strcmp(a, "--header") || !strcmp(a, "-H")) {
            if (n_headers == MAX_HEADERS)
                return cli_fail("load", EXIT_USAGE, "--header: at most %d headers", MAX_HEADERS);
            headers[n_headers++] = v;
        } else if (!strcmp(a, "--layer")) layer = v;
        else if (!strcmp(a, "--input-shape")) shape_text = v;
        else if (!strcmp(a, "--compare")) compare = v;
        else if (!strcmp(a, "--shapes")) shapes_path = v;
        else if (!strcmp(a, "--out")) out_dir = v;
        else return cli_fail("load", EXIT_USAGE, "unknown option %s (try --help)", a);
    }
    if (!url) return cli_fail("load", EXIT_USAGE, "--url is required (try --help)");
    long levels[MAX_LEVELS];
    size_t n_levels = 0;
    if (concurrency_text && !parse_levels(concurrency_text, levels, &n_levels))
        return cli_fail("load", EXIT_USAGE,
                        "--concurrency %s: expected a positive integer (or a list 1,2,4 with --compare)",
                        concurrency_text);
    if (compare) {
        if (strcmp(compare, "separable"))
            return cli_fail("load", EXIT_USAGE, "--compare %s: only \"separable\" is known", compare);
        if (rate > 0 || body_path || layer)
            return cli_fail("load", EXIT_USAGE, "--compare runs closed loops on its own layers: drop --rate, --body and --layer");
    } else {
        if (n_levels > 1)
            return cli_fail("load", EXIT_USAGE, "--concurrency %s: a list is only for --compare", concurrency_text);
        if (rate > 0 && concurrency_text)
            return cli_fail("load", EXIT_USAGE, "--rate and --concurrency exclude each other");
        if (body_path && layer) return cli_fail("load", EXIT_USAGE, "--body and --layer exclude each other");
        if (layer && !shape_text) return cli_fail("load", EXIT_USAGE, "--layer needs --input-shape N,C,H,W");
    }
    int64_t shape[4] = {0};
    if (shape_text && !cli_parse_shape(shape_text, shape))
        return cli_fail("load", EXIT_USAGE, "--input-shape %s: expected N,C,H,W with positive integers", shape_text);

    /* URL and headers are checked here, so a mistake is a usage error */
    conv_error cerr = {{0}};
    load_http_url parsed_url;
    char *probe = NULL;
    size_t probe_len = 0;
    if (load_http_parse_url(url, &parsed_url, &cerr) != CONV_OK ||
        load_http_build_request(method ? method : "GET", &parsed_url, headers, n_headers,
                                content_type ? content_type : "application/octet-stream", "", 0, &probe,
                                &probe_len, &cerr) != CONV_OK)
        return cli_fail("load", EXIT_USAGE, "%s", cerr.message);
    free(probe);
    /* a server that closes while a request is being written must give an
     * EPIPE error, not kill the process */
    signal(SIGPIPE, SIG_IGN);

    int status = EXIT_OK;
    char err[512];
    char *body = NULL, *request_url = NULL;
    size_t body_len = 0;
    if (compare) {
        compare_options o = {.url = url, .shapes_path = shapes_path, .out_dir = out_dir,
                             .duration_s = duration > 0 ? duration : DEFAULT_COMPARE_DURATION_S,
                             .timeout_ms = (long)(timeout * 1000), .headers = headers,
                             .n_headers = n_headers};
        static const long default_levels[] = {1, 2, 4, 8, 16};
        if (n_levels) {
            memcpy(o.levels, levels, n_levels * sizeof *levels);
            o.n_levels = n_levels;
        } else {
            memcpy(o.levels, default_levels, sizeof default_levels);
            o.n_levels = sizeof default_levels / sizeof default_levels[0];
        }
        return run_compare(&o);
    }

    if (status == EXIT_OK && body_path) {
        uint8_t *bytes = NULL;
        if (fileio_read_all(body_path, FILEIO_MAX_FILE_BYTES, &bytes, &body_len, &cerr) != CONV_OK)
            status = cli_fail("load", EXIT_ERROR, "--body: %s", cerr.message);
        body = (char *)bytes;
        if (!content_type) content_type = content_type_of(body_path);
    } else if (status == EXIT_OK && layer) {
        body = conv2d_body(layer, shape, err, sizeof err);
        if (!body) status = cli_fail("load", EXIT_USAGE, "%s", err);
        else body_len = strlen(body);
        if (!content_type) content_type = "application/json";
    }
    request_url = layer ? conv2d_url(url) : strdup(url);
    if (status == EXIT_OK && !request_url) status = cli_fail("load", EXIT_ERROR, "out of memory");
    if (status == EXIT_OK) {
        load_plan plan = {.url = request_url, .method = method, .body = body, .body_len = body_len,
                          .has_body = body != NULL, .content_type = content_type,
                          .headers = headers, .n_headers = n_headers, .timeout_ms = (long)(timeout * 1000)};
        load_limits lim = {.concurrency = n_levels ? levels[0] : 1, .rate = rate,
                           .max_inflight = max_inflight,
                           .duration_s = duration > 0 ? duration : (requests ? 0 : DEFAULT_DURATION_S),
                           .max_requests = requests ? (uint64_t)requests : UINT64_MAX,
                           .progress = isatty(STDERR_FILENO) != 0};
        load_result *r = malloc(sizeof *r);
        if (!r) status = cli_fail("load", EXIT_ERROR, "out of memory");
        else if (!run_load(&plan, &lim, r, err, sizeof err)) status = cli_fail("load", EXIT_ERROR, "%s", err);
        else {
            if (json) print_json_report(&plan, &lim, r);
            else print_text_report(&plan, &lim, r);
            if (r->completed && r->transport_errors == r->completed) {
                describe_failure(r, err, sizeof err);
                status = cli_fail("load", EXIT_ERROR, "%s: every request failed (%s)", request_url, err);
            }
        }
        free(r);
    }
    free(body);
    free(request_url);
    return status;
}
