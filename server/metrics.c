/* metrics.c — Prometheus text exposition of the daemon's counters (see metrics.h). */
#include "server/metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Seconds; chosen around the expected range of one inference (sub-ms to tens of seconds). */
static const double bucket_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                       0.25,   0.5,   1,      2.5,   5,    10,    30,    60};
#define N_BUCKETS (sizeof bucket_bounds / sizeof bucket_bounds[0])

typedef struct histogram {
    uint64_t buckets[N_BUCKETS]; /* non-cumulative; summed when rendered */
    uint64_t count;
    double sum;
} histogram;

/* batch sizes: powers of two up to the largest --max-batch worth having */
static const unsigned batch_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128};
#define N_BATCH_BUCKETS (sizeof batch_bounds / sizeof batch_bounds[0])

typedef struct request_counter {
    const char *route;
    int status;
    uint64_t count;
} request_counter;

typedef struct model_counter {
    char *model;
    uint64_t count;
} model_counter;

struct metrics {
    pthread_mutex_t lock;
    request_counter *requests;
    size_t n_requests, cap_requests;
    model_counter *models;
    size_t n_models, cap_models;
    histogram queue, compute, request;
    uint64_t flops_total;
    uint64_t cancelled;
    uint64_t batch_buckets[N_BATCH_BUCKETS + 1]; /* the last one: above every bound */
    uint64_t batch_count, batch_sum;
};

metrics *metrics_create(void)
{
    metrics *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    pthread_mutex_init(&m->lock, NULL);
    return m;
}

void metrics_destroy(metrics *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->n_models; i++) free(m->models[i].model);
    free(m->models);
    free(m->requests);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static void observe(histogram *h, double v)
{
    for (size_t b = 0; b < N_BUCKETS; b++)
        if (v <= bucket_bounds[b]) {
            h->buckets[b]++;
            break;
        }
    h->count++;
    h->sum += v;
}

/* Grows an array by doubling; false when out of memory (the sample is then dropped). */
static bool reserve(void **items, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap) return true;
    size_t n = *cap ? *cap * 2 : 16;
    void *p = realloc(*items, n * size);
    if (!p) return false;
    *items = p;
    *cap = n;
    return true;
}

void metrics_observe_request(metrics *m, const char *route, int status, double seconds)
{
    pthread_mutex_lock(&m->lock);
    observe(&m->request, seconds);
    size_t i = 0;
    while (i < m->n_requests && !(m->requests[i].route == route && m->requests[i].status == status)) i++;
    if (i == m->n_requests && reserve((void **)&m->requests, &m->cap_requests, i + 1, sizeof *m->requests))
        m->requests[m->n_requests++] = (request_counter){route, status, 0};
    if (i < m->n_requests) m->requests[i].count++;
    pthread_mutex_unlock(&m->lock);
}

void metrics_observe_job(metrics *m, const char *model, double queue_seconds, double compute_seconds, int64_t flops)
{
    pthread_mutex_lock(&m->lock);
    observe(&m->queue, queue_seconds);
    observe(&m->compute, compute_seconds);
    if (flops > 0) m->flops_total += (uint64_t)flops;
    if (model) {
        size_t i = 0;
        while (i < m->n_models && strcmp(m->models[i].model, model)) i++;
        if (i == m->n_models && reserve((void **)&m->models, &m->cap_models, i + 1, sizeof *m->models)) {
            char *copy = strdup(model);
            if (copy) m->models[m->n_models++] = (model_counter){copy, 0};
        }
        if (i < m->n_models) m->models[i].count++;
    }
    pthread_mutex_unlock(&m->lock);
}

void metrics_count_cancelled(metrics *m)
{
    pthread_mutex_lock(&m->lock);
    m->cancelled++;
    pthread_mutex_unlock(&m->lock);
}

typedef struct text_buf {
    char *data;
    size_t len, cap;
    bool failed;
} text_buf;

static void emit(text_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void emit(text_buf *b, const char *fmt, ...)
{
    if (b->failed) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = true;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)n;
        char *p = realloc(b->data, cap);
        if (!p) {
            b->failed = true;
            return;
        }
        b->data = p;
        b->cap = cap;
    }
}

/* Label values are route patterns and model names ([A-Za-z0-9._-]), which
 * need no escaping; a quote or backslash would still be escaped here. */
static void emit_label_value(text_buf *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '"' || *v == '\\') emit(b, "\\%c", *v);
        else if (*v == '\n') emit(b, "\\n");
        else emit(b, "%c", *v);
    }
}

