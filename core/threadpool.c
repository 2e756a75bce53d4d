/* threadpool.c — a fixed pool for intra-operator parallelism.
 *
 * One job at a time: conv_parallel_for publishes (fn, ctx, n) under the
 * mutex, bumps a generation counter and wakes the workers; everybody, the
 * caller included, claims indices from an atomic counter until none are
 * left. The caller then waits until every worker has checked out of the
 * generation, so ctx may live on the caller's stack. A pool is owned by one
 * caller at a time (the server gives each worker its own pool). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "core/conv.h"

struct conv_threadpool {
    int size; /* threads including the caller */
    pthread_t *threads;
    pthread_mutex_t mutex;
    pthread_cond_t wake;
    pthread_cond_t done;
    unsigned long generation;
    int active; /* workers still inside the current generation */
    bool stopping;
    conv_task_fn fn;
    void *ctx;
    size_t n;
    atomic_size_t next;
};

typedef struct worker_arg {
    conv_threadpool *pool;
    int index;
} worker_arg;

static void drain(conv_threadpool *pool, int thread)
{
    for (;;) {
        size_t i = atomic_fetch_add_explicit(&pool->next, 1, memory_order_relaxed);
        if (i >= pool->n) break;
        pool->fn(pool->ctx, i, thread);
    }
}

static void *worker_main(void *p)
{
    worker_arg *arg = p;
    conv_threadpool *pool = arg->pool;
    int index = arg->index;
    free(arg);
    unsigned long seen = 0;
    pthread_mutex_lock(&pool->mutex);
    for (;;) {
        while (!pool->stopping && pool->generation == seen) pthread_cond_wait(&pool->wake, &pool->mutex);
        if (pool->stopping) break;
        seen = pool->generation;
        pthread_mutex_unlock(&pool->mutex);
        drain(pool, index);
        pthread_mutex_lock(&pool->mutex);
        if (--pool->active == 0) pthread_cond_signal(&pool->done);
    }
    pthread_mutex_unlock(&pool->mutex);
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
    atomic_init(&pool->next, 0);
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
    if (!pool || pool->size == 1 || n == 1) {
        for (size_t i = 0; i < n; i++) fn(ctx, i, 0);
        return;
    }
    pthread_mutex_lock(&pool->mutex);
    pool->fn = fn;
    pool->ctx = ctx;
    pool->n = n;
    atomic_store_explicit(&pool->next, 0, memory_order_relaxed);
    pool->active = pool->size - 1;
    pool->generation++;
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mutex);

    drain(pool, 0);

    pthread_mutex_lock(&pool->mutex);
    while (pool->active > 0) pthread_cond_wait(&pool->done, &pool->mutex);
    pthread_mutex_unlock(&pool->mutex);
}
