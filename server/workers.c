/* workers.c — libuv loop thread, bounded FIFO and worker pool (see workers.h). */
#include "server/workers.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define SCAN_INTERVAL_MS 25

struct workers {
    uv_loop_t loop;
    uv_async_t wake;
    uv_timer_t scan;
    uv_timer_t batch_wait; /* fires when a waiting head job's batch delay ends */
    pthread_t thread;

    pthread_mutex_t inbox_lock;
    job *inbox_head, *inbox_tail;

    /* loop thread only */
    job *queue_head, *queue_tail;
    worker_ctx *free_ctx;
    bool handles_closed;

    worker_ctx *contexts;
    int n_workers, queue_depth;
    int max_batch;
    double batch_delay_s;
    atomic_int waiting;      /* client jobs in the inbox and the queue */
    atomic_int warming;      /* internal (warm-up) jobs there: kept apart so that
                              * gauges and readiness see only client work */
    atomic_int running;
    atomic_bool stopping;
};

double clock_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

conv_status worker_ctx_workspace(worker_ctx *ctx, size_t bytes, void **out, conv_error *err)
{
    if (bytes > ctx->workspace_bytes || !ctx->workspace) {
        void *p = conv_aligned_alloc(bytes ? bytes : 1);
        if (!p) return conv_fail(err, CONV_OUT_OF_MEMORY, "out of memory allocating a %zu-byte workspace", bytes);
        conv_aligned_free(ctx->workspace);
        ctx->workspace = p;
        ctx->workspace_bytes = bytes;
    }
    *out = ctx->workspace;
    return CONV_OK;
}

conv_status worker_ctx_buffer(worker_ctx *ctx, int slot, size_t bytes, void **out, conv_error *err)
{
    if (bytes > ctx->buffer_bytes[slot] || !ctx->buffers[slot]) {
        void *p = conv_aligned_alloc(bytes ? bytes : 1);
        if (!p) return conv_fail(err, CONV_OUT_OF_MEMORY, "out of memory allocating a %zu-byte buffer", bytes);
        conv_aligned_free(ctx->buffers[slot]);
        ctx->buffers[slot] = p;
        ctx->buffer_bytes[slot] = bytes;
    }
    *out = ctx->buffers[slot];
    return CONV_OK;
}

static void finish(workers *w, job *j, job_outcome outcome)
{
    (void)w;
    j->outcome = outcome;
    j->done(j); /* may free j */
}

static void after_work(uv_work_t *req, int status);

static void work(uv_work_t *req)
{
    job *j = req->data;
    j->run(j, j->ctx);
    j->t_finished = clock_seconds();
}

static void close_handles_if_done(workers *w)
{
    if (w->handles_closed || !atomic_load(&w->stopping) || atomic_load(&w->running) || w->queue_head) return;
    w->handles_closed = true;
    uv_close((uv_handle_t *)&w->wake, NULL);
    uv_close((uv_handle_t *)&w->scan, NULL);
    uv_close((uv_handle_t *)&w->batch_wait, NULL);
}

static bool same_batch(const job *a, const job *b)
{
    return b->batch_key == a->batch_key && !memcmp(a->batch_dims, b->batch_dims, sizeof a->batch_dims);
}

/* A job leaves the inbox or the queue (to run, or to be answered). */
static void count_leaving(workers *w, const job *j)
{
    atomic_fetch_sub(j->internal ? &w->warming : &w->waiting, 1);
}

static bool fits(size_t batch_bytes, const job *q)
{
    return batch_bytes <= WORKERS_BATCH_MAX_BYTES && q->batch_bytes <= WORKERS_BATCH_MAX_BYTES - batch_bytes;
}

/* How many jobs head's batch would hold now (head included), up to max. */
static int count_batchable(const job *head, double now, int max)
{
    int n = 1;
    size_t bytes = head->batch_bytes;
    for (const job *q = head->next; q && n < max && fits(bytes, q); q = q->next)
        if (same_batch(head, q) && !(q->deadline > 0 && now >= q->deadline)) {
            n++;
            bytes += q->batch_bytes;
        }
    return n;
}

/* the largest batch head can be part of, given the byte budget */
static int batch_capacity(const job *head, int max_batch)
{
    if (!head->batch_bytes) return max_batch;
    size_t n = WORKERS_BATCH_MAX_BYTES / head->batch_bytes;
    return n < 1 ? 1 : n < (size_t)max_batch ? (int)n : max_batch;
}

/* Unlinks from the queue the jobs that join head (already unlinked) and
 * chains them on head->batch_next; sets every member's batch fields. */
static void gather_batch(workers *w, job *head, double now)
{
    job **link = &w->queue_head, *prev = NULL, **tail = &head->batch_next;
    int n = 1;
    size_t bytes = head->batch_bytes;
    while (*link && n < w->max_batch && fits(bytes, *link)) {
        job *q = *link;
        if (!same_batch(head, q) || (q->deadline > 0 && now >= q->deadline)) {
            prev = q;
            link = &q->next;
            continue;
        }
        *link = q->next;
        if (w->queue_tail == q) w->queue_tail = prev;
        count_leaving(w, q);
        q->next = NULL;
        q->batch_index = n++;
        bytes += q->batch_bytes;
        *tail = q;
        tail = &q->batch_next;
    }
    *tail = NULL;
    for (job *m = head; m; m = m->batch_next) m->batch_size = n;
}