static void emit_histogram(text_buf *b, const char *name, const char *help, const histogram *h)
{
    emit(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cumulative = 0;
    for (size_t i = 0; i < N_BUCKETS; i++) {
        cumulative += h->buckets[i];
        emit(b, "%s_bucket{le=\"%g\"} %llu\n", name, bucket_bounds[i], (unsigned long long)cumulative);
    }
    emit(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.9g\n%s_count %llu\n", name, (unsigned long long)h->count, name,
         h->sum, name, (unsigned long long)h->count);
}

void metrics_observe_batch(metrics *m, int size)
{
    size_t b = 0;
    while (b < N_BATCH_BUCKETS && (unsigned)size > batch_bounds[b]) b++;
    pthread_mutex_lock(&m->lock);
    m->batch_buckets[b]++;
    m->batch_count++;
    m->batch_sum += (uint64_t)size;
    pthread_mutex_unlock(&m->lock);
}

static void emit_batch_histogram(text_buf *b, const metrics *m)
{
    emit(b, "# HELP convd_batch_size Jobs per model run (dynamic batching; 1 = ran alone).\n"
            "# TYPE convd_batch_size histogram\n");
    uint64_t cumulative = 0;
    for (size_t i = 0; i < N_BATCH_BUCKETS; i++) {
        cumulative += m->batch_buckets[i];
        emit(b, "convd_batch_size_bucket{le=\"%u\"} %llu\n", batch_bounds[i], (unsigned long long)cumulative);
    }
    emit(b, "convd_batch_size_bucket{le=\"+Inf\"} %llu\nconvd_batch_size_sum %llu\nconvd_batch_size_count %llu\n",
         (unsigned long long)m->batch_count, (unsigned long long)m->batch_sum, (unsigned long long)m->batch_count);
}

char *metrics_render(metrics *m, int queue_depth, int inflight_jobs, size_t *len)
{
    text_buf b = {.data = malloc(4096), .cap = 4096};
    if (!b.data) return NULL;
    b.data[0] = 0;
    pthread_mutex_lock(&m->lock);
    emit(&b, "# HELP convd_requests_total HTTP requests answered, by route pattern and status.\n"
             "# TYPE convd_requests_total counter\n");
    for (size_t i = 0; i < m->n_requests; i++) {
        emit(&b, "convd_requests_total{route=\"");
        emit_label_value(&b, m->requests[i].route);
        emit(&b, "\",status=\"%d\"} %llu\n", m->requests[i].status, (unsigned long long)m->requests[i].count);
    }
    emit_histogram(&b, "convd_queue_seconds", "Time jobs waited in the queue.", &m->queue);
    emit_histogram(&b, "convd_compute_seconds", "Time jobs spent computing on a worker.", &m->compute);
    emit_histogram(&b, "convd_request_seconds", "Time from request arrival to reply.", &m->request);
    emit_batch_histogram(&b, m);
    emit(&b, "# HELP convd_queue_depth Jobs waiting for a worker.\n# TYPE convd_queue_depth gauge\nconvd_queue_depth %d\n",
         queue_depth);
    emit(&b, "# HELP convd_inflight_jobs Jobs computing now.\n# TYPE convd_inflight_jobs gauge\nconvd_inflight_jobs %d\n",
         inflight_jobs);
    emit(&b, "# HELP convd_flops_total Floating-point operations computed.\n# TYPE convd_flops_total counter\n"
             "convd_flops_total %llu\n",
         (unsigned long long)m->flops_total);
    emit(&b, "# HELP convd_jobs_cancelled_total Queued jobs dropped because the client disconnected.\n"
             "# TYPE convd_jobs_cancelled_total counter\nconvd_jobs_cancelled_total %llu\n",
         (unsigned long long)m->cancelled);
    emit(&b, "# HELP convd_model_requests_total Inference jobs run, by repository model.\n"
             "# TYPE convd_model_requests_total counter\n");
    for (size_t i = 0; i < m->n_models; i++) {
        emit(&b, "convd_model_requests_total{model=\"");
        emit_label_value(&b, m->models[i].model);
        emit(&b, "\"} %llu\n", (unsigned long long)m->models[i].count);
    }
    pthread_mutex_unlock(&m->lock);
    if (b.failed) {
        free(b.data);
        return NULL;
    }
    *len = b.len;
    return b.data;
}
