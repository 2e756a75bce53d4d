/* config.c — flag and environment parsing for `convd serve`; each setting is
 * one table row, so a flag, its CONVD_* variable and its help stay together. */
#include "server/config.h"

#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

const char config_usage[] =
    "usage: convd serve [options]\n"
    "\n"
    "HTTP inference daemon. Every option may also be set with the CONVD_*\n"
    "variable shown (e.g. CONVD_PORT=9000); a flag wins over its variable.\n"
    "  --host ADDR               CONVD_HOST                address to bind (127.0.0.1)\n"
    "  --port P                  CONVD_PORT                port, 0 = any free one (8080)\n"
    "  --models DIR              CONVD_MODELS              model repository: each sub-folder\n"
    "                                                      with a model.json is a model\n"
    "  --workers N               CONVD_WORKERS             jobs computed at once (usable CPUs)\n"
    "  --threads-per-job T       CONVD_THREADS_PER_JOB     threads per job (1)\n"
    "  --allow-oversubscribe     CONVD_ALLOW_OVERSUBSCRIBE allow N*T above the CPU count\n"
    "  --queue-depth Q           CONVD_QUEUE_DEPTH         jobs waiting before 503 (64)\n"
    "  --max-body-mb M           CONVD_MAX_BODY_MB         request body limit in MiB (64)\n"
    "  --max-flops F             CONVD_MAX_FLOPS           FLOPs per request (1e12)\n"
    "  --request-timeout-ms MS   CONVD_REQUEST_TIMEOUT_MS  a job still queued after this gets 504 (30000)\n"
    "  --api-key-file PATH       CONVD_API_KEY_FILE        bearer key required by PUT/DELETE\n"
    "  --log-format text|json    CONVD_LOG_FORMAT          access log format (text)\n"
    "  --drain-timeout-ms MS     CONVD_DRAIN_TIMEOUT_MS    on SIGTERM, time to finish jobs (10000)\n"
    "  --max-batch B             CONVD_MAX_BATCH           queued requests for one repository model and\n"
    "                                                      input shape run together, up to B (8; 1 = off)\n"
    "  --batch-delay-us US       CONVD_BATCH_DELAY_US      how long a request may wait for a fuller batch\n"
    "                                                      (0: only what is already queued; ms resolution)\n"
    "  --autotune                CONVD_AUTOTUNE            models from --models time every kernel that can\n"
    "                                                      run a layer, once per input shape, keep the fastest\n"
    "  --tls-cert PATH           CONVD_TLS_CERT            PEM certificate (chain): serve HTTPS (with --tls-key)\n"
    "  --tls-key PATH            CONVD_TLS_KEY             PEM private key, unencrypted\n"
    "  --max-conns-per-ip N      CONVD_MAX_CONNS_PER_IP    open connections one client address may hold (256)\n"
    "  --idle-timeout-s S        CONVD_IDLE_TIMEOUT_S      close a connection silent this long (60)\n";

typedef enum opt_kind { OPT_STRING, OPT_LONG, OPT_DOUBLE, OPT_BOOL, OPT_LOG_FORMAT } opt_kind;

typedef struct opt_row {
    const char *flag;
    const char *env;
    opt_kind kind;
    size_t offset;
    long min, max; /* OPT_LONG */
} opt_row;

