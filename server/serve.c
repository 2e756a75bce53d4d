/* serve.c — `convd serve`: configuration, start-up, signals and shutdown.
 *
 * Design: SIGTERM and SIGINT are blocked before any thread starts, so every
 * thread inherits the mask and the main thread alone takes them with
 * sigwait(). Threads: main (waits for a signal, then drains), the MHD
 * thread (HTTP, parsing), the libuv loop thread (queue) and libuv's pool of
 * --workers threads (computation), each with its own conv_threadpool.
 * Shutdown order: stop accepting (quiesce), let queued and running jobs
 * finish within --drain-timeout-ms, let their replies go out, then stop
 * MHD, the workers and free the repository. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/cli.h"
#include "server/config.h"
#include "server/handlers.h"
#include "server/http.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/repo.h"
#include "server/workers.h"

/* The key is the file's first line, surrounding whitespace removed. */
static char *read_api_key(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "--api-key-file %s: %s", path, strerror(errno));
        return NULL;
    }
    char line[1024];
    char *key = NULL;
    if (fgets(line, sizeof line, f)) {
        char *s = line, *e = line + strlen(line);
        while (*s == ' ' || *s == '\t') s++;
        while (e > s && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t')) *--e = 0;
        if (*s) key = strdup(s);
    }
    fclose(f);
    if (!key) snprintf(err, errlen, "--api-key-file %s: the file holds no key", path);
    return key;
}

int cli_serve(int argc, char **argv)
{
    serve_config cfg;
    char msg[512];
    int rc = config_parse(argc, argv, &cfg, msg, sizeof msg);
    if (rc == 1) return EXIT_OK;
    if (rc) return cli_fail("serve", EXIT_USAGE, "%s", msg);

    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN); /* a client that hangs up is an error return, not a death */
    log_buffering_start(); /* after the mask: its thread must not take the stop signals */

    server srv = {
        .cfg = &cfg,
        .max_body_bytes = (size_t)cfg.max_body_mb << 20,
    };
    /* A tensor may hold as many float32 elements as the body limit has bytes
     * (4x that in memory), so random inits and outputs stay proportionate
     * to what the server accepts; one run's scratch up to 16x the body limit. */
    srv.max_elements = srv.max_body_bytes;
    srv.max_workspace_bytes = srv.max_body_bytes * 16;
    atomic_init(&srv.shutting_down, false);
    int status = EXIT_ERROR;
    http_server *http = NULL;
    conv_error err;

    config_log(&cfg);
    if (cfg.api_key_file && !(srv.api_key = read_api_key(cfg.api_key_file, msg, sizeof msg))) {
        cli_fail("serve", EXIT_ERROR, "%s", msg);
        goto done;
    }
    if (!(srv.metrics = metrics_create()) || !(srv.repo = repo_create())) {
        cli_fail("serve", EXIT_ERROR, "out of memory");
        goto done;
    }
    if (cfg.models) {
        conv_model_options opts;
        conv_model_options_init(&opts);
        opts.autotune = cfg.autotune;
        int n = repo_load_dir(srv.repo, cfg.models, &opts, cfg.log_format);
        if (n < 0) {
            cli_fail("serve", EXIT_ERROR, "--models %s: %s", cfg.models, strerror(errno));
            goto done;
        }
        log_message(cfg.log_format, "info", "%d model%s loaded from %s", n, n == 1 ? "" : "s", cfg.models);
    }
    if (!(srv.workers = workers_create((int)cfg.workers, (int)cfg.threads_per_job, (int)cfg.queue_depth, &err))) {
        cli_fail("serve", EXIT_ERROR, "%s", err.message);
        goto done;
    }
    workers_set_batching(srv.workers, (int)cfg.max_batch, cfg.batch_delay_us);
    handlers_warm_up(&srv);
    if (!(http = http_start(&srv, cfg.host, (int)cfg.port, &err))) {
        cli_fail("serve", EXIT_ERROR, "%s", err.message);
        goto done;
    }
    bool v6 = strchr(cfg.host, ':') != NULL;
    log_message(cfg.log_format, "info", "listening on %s://%s%s%s:%d", cfg.tls_cert ? "https" : "http",
                v6 ? "[" : "", cfg.host, v6 ? "]" : "",
                http_bound_port(http));

    int sig = 0;
    while (sigwait(&stop_signals, &sig)) {
    }
    log_message(cfg.log_format, "info", "%s: draining (up to %ld ms)", sig == SIGTERM ? "SIGTERM" : "SIGINT",
                cfg.drain_timeout_ms);
    atomic_store(&srv.shutting_down, true);
    http_quiesce(http);
    double deadline = clock_seconds() + (double)cfg.drain_timeout_ms * 1e-3;
    bool drained = workers_wait_idle(srv.workers, (double)cfg.drain_timeout_ms * 1e-3);
    if (!drained) {
        /* Jobs still running cannot be interrupted, and MHD must not stop
         * with suspended connections: leave the rest to process exit. */
        log_message(cfg.log_format, "warn", "drain timeout: %d job(s) queued, %d running; exiting anyway",
                    workers_queued(srv.workers), workers_running(srv.workers));
        log_buffering_stop();
        return EXIT_OK;
    }
    double left = deadline - clock_seconds();
    http_wait_requests_done(http, left > 0.5 ? left : 0.5);
    http_stop(http);
    http = NULL;
    log_message(cfg.log_format, "info", "stopped");
    status = EXIT_OK;
done:
    http_stop(http);
    workers_destroy(srv.workers);
    repo_destroy(srv.repo);
    metrics_destroy(srv.metrics);
    free(srv.api_key);
    log_buffering_stop();
    return status;
}