static void on_batch_wait(uv_timer_t *handle);

/* A batchable head job that should wait for more company: arms the timer
 * for the rest of its delay and says so. */
static bool hold_for_batch(workers *w, job *head, double now)
{
    if (w->batch_delay_s <= 0 || !head->batch_key || w->max_batch <= 1) return false;
    double until = head->t_submitted + w->batch_delay_s;
    int capacity = batch_capacity(head, w->max_batch);
    if (capacity <= 1 || now >= until || count_batchable(head, now, capacity) >= capacity) return false;
    uint64_t ms = (uint64_t)((until - now) * 1e3) + 1;
    uv_timer_start(&w->batch_wait, on_batch_wait, ms, 0);
    return true;
}

static void dispatch(workers *w)
{
    while (w->free_ctx && w->queue_head) {
        job *j = w->queue_head;
        double now = clock_seconds();
        if (!(j->deadline > 0 && now >= j->deadline) && hold_for_batch(w, j, now)) return;
        w->queue_head = j->next;
        if (!w->queue_head) w->queue_tail = NULL;
        count_leaving(w, j);
        if (j->deadline > 0 && now >= j->deadline) {
            finish(w, j, JOB_EXPIRED);
            continue;
        }
        j->next = NULL;
        j->batch_next = NULL;
        j->batch_size = 1;
        j->batch_index = 0;
        if (j->batch_key && w->max_batch > 1) gather_batch(w, j, now);
        worker_ctx *ctx = w->free_ctx;
        w->free_ctx = ctx->next_free;
        j->ctx = ctx;
        for (job *m = j; m; m = m->batch_next) {
            m->threads = ctx->threads;
            m->t_started = now;
        }
        j->work.data = j;
        atomic_fetch_add(&w->running, j->batch_size);
        if (uv_queue_work(&w->loop, &j->work, work, after_work)) {
            /* cannot happen with a live loop; answer rather than lose the jobs */
            atomic_fetch_sub(&w->running, j->batch_size);
            ctx->next_free = w->free_ctx;
            w->free_ctx = ctx;
            for (job *m = j, *next; m; m = next) {
                next = m->batch_next;
                finish(w, m, JOB_SHUTDOWN);
            }
        }
    }
}

static void on_batch_wait(uv_timer_t *handle)
{
    dispatch(handle->data);
}

static void after_work(uv_work_t *req, int status)
{
    (void)status; /* uv_cancel is never used, so every job ran */
    job *j = req->data;
    workers *w = j->owner;
    worker_ctx *ctx = j->ctx;
    ctx->next_free = w->free_ctx;
    w->free_ctx = ctx;
    atomic_fetch_sub(&w->running, j->batch_size);
    double t_finished = j->t_finished;
    for (job *m = j, *next; m; m = next) {
        next = m->batch_next; /* done() may free m */
        m->t_finished = t_finished;
        finish(w, m, JOB_RAN);
    }
    dispatch(w);
    close_handles_if_done(w);
}

static void fail_queued(workers *w, job_outcome outcome)
{
    while (w->queue_head) {
        job *j = w->queue_head;
        w->queue_head = j->next;
        count_leaving(w, j);
        finish(w, j, outcome);
    }
    w->queue_tail = NULL;
}

static void on_wake(uv_async_t *handle)
{
    workers *w = handle->data;
    pthread_mutex_lock(&w->inbox_lock);
    job *incoming = w->inbox_head;
    w->inbox_head = w->inbox_tail = NULL;
    pthread_mutex_unlock(&w->inbox_lock);
    bool stopping = atomic_load(&w->stopping);
    /* warm-up jobs neither wait for room nor take room from clients */
    int queued = 0;
    for (job *q = w->queue_head; q; q = q->next) queued += !q->internal;
    while (incoming) {
        job *j = incoming;
        incoming = j->next;
        j->next = NULL;
        if (stopping || (!j->internal && queued >= w->queue_depth)) {
            count_leaving(w, j);
            finish(w, j, stopping ? JOB_SHUTDOWN : JOB_QUEUE_FULL);
            continue;
        }
        if (w->queue_tail) w->queue_tail->next = j;
        else w->queue_head = j;
        w->queue_tail = j;
        queued += !j->internal;
    }
    dispatch(w);
    if (stopping) fail_queued(w, JOB_SHUTDOWN);
    close_handles_if_done(w);
}

/* EOF or a reset on a socket whose request has been read in full means the
 * client is gone; pending bytes (a pipelined request) mean it is not. */
static bool client_gone(int fd)
{
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) return true;
    return n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
}

