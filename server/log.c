/* log.c — access and server log lines on stderr (see log.h for the design). */
#include "server/log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void write_line(const char *line, size_t len)
{
    while (len) {
        ssize_t n = write(STDERR_FILENO, line, len);
        if (n <= 0) return; /* nowhere left to report a failing stderr */
        line += n;
        len -= (size_t)n;
    }
}

static void timestamp(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

static void write_json(json_t *obj)
{
    if (!obj) return;
    char *text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(obj);
    if (!text) return;
    size_t len = strlen(text);
    char *line = malloc(len + 2);
    if (line) {
        memcpy(line, text, len);
        line[len] = '\n';
        write_line(line, len + 1);
        free(line);
    }
    free(text);
}

void log_access(log_format format, const access_entry *e)
{
    char ts[40];
    timestamp(ts, sizeof ts);
    if (format == LOG_JSON) {
        write_json(json_pack("{s:s, s:s, s:s, s:s, s:i, s:I, s:I, s:f, s:f, s:s?}", "time", ts, "level", "access",
                             "method", e->method, "path", e->path, "status", e->status, "bytes_in",
                             (json_int_t)e->bytes_in, "bytes_out", (json_int_t)e->bytes_out, "queue_ms", e->queue_ms,
                             "total_ms", e->total_ms, "model", e->model));
        return;
    }
    char line[2048];
    int n = snprintf(line, sizeof line, "%s %s %s %d in=%zu out=%zu queue_ms=%.3f total_ms=%.3f\n", ts, e->method,
                     e->path, e->status, e->bytes_in, e->bytes_out, e->queue_ms, e->total_ms);
    if (n < 0) return;
    if ((size_t)n >= sizeof line) {
        n = sizeof line - 1;
        line[n - 1] = '\n';
    }
    write_line(line, (size_t)n);
}

void log_message(log_format format, const char *level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (format == LOG_JSON) {
        char ts[40];
        timestamp(ts, sizeof ts);
        write_json(json_pack("{s:s, s:s, s:s}", "time", ts, "level", level, "msg", msg));
        return;
    }
    char line[1100];
    int n = snprintf(line, sizeof line, "convd serve: %s\n", msg);
    if (n > 0) write_line(line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}