#define ROW(flag, env, kind, field, min, max) {flag, env, kind, offsetof(serve_config, field), min, max}
static const opt_row rows[] = {
    ROW("--host", "CONVD_HOST", OPT_STRING, host, 0, 0),
    ROW("--port", "CONVD_PORT", OPT_LONG, port, 0, 65535),
    ROW("--models", "CONVD_MODELS", OPT_STRING, models, 0, 0),
    ROW("--workers", "CONVD_WORKERS", OPT_LONG, workers, 1, 1024),
    ROW("--threads-per-job", "CONVD_THREADS_PER_JOB", OPT_LONG, threads_per_job, 1, 1024),
    ROW("--allow-oversubscribe", "CONVD_ALLOW_OVERSUBSCRIBE", OPT_BOOL, allow_oversubscribe, 0, 0),
    ROW("--queue-depth", "CONVD_QUEUE_DEPTH", OPT_LONG, queue_depth, 1, 1000000),
    ROW("--max-body-mb", "CONVD_MAX_BODY_MB", OPT_LONG, max_body_mb, 1, 65536),
    ROW("--max-flops", "CONVD_MAX_FLOPS", OPT_DOUBLE, max_flops, 0, 0),
    ROW("--request-timeout-ms", "CONVD_REQUEST_TIMEOUT_MS", OPT_LONG, request_timeout_ms, 1, 86400000),
    ROW("--api-key-file", "CONVD_API_KEY_FILE", OPT_STRING, api_key_file, 0, 0),
    ROW("--log-format", "CONVD_LOG_FORMAT", OPT_LOG_FORMAT, log_format, 0, 0),
    ROW("--drain-timeout-ms", "CONVD_DRAIN_TIMEOUT_MS", OPT_LONG, drain_timeout_ms, 0, 86400000),
    ROW("--max-batch", "CONVD_MAX_BATCH", OPT_LONG, max_batch, 1, 1024),
    ROW("--batch-delay-us", "CONVD_BATCH_DELAY_US", OPT_LONG, batch_delay_us, 0, 10000000),
    ROW("--autotune", "CONVD_AUTOTUNE", OPT_BOOL, autotune, 0, 0),
    ROW("--tls-cert", "CONVD_TLS_CERT", OPT_STRING, tls_cert, 0, 0),
    ROW("--tls-key", "CONVD_TLS_KEY", OPT_STRING, tls_key, 0, 0),
    ROW("--max-conns-per-ip", "CONVD_MAX_CONNS_PER_IP", OPT_LONG, max_conns_per_ip, 1, 65535),
    ROW("--idle-timeout-s", "CONVD_IDLE_TIMEOUT_S", OPT_LONG, idle_timeout_s, 1, 86400),
};
#define N_ROWS (sizeof rows / sizeof rows[0])

