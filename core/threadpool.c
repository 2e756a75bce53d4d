/* threadpool.c — a fixed pool for intra-operator parallelism.
 *
 * One job at a time: conv_parallel_for publishes (fn, ctx, n) and a new
 * generation; everybody, the caller included, claims indices until none are
 * left, and the caller returns once every claimed index has finished, so ctx
 * may live on the caller's stack. A pool is owned by one caller at a time
 * (the server gives each worker its own pool).
 *
 * Why it spins: on this class of machine (a KVM guest) waking a sleeping
 * thread costs 10-20 us, as much as a small layer's whole run, and a plain
 * condition-variable pool paid it twice per call (the worker's wake-up, then
 * the caller's). So the caller spins while the last indices finish, and
 * workers spin for a short while after a job before they sleep, which catches
 * the next layer of a model or the next request's run. Both spins are
 * bounded, so a pool whose caller went away costs no CPU.
 *
 * A worker that wakes late must not run an index of a job it was not part of:
 * the claim counter carries the generation in its high half and indices are
 * claimed by compare-and-swap, so a claim against a finished generation
 * fails instead of stealing an index of the next. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

#include "core/conv.h"

/* How long an idle worker watches for the next job before it sleeps, and how
 * long the caller watches for the last indices before it sleeps. A model's
 * layers follow each other within a few microseconds; a worker's preemption
 * lasts milliseconds, so spinning longer than this would only burn CPU. */
#define WORKER_SPIN_NS 100000
#define CALLER_SPIN_NS 200000
#define CLAIM_CLOSED 0xffffffffu /* index of a generation that is over */

struct conv_threadpool {
    int size; /* threads including the caller */
    pthread_t *threads;
    pthread_mutex_t mutex;
    pthread_cond_t wake;
    pthread_cond_t done;
    bool stopping;
    conv_task_fn fn;
    void *ctx;
    atomic_size_t n; /* written before the generation that it belongs to is published */
    /* generation << 32 | next index to claim */
    _Atomic uint64_t claim;
    atomic_size_t finished;      /* indices of the current job that returned */
    atomic_int sleepers;         /* workers blocked on wake (under mutex) */
    atomic_bool caller_sleeping; /* the caller is blocked on done (under mutex) */
    atomic_bool stop_flag;
};

typedef struct worker_arg {
    conv_threadpool *pool;
    int index;
} worker_arg;

static uint64_t monotonic_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static uint32_t generation_of(uint64_t claim) { return (uint32_t)(claim >> 32); }

/* Runs indices of generation gen until none are left or another generation
 * has begun. */
static void drain(conv_threadpool *pool, uint32_t gen, int thread)
{
    uint64_t cur = atomic_load_explicit(&pool->claim, memory_order_acquire);
    for (;;) {
        if (generation_of(cur) != gen) return;
        uint64_t index = cur & 0xffffffffu;
        /* acquire: a new n is seen only with the closing of its predecessor */
        size_t n = atomic_load_explicit(&pool->n, memory_order_acquire);
        if (index >= n) return;
        if (!atomic_compare_exchange_weak_explicit(&pool->claim, &cur, cur + 1, memory_order_acq_rel,
                                                   memory_order_acquire))
            continue;
        /* The job cannot end (and fn, ctx, n be replaced) before this index
         * finishes, so reading them after the claim is safe. */
        pool->fn(pool->ctx, (size_t)index, thread);
        /* seq_cst pairs with the caller's announce-then-recheck before it sleeps. */
        size_t finished = atomic_fetch_add_explicit(&pool->finished, 1, memory_order_seq_cst) + 1;
        if (finished == n && atomic_load_explicit(&pool->caller_sleeping, memory_order_seq_cst)) {
            pthread_mutex_lock(&pool->mutex);
            pthread_cond_signal(&pool->done);
            pthread_mutex_unlock(&pool->mutex);
        }
        cur = atomic_load_explicit(&pool->claim, memory_order_acquire);
    }
}

static void *worker_main(void *p)
{
    worker_arg *arg = p;
    conv_threadpool *pool = arg->pool;
    int index = arg->index;
    free(arg);
    uint32_t seen = 0;
    for (;;) {
        uint32_t gen = generation_of(atomic_load_explicit(&pool->claim, memory_order_acquire));
        if (gen == seen && !atomic_load_explicit(&pool->stop_flag, memory_order_acquire)) {
            uint64_t deadline = monotonic_ns() + WORKER_SPIN_NS;
            for (unsigned spins = 1;; spins++) {
                CPU_RELAX();
                gen = generation_of(atomic_load_explicit(&pool->claim, memory_order_acquire));
                if (gen != seen || atomic_load_explicit(&pool->stop_flag, memory_order_acquire)) break;
                if (spins % 64 == 0 && monotonic_ns() > deadline) break;
            }
        }
        if (gen == seen) {
            pthread_mutex_lock(&pool->mutex);
            atomic_fetch_add_explicit(&pool->sleepers, 1, memory_order_seq_cst);
            /* seq_cst pairs with the caller's publish-then-read-sleepers: either
             * it sees this sleeper and broadcasts under the mutex, or this
             * re-check sees its new generation. */
            while (!pool->stopping &&
                   generation_of(atomic_load_explicit(&pool->claim, memory_order_seq_cst)) == seen)
                pthread_cond_wait(&pool->wake, &pool->mutex);
            atomic_fetch_sub_explicit(&pool->sleepers, 1, memory_order_seq_cst);
            bool stop = pool->stopping;
            pthread_mutex_unlock(&pool->mutex);
            if (stop) break;
            gen = generation_of(atomic_load_explicit(&pool->claim, memory_order_acquire));
        }
        if (atomic_load_explicit(&pool->stop_flag, memory_order_acquire)) break;
        seen = gen;
        drain(pool, gen, index);
    }
    return NULL;
}

