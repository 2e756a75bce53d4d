/* test_threadpool_tsan.c — the intra-operator thread pool under ThreadSanitizer:
 * many short jobs back to back on pools of 2-5 threads, so late workers race
 * the next job's start; every index must run exactly once and TSan must see no
 * data race (built and run by make test, see the Makefile's tsan rule). */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "core/conv.h"

#define MAX_TASKS 48

typedef struct stress_job {
    atomic_int hits[MAX_TASKS];
    unsigned work;
    float partial[MAX_TASKS]; /* written by the tasks, read by the caller after the job */
} stress_job;

static void stress_task(void *ctx, size_t i, int thread)
{
    (void)thread;
    stress_job *job = ctx;
    float acc = 1.0f;
    for (unsigned k = 0; k < job->work; k++) acc = acc * 1.0000001f + 0.5f;
    job->partial[i] = acc;
    atomic_fetch_add_explicit(&job->hits[i], 1, memory_order_relaxed);
}

int main(void)
{
    uint32_t lcg = 2024;
    long jobs = 0;
    for (int round = 0; round < 16; round++) {
        int threads = 2 + round % 4;
        conv_threadpool *pool;
        conv_error err;
        if (conv_threadpool_create(threads, &pool, &err) != CONV_OK) {
            fprintf(stderr, "pool of %d threads: %s\n", threads, err.message);
            return 1;
        }
        for (int j = 0; j < 1000; j++, jobs++) {
            lcg = lcg * 1664525u + 1013904223u;
            stress_job job;
            size_t n = (lcg >> 8) % MAX_TASKS + 1;
            for (size_t i = 0; i < MAX_TASKS; i++) {
                atomic_init(&job.hits[i], 0);
                job.partial[i] = 0.0f;
            }
            job.work = (lcg >> 20) % 3 == 0 ? (lcg >> 4) % 3000 : 0;
            if (j % 250 == 249) { /* longer than the workers spin: they go to sleep */
                struct timespec pause = {0, 400 * 1000};
                nanosleep(&pause, NULL);
            }
            conv_parallel_for(pool, n, stress_task, &job);
            for (size_t i = 0; i < MAX_TASKS; i++) {
                int hits = atomic_load_explicit(&job.hits[i], memory_order_relaxed);
                if (hits != (i < n ? 1 : 0) || (i < n && job.partial[i] == 0.0f)) {
                    fprintf(stderr, "round %d job %d (n %zu, %d threads): index %zu ran %d times\n", round, j, n,
                            threads, i, hits);
                    return 1;
                }
            }
        }
        conv_threadpool_destroy(pool);
    }
    printf("%ld jobs, every index exactly once\n", jobs);
    return 0;
}
