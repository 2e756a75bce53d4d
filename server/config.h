/* config.h — `convd serve` settings: flags, CONVD_* environment variables
 * (flags win) and defaults derived from the machine (CPU count). */
#ifndef CONVD_SERVER_CONFIG_H
#define CONVD_SERVER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "server/log.h"

typedef struct serve_config {
    const char *host;        /* --host, default 127.0.0.1 */
    long port;               /* --port, default 8080; 0 = ephemeral */
    const char *models;      /* --models DIR, NULL = empty repository */
    long workers;            /* --workers, default: usable CPUs */
    long threads_per_job;    /* --threads-per-job, default 1 */
    bool allow_oversubscribe;
    long queue_depth;        /* --queue-depth, default 64 */
    long max_body_mb;        /* --max-body-mb, default 64 */
    double max_flops;        /* --max-flops, per request, default 1e12 */
    long request_timeout_ms; /* --request-timeout-ms, default 30000 */
    const char *api_key_file;
    log_format log_format;
    long drain_timeout_ms;   /* --drain-timeout-ms, default 10000 */
    long max_batch;          /* --max-batch, repository models only, default 8; 1 = off */
    long batch_delay_us;     /* --batch-delay-us, default 0: batch only what is already queued */
    bool autotune;           /* --autotune: repository models time their kernels per layer shape */
    const char *tls_cert;    /* --tls-cert PEM file; with tls_key the server speaks HTTPS only */
    const char *tls_key;     /* --tls-key PEM file (unencrypted) */
    long max_conns_per_ip;   /* --max-conns-per-ip, default 256 */
    long idle_timeout_s;     /* --idle-timeout-s: a connection silent this long is closed, default 60 */
    int cpus;                /* what the defaults were derived from */
} serve_config;

/* Fills cfg from env then argv (argv[0] is "serve"). Returns 0 on success,
 * 1 when --help was printed, EXIT_USAGE (2) with a message in err. */
int config_parse(int argc, char **argv, serve_config *cfg, char *err, size_t errlen);

/* CPUs this process may use: sched_getaffinity, capped by the cgroup v2
 * cpu.max (or v1 cfs) quota when one is set. At least 1. */
int config_usable_cpus(void);

void config_log(const serve_config *cfg);

extern const char config_usage[];

#endif