static int read_quota_cpus(void)
{
    /* cgroup v2: "max 100000" or "<quota> <period>" */
    FILE *f = fopen("/sys/fs/cgroup/cpu.max", "r");
    if (f) {
        char quota[32] = "";
        long period = 0;
        int n = fscanf(f, "%31s %ld", quota, &period);
        fclose(f);
        if (n == 2 && strcmp(quota, "max") && period > 0) {
            long q = strtol(quota, NULL, 10);
            if (q > 0) return (int)((q + period - 1) / period);
        }
        return 0;
    }
    f = fopen("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "r");
    if (!f) return 0;
    long q = -1, period = 0;
    if (fscanf(f, "%ld", &q) != 1) q = -1;
    fclose(f);
    f = fopen("/sys/fs/cgroup/cpu/cpu.cfs_period_us", "r");
    if (!f) return 0;
    if (fscanf(f, "%ld", &period) != 1) period = 0;
    fclose(f);
    return q > 0 && period > 0 ? (int)((q + period - 1) / period) : 0;
}

int config_usable_cpus(void)
{
    cpu_set_t set;
    int cpus = 1;
    if (sched_getaffinity(0, sizeof set, &set) == 0) cpus = CPU_COUNT(&set);
    int quota = read_quota_cpus();
    if (quota > 0 && quota < cpus) cpus = quota;
    return cpus > 0 ? cpus : 1;
}

static bool parse_bool(const char *text, bool *out)
{
    if (!strcmp(text, "1") || !strcasecmp(text, "true") || !strcasecmp(text, "yes")) *out = true;
    else if (!strcmp(text, "0") || !strcasecmp(text, "false") || !strcasecmp(text, "no") || !*text) *out = false;
    else return false;
    return true;
}

/* Stores text into the row's field; false (with err) if it does not parse. */
static bool apply(const opt_row *row, const char *text, const char *source, serve_config *cfg, char *err,
                  size_t errlen)
{
    char *field = (char *)cfg + row->offset;
    char *end;
    switch (row->kind) {
    case OPT_STRING:
        if (!*text) {
            snprintf(err, errlen, "%s must not be empty", source);
            return false;
        }
        *(const char **)field = text;
        return true;
    case OPT_LONG: {
        errno = 0;
        long v = strtol(text, &end, 10);
        if (errno || end == text || *end || v < row->min || v > row->max) {
            snprintf(err, errlen, "%s must be an integer in %ld..%ld, got \"%s\"", source, row->min, row->max, text);
            return false;
        }
        *(long *)field = v;
        return true;
    }
    case OPT_DOUBLE: {
        errno = 0;
        double v = strtod(text, &end);
        if (errno || end == text || *end || !isfinite(v) || v <= 0) {
            snprintf(err, errlen, "%s must be a positive number, got \"%s\"", source, text);
            return false;
        }
        *(double *)field = v;
        return true;
    }
    case OPT_BOOL:
        if (!parse_bool(text, (bool *)field)) {
            snprintf(err, errlen, "%s must be 1/0/true/false, got \"%s\"", source, text);
            return false;
        }
        return true;
    case OPT_LOG_FORMAT:
        if (!strcmp(text, "text")) *(log_format *)field = LOG_TEXT;
        else if (!strcmp(text, "json")) *(log_format *)field = LOG_JSON;
        else {
            snprintf(err, errlen, "%s must be text or json, got \"%s\"", source, text);
            return false;
        }
        return true;
    }
    return false;
}

int config_parse(int argc, char **argv, serve_config *cfg, char *err, size_t errlen)
{
    int cpus = config_usable_cpus();
    *cfg = (serve_config){
        .host = "127.0.0.1",
        .port = 8080,
        .workers = cpus,
        .threads_per_job = 1,
        .queue_depth = 64,
        .max_body_mb = 64,
        .max_flops = 1e12,
        .request_timeout_ms = 30000,
        .log_format = LOG_TEXT,
        .drain_timeout_ms = 10000,
        .max_batch = 8,
        .batch_delay_us = 0,
        .max_conns_per_ip = 256,
        .idle_timeout_s = 60,
        .cpus = cpus,
    };
    for (size_t r = 0; r < N_ROWS; r++) {
        const char *v = getenv(rows[r].env);
        if (v && !apply(&rows[r], v, rows[r].env, cfg, err, errlen)) return 2;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(config_usage, stdout);
            return 1;
        }
        /* --flag=value and --flag value */
        const char *eq = strchr(a, '=');
        size_t name_len = eq ? (size_t)(eq - a) : strlen(a);
        const opt_row *row = NULL;
        for (size_t r = 0; r < N_ROWS; r++)
            if (strlen(rows[r].flag) == name_len && !strncmp(rows[r].flag, a, name_len)) row = &rows[r];
        if (!row) {
            snprintf(err, errlen, "unknown option %s (see convd serve --help)", a);
            return 2;
        }
        const char *value;
        if (eq) value = eq + 1;
        else if (row->kind == OPT_BOOL) value = "1";
        else if (++i < argc) value = argv[i];
        else {
            snprintf(err, errlen, "%s needs a value", row->flag);
            return 2;
        }
        if (!apply(row, value, row->flag, cfg, err, errlen)) return 2;
    }
    if (!cfg->tls_cert != !cfg->tls_key) {
        snprintf(err, errlen, "--tls-cert and --tls-key go together: give both or neither");
        return 2;
    }
    long jobs_threads = cfg->workers * cfg->threads_per_job;
    if (jobs_threads > cfg->cpus && !cfg->allow_oversubscribe) {
        snprintf(err, errlen,
                 "--workers %ld x --threads-per-job %ld = %ld threads, but only %d CPUs are usable; "
                 "lower them or pass --allow-oversubscribe",
                 cfg->workers, cfg->threads_per_job, jobs_threads, cfg->cpus);
        return 2;
    }
    return 0;
}

void config_log(const serve_config *c)
{
    log_message(c->log_format, "info",
                "host=%s port=%ld models=%s workers=%ld threads-per-job=%ld (cpus=%d%s) queue-depth=%ld "
                "max-body-mb=%ld max-flops=%g request-timeout-ms=%ld api-key-file=%s log-format=%s "
                "drain-timeout-ms=%ld max-batch=%ld batch-delay-us=%ld tls=%s max-conns-per-ip=%ld idle-timeout-s=%ld",
                c->host, c->port, c->models ? c->models : "(none)", c->workers, c->threads_per_job, c->cpus,
                c->allow_oversubscribe ? ", oversubscribe allowed" : "", c->queue_depth, c->max_body_mb,
                c->max_flops, c->request_timeout_ms, c->api_key_file ? c->api_key_file : "(none)",
                c->log_format == LOG_JSON ? "json" : "text", c->drain_timeout_ms, c->max_batch, c->batch_delay_us,
                c->tls_cert ? c->tls_cert : "off", c->max_conns_per_ip, c->idle_timeout_s);
}
