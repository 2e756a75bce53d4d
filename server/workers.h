/* workers.h — the job queue between the HTTP thread and the computation.
 *
 * Design (threads, order, ownership):
 *   - Any thread calls workers_submit(): the job goes into a mutex-guarded
 *     inbox and the loop thread is woken with uv_async_send.
 *   - One libuv loop thread owns the bounded FIFO queue. It moves inbox jobs
 *     to the queue (refusing them with JOB_QUEUE_FULL past queue_depth) and
 *     starts at most n_workers jobs at once with uv_queue_work, in arrival
 *     order. UV_THREADPOOL_SIZE is set to n_workers before the first one.
 *   - A running job borrows a worker_ctx (a conv_threadpool of
 *     threads_per_job threads and a workspace that only grows) from a free
 *     list that only the loop thread touches.
 *   - A timer on the loop thread (every 25 ms) answers queued jobs whose
 *     deadline passed (JOB_EXPIRED) and those whose client socket was closed
 *     (JOB_CANCELLED, found with a non-blocking MSG_PEEK that reads EOF).
 *   - job->done runs on the loop thread exactly once per submitted job,
 *     whatever the outcome; after it the pool never touches the job again,
 *     so done() may hand it back to its owner. The submitter owns the job.
 *   - Dynamic batching (workers_set_batching, max_batch > 1): when a job
 *     with a batch_key reaches the head of the queue, the loop thread takes
 *     with it the queued jobs of equal batch_key and batch_dims, up to
 *     max_batch in all, and starts them as one work item: the head job's
 *     run() computes every job on the batch_next chain, and each still gets
 *     its own done(). With batch_delay_us > 0 the head waits (and blocks the
 *     FIFO behind it) until the batch is full or it has waited that long;
 *     the wait is timed by a libuv timer, so it is rounded up to whole ms.
 *     A batch also stops growing once its jobs' batch_bytes add up to more
 *     than WORKERS_BATCH_MAX_BYTES: the kernels do the same work per image
 *     at any N (Winograd and the GEMMs block per image), so a batch saves
 *     only the per-job hand-off, while its one long run is preempted more
 *     often on a busy small machine and refills its caches each time (a
 *     batched image cost 2.3 ms of CPU against 1.8 ms alone; with wino_gemm
 *     1.24-1.29 against 0.95-1.05 ms: bench/RESULTS.md, "Dynamic batching").
 *     Batching pays only for jobs whose per-request costs outweigh their
 *     computation.
 */
#ifndef WORKERS_BATCH_MAX_BYTES /* overridable for measurements (bench/RESULTS.md) */
#define WORKERS_BATCH_MAX_BYTES ((size_t)1 << 20)
#endif
#ifndef CONVD_SERVER_WORKERS_H
#define CONVD_SERVER_WORKERS_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "core/conv.h"

typedef struct worker_ctx {
    conv_threadpool *pool;
    int threads;
    void *workspace;
    size_t workspace_bytes;
    /* grow-only scratch a job may use besides the workspace (an output, a
     * batch's joined input), so a steady load allocates nothing per job */
    void *buffers[2];
    size_t buffer_bytes[2];
    /* what a job's code keeps per worker between jobs (touched only by the
     * thread running on this context); freed with user_free at destroy */
    void *user;
    void (*user_free)(void *user);
    struct worker_ctx *next_free;
} worker_ctx;

/* A workspace of at least bytes for this context (grown, never shrunk;
 * contents not kept). CONV_OUT_OF_MEMORY when it cannot grow. */
conv_status worker_ctx_workspace(worker_ctx *ctx, size_t bytes, void **out, conv_error *err);

enum { WORKER_BUF_OUTPUT = 0, WORKER_BUF_INPUT = 1 };
/* The same for scratch buffer slot (WORKER_BUF_*), CONV_ALIGNMENT-aligned. */
conv_status worker_ctx_buffer(worker_ctx *ctx, int slot, size_t bytes, void **out, conv_error *err);

typedef enum job_outcome {
    JOB_PENDING = 0,
    JOB_RAN,        /* run() was called */
    JOB_QUEUE_FULL, /* refused: queue_depth jobs were already waiting */
    JOB_EXPIRED,    /* still queued at its deadline */
    JOB_CANCELLED,  /* the client hung up while it was queued */
    JOB_SHUTDOWN,   /* the pool stopped before it ran */
} job_outcome;

typedef struct job job;
struct job {
    /* set by the submitter */
    void (*run)(job *j, worker_ctx *ctx); /* on a worker thread */
    void (*done)(job *j);                 /* on the loop thread, exactly once */
    double deadline;                      /* clock_seconds(); 0 = none */
    int watch_fd;                         /* client socket to watch while queued; -1 = none */
    bool internal;                        /* warm-up jobs: never refused for a full queue */
    const void *batch_key;                /* NULL: never batched */
    int64_t batch_dims[4];                /* jobs batch only with equal key and dims */
    size_t batch_bytes;                   /* memory one run of this job alone touches */
    /* set by the pool */
    job_outcome outcome;
    double t_submitted, t_started, t_finished; /* clock_seconds() */
    int threads;                               /* threads of the context it ran with */
    job *batch_next;                           /* the rest of its batch (head job only) */
    int batch_size;                            /* jobs in the run it was part of (1: alone) */
    int batch_index;                           /* its place in that run, 0 = the head */
    /* private to the pool */
    job *next;
    uv_work_t work;
    worker_ctx *ctx;
    struct workers *owner;
};

typedef struct workers workers;

/* Starts the loop thread. NULL with err filled on failure. */
workers *workers_create(int n_workers, int threads_per_job, int queue_depth, conv_error *err);
/* Before the first workers_submit: max_batch jobs at most per run (1 = off)
 * and how long a head job may wait for more (0 = take what is queued). */
void workers_set_batching(workers *w, int max_batch, long batch_delay_us);
void workers_submit(workers *w, job *j);
int workers_queued(const workers *w);  /* client jobs waiting (inbox and queue); warm-ups not counted */
int workers_running(const workers *w); /* computing now */
int workers_queue_limit(const workers *w);
/* Waits until nothing is queued or running; false if timeout_s passed first. */
bool workers_wait_idle(workers *w, double timeout_s);
/* Answers queued jobs with JOB_SHUTDOWN, waits for running ones, stops the
 * loop thread and frees everything. */
void workers_destroy(workers *w);

/* CLOCK_MONOTONIC in seconds */
double clock_seconds(void);

#endif