static void on_scan(uv_timer_t *handle)
{
    workers *w = handle->data;
    double now = clock_seconds();
    job **link = &w->queue_head, *prev = NULL;
    while (*link) {
        job *j = *link;
        job_outcome outcome = JOB_PENDING;
        if (j->deadline > 0 && now >= j->deadline) outcome = JOB_EXPIRED;
        else if (j->watch_fd >= 0 && client_gone(j->watch_fd)) outcome = JOB_CANCELLED;
        if (outcome == JOB_PENDING) {
            prev = j;
            link = &j->next;
            continue;
        }
        *link = j->next;
        if (w->queue_tail == j) w->queue_tail = prev;
        count_leaving(w, j);
        finish(w, j, outcome);
    }
}

static void *loop_main(void *arg)
{
    workers *w = arg;
    uv_run(&w->loop, UV_RUN_DEFAULT);
    return NULL;
}

static void destroy_contexts(workers *w)
{
    for (int i = 0; i < w->n_workers; i++) {
        conv_threadpool_destroy(w->contexts[i].pool);
        conv_aligned_free(w->contexts[i].workspace);
        for (int b = 0; b < 2; b++) conv_aligned_free(w->contexts[i].buffers[b]);
        if (w->contexts[i].user_free) w->contexts[i].user_free(w->contexts[i].user);
    }
    free(w->contexts);
}

workers *workers_create(int n_workers, int threads_per_job, int queue_depth, conv_error *err)
{
    workers *w = calloc(1, sizeof *w);
    if (!w) {
        conv_fail(err, CONV_OUT_OF_MEMORY, "out of memory creating the worker pool");
        return NULL;
    }
    w->n_workers = n_workers;
    w->queue_depth = queue_depth;
    w->max_batch = 1;
    w->contexts = calloc((size_t)n_workers, sizeof *w->contexts);
    if (!w->contexts) {
        free(w);
        conv_fail(err, CONV_OUT_OF_MEMORY, "out of memory creating the worker pool");
        return NULL;
    }
    for (int i = 0; i < n_workers; i++) {
        worker_ctx *c = &w->contexts[i];
        c->threads = threads_per_job;
        if (conv_threadpool_create(threads_per_job, &c->pool, err)) {
            destroy_contexts(w);
            free(w);
            return NULL;
        }
        c->next_free = w->free_ctx;
        w->free_ctx = c;
    }
    /* libuv sizes its (process-wide) thread pool from this on first use */
    char size[16];
    snprintf(size, sizeof size, "%d", n_workers);
    setenv("UV_THREADPOOL_SIZE", size, 1);
    pthread_mutex_init(&w->inbox_lock, NULL);
    int rc = uv_loop_init(&w->loop);
    if (!rc) rc = uv_async_init(&w->loop, &w->wake, on_wake);
    if (!rc) rc = uv_timer_init(&w->loop, &w->scan);
    if (!rc) rc = uv_timer_start(&w->scan, on_scan, SCAN_INTERVAL_MS, SCAN_INTERVAL_MS);
    if (!rc) rc = uv_timer_init(&w->loop, &w->batch_wait);
    w->wake.data = w->scan.data = w->batch_wait.data = w;
    if (rc || pthread_create(&w->thread, NULL, loop_main, w)) {
        conv_fail(err, CONV_OUT_OF_MEMORY, "cannot start the job loop: %s", rc ? uv_strerror(rc) : "pthread_create");
        destroy_contexts(w);
        free(w); /* the half-initialised loop is abandoned: start-up fails and the process exits */
        return NULL;
    }
    return w;
}

void workers_set_batching(workers *w, int max_batch, long batch_delay_us)
{
    w->max_batch = max_batch > 1 ? max_batch : 1;
    w->batch_delay_s = batch_delay_us > 0 ? (double)batch_delay_us * 1e-6 : 0;
}

void workers_submit(workers *w, job *j)
{
    j->owner = w;
    j->next = NULL;
    j->outcome = JOB_PENDING;
    j->t_submitted = clock_seconds();
    pthread_mutex_lock(&w->inbox_lock);
    if (w->inbox_tail) w->inbox_tail->next = j;
    else w->inbox_head = j;
    w->inbox_tail = j;
    atomic_fetch_add(j->internal ? &w->warming : &w->waiting, 1);
    pthread_mutex_unlock(&w->inbox_lock);
    uv_async_send(&w->wake);
}

int workers_queued(const workers *w)
{
    return atomic_load(&w->waiting);
}

int workers_running(const workers *w)
{
    return atomic_load(&w->running);
}

int workers_queue_limit(const workers *w)
{
    return w->queue_depth;
}

bool workers_wait_idle(workers *w, double timeout_s)
{
    double end = clock_seconds() + timeout_s;
    for (;;) {
        if (!atomic_load(&w->waiting) && !atomic_load(&w->warming) && !atomic_load(&w->running)) return true;
        if (clock_seconds() >= end) return false;
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

void workers_destroy(workers *w)
{
    if (!w) return;
    atomic_store(&w->stopping, true);
    uv_async_send(&w->wake);
    pthread_join(w->thread, NULL);
    uv_loop_close(&w->loop);
    pthread_mutex_destroy(&w->inbox_lock);
    destroy_contexts(w);
    free(w);
}
