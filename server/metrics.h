/* metrics.h — counters, gauges and histograms served at GET /metrics in the
 * Prometheus text format (version 0.0.4).
 *
 * Design: one mutex guards everything; updates are a few additions, taken
 * once per request from the HTTP thread (request counters) and once per job
 * from the loop thread (queue/compute times). Gauges are sampled from the
 * job queue when /metrics is rendered, so they cannot drift. */
#ifndef CONVD_SERVER_METRICS_H
#define CONVD_SERVER_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct metrics metrics;

metrics *metrics_create(void); /* NULL when out of memory */
void metrics_destroy(metrics *m);

/* route is a pattern such as "/v1/models/{name}/infer" with static storage. */
void metrics_observe_request(metrics *m, const char *route, int status, double seconds);
/* a job that ran: model may be NULL (inline requests) */
void metrics_observe_job(metrics *m, const char *model, double queue_seconds, double compute_seconds, int64_t flops);
void metrics_count_cancelled(metrics *m);
/* one model run of size jobs (dynamic batching; 1 when a job ran alone) */
void metrics_observe_batch(metrics *m, int size);

/* Renders all metrics; *out is malloc'ed, NUL-terminated. NULL when out of memory. */
char *metrics_render(metrics *m, int queue_depth, int inflight_jobs, size_t *len);

#endif