conv_status conv_threadpool_create(int threads, conv_threadpool **out, conv_error *err)
{
    *out = NULL;
    if (threads < 1 || threads > 1024)
        return conv_fail(err, CONV_INVALID_PARAMETER, "threads must be in 1..1024, got %d", threads);
    conv_threadpool *pool = calloc(1, sizeof *pool);
    if (!pool) return conv_fail(err, CONV_OUT_OF_MEMORY, "out of memory creating a thread pool");
    pool->size = threads;
    atomic_init(&pool->claim, 0);
    atomic_init(&pool->finished, 0);
    atomic_init(&pool->n, 0);
    atomic_init(&pool->sleepers, 0);
    atomic_init(&pool->caller_sleeping, false);
    atomic_init(&pool->stop_flag, false);
    pthread_mutex_init(&pool->mutex, NULL);
    pthread_cond_init(&pool->wake, NULL);
    pthread_cond_init(&pool->done, NULL);
    if (threads > 1) {
        pool->threads = calloc((size_t)threads - 1, sizeof *pool->threads);
        if (!pool->threads) {
            conv_threadpool_destroy(pool);
            return conv_fail(err, CONV_OUT_OF_MEMORY, "out of memory creating a thread pool");
        }
    }
    for (int i = 1; i < threads; i++) {
        worker_arg *arg = malloc(sizeof *arg);
        if (arg) {
            arg->pool = pool;
            arg->index = i;
        }
        if (!arg || pthread_create(&pool->threads[i - 1], NULL, worker_main, arg) != 0) {
            free(arg);
            pool->size = i; /* destroy joins only the threads that started */
            conv_threadpool_destroy(pool);
            return conv_fail(err, CONV_OUT_OF_MEMORY, "cannot start thread %d of %d", i, threads);
        }
    }
    *out = pool;
    return CONV_OK;
}

void conv_threadpool_destroy(conv_threadpool *pool)
{
    if (!pool) return;
    pthread_mutex_lock(&pool->mutex);
    pool->stopping = true;
    atomic_store_explicit(&pool->stop_flag, true, memory_order_seq_cst);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mutex);
    for (int i = 1; i < pool->size; i++) pthread_join(pool->threads[i - 1], NULL);
    pthread_mutex_destroy(&pool->mutex);
    pthread_cond_destroy(&pool->wake);
    pthread_cond_destroy(&pool->done);
    free(pool->threads);
    free(pool);
}

int conv_threadpool_size(const conv_threadpool *pool) { return pool ? pool->size : 1; }

void conv_parallel_for(conv_threadpool *pool, size_t n, conv_task_fn fn, void *ctx)
{
    if (n == 0) return;
    if (!pool || pool->size == 1 || n == 1 || n >= CLAIM_CLOSED) {
        for (size_t i = 0; i < n; i++) fn(ctx, i, 0);
        return;
    }
    /* Close the finished generation before n changes: a late worker holding
     * its last claim word could otherwise pass the index check against the
     * new n and claim an index of a job it is not part of. */
    uint32_t gen = generation_of(atomic_load_explicit(&pool->claim, memory_order_relaxed));
    atomic_store_explicit(&pool->claim, (uint64_t)gen << 32 | CLAIM_CLOSED, memory_order_relaxed);
    atomic_store_explicit(&pool->n, n, memory_order_release);
    pool->fn = fn;
    pool->ctx = ctx;
    atomic_store_explicit(&pool->finished, 0, memory_order_relaxed);
    gen++;
    /* The release publishes fn, ctx and n with the new generation. */
    atomic_store_explicit(&pool->claim, (uint64_t)gen << 32, memory_order_seq_cst);
    if (atomic_load_explicit(&pool->sleepers, memory_order_seq_cst) > 0) {
        pthread_mutex_lock(&pool->mutex);
        pthread_cond_broadcast(&pool->wake);
        pthread_mutex_unlock(&pool->mutex);
    }

    drain(pool, gen, 0);

    if (atomic_load_explicit(&pool->finished, memory_order_acquire) == n) return;
    uint64_t deadline = monotonic_ns() + CALLER_SPIN_NS;
    for (unsigned spins = 1; atomic_load_explicit(&pool->finished, memory_order_acquire) != n; spins++) {
        CPU_RELAX();
        if (spins % 64 == 0 && monotonic_ns() > deadline) {
            pthread_mutex_lock(&pool->mutex);
            atomic_store_explicit(&pool->caller_sleeping, true, memory_order_seq_cst);
            while (atomic_load_explicit(&pool->finished, memory_order_seq_cst) != n)
                pthread_cond_wait(&pool->done, &pool->mutex);
            atomic_store_explicit(&pool->caller_sleeping, false, memory_order_relaxed);
            pthread_mutex_unlock(&pool->mutex);
            break;
        }
    }
}
