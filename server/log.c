/* log.c — access and server log lines on stderr, buffered while the daemon
 * runs (see log.h for the design). */
#include "server/log.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* How long an access line may wait in the buffer: short enough for anyone
 * tailing the log, long enough to turn thousands of writes into one. */
#define LOG_FLUSH_MS 50
#define LOG_BUFFER_BYTES (64 * 1024)

/* One per process: stderr is one per process too. */
static struct {
    pthread_mutex_t lock; /* guards everything below and every write(2) once buffering */
    pthread_cond_t wake;  /* the buffer got its first line, or stop */
    pthread_t flusher;
    bool buffering, stop;
    size_t len;
    char data[LOG_BUFFER_BYTES];
} out = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static void write_line(const char *line, size_t len)
{
    while (len) {
        ssize_t n = write(STDERR_FILENO, line, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return; /* nowhere left to report a failing stderr */
        line += n;
        len -= (size_t)n;
    }
}

/* lock held */
static void flush_locked(void)
{
    write_line(out.data, out.len);
    out.len = 0;
}

/* A finished line: buffered while the flusher runs, written at once otherwise. */
static void emit_line(const char *line, size_t len, bool may_buffer)
{
    pthread_mutex_lock(&out.lock);
    if (!out.buffering || !may_buffer) {
        if (out.len) flush_locked(); /* what came first goes out first */
        write_line(line, len);
    } else {
        if (len > sizeof out.data - out.len) flush_locked();
        if (len > sizeof out.data) {
            write_line(line, len);
        } else {
            if (!out.len) pthread_cond_signal(&out.wake);
            memcpy(out.data + out.len, line, len);
            out.len += len;
        }
    }
    pthread_mutex_unlock(&out.lock);
}

static void *flusher_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&out.lock);
    while (!out.stop) {
        if (!out.len) {
            pthread_cond_wait(&out.wake, &out.lock);
            continue;
        }
        /* the first line of a batch arrived: give it company, then write */
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += LOG_FLUSH_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (!out.stop && pthread_cond_timedwait(&out.wake, &out.lock, &until) != ETIMEDOUT) {
        }
        flush_locked();
    }
    flush_locked();
    pthread_mutex_unlock(&out.lock);
    return NULL;
}

bool log_buffering_start(void)
{
    pthread_mutex_lock(&out.lock);
    bool ok = out.buffering;
    if (!ok) {
        out.stop = false;
        ok = !pthread_create(&out.flusher, NULL, flusher_main, NULL);
        out.buffering = ok;
    }
    pthread_mutex_unlock(&out.lock);
    return ok;
}

void log_buffering_stop(void)
{
    pthread_mutex_lock(&out.lock);
    bool running = out.buffering;
    out.stop = true;
    pthread_cond_signal(&out.wake);
    pthread_mutex_unlock(&out.lock);
    if (running) pthread_join(out.flusher, NULL);
    pthread_mutex_lock(&out.lock);
    out.buffering = false;
    if (out.len) flush_locked();
    pthread_mutex_unlock(&out.lock);
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" (24 bytes and a NUL); the part up to the
 * seconds is formatted once per second and thread: strftime and printf cost
 * more than the rest of an access line. */
static void timestamp(char buf[40])
{
    static _Thread_local time_t cached_sec = -1;
    static _Thread_local char cached[32];
    static _Thread_local size_t cached_len;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != cached_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        cached_len = strftime(cached, sizeof cached, "%Y-%m-%dT%H:%M:%S", &tm);
        cached_sec = ts.tv_sec;
    }
    long ms = ts.tv_nsec / 1000000;
    memcpy(buf, cached, cached_len);
    char *p = buf + cached_len;
    *p++ = '.';
    *p++ = (char)('0' + ms / 100);
    *p++ = (char)('0' + ms / 10 % 10);
    *p++ = (char)('0' + ms % 10);
    *p++ = 'Z';
    *p = 0;
}

/* A line under construction in a fixed buffer; text past the end is dropped. */
typedef struct line_buf {
    char *data;
    size_t len, cap;
} line_buf;

static void put_bytes(line_buf *b, const char *s, size_t n)
{
    if (n > b->cap - b->len) n = b->cap - b->len;
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

static void put_str(line_buf *b, const char *s)
{
    put_bytes(b, s, strlen(s));
}

static void put_uint(line_buf *b, uint64_t v)
{
    char digits[24];
    size_t n = sizeof digits;
    do {
        digits[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put_bytes(b, digits + n, sizeof digits - n);
}

/* as printf "%.3f" for the values a log holds (non-negative, below 1e12 ms) */
static void put_ms(line_buf *b, double v)
{
    if (!(v >= 0 && v < 1e12)) {
        char text[64];
        int n = snprintf(text, sizeof text, "%.3f", v);
        if (n > 0) put_bytes(b, text, (size_t)n < sizeof text ? (size_t)n : sizeof text - 1);
        return;
    }
    uint64_t thousandths = (uint64_t)llround(v * 1e3);
    put_uint(b, thousandths / 1000);
    char frac[4] = {'.', (char)('0' + thousandths / 100 % 10), (char)('0' + thousandths / 10 % 10),
                    (char)('0' + thousandths % 10)};
    put_bytes(b, frac, sizeof frac);
}

static void write_json(json_t *obj, bool may_buffer)
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
        emit_line(line, len + 1, may_buffer);
        free(line);
    }
    free(text);
}

void log_access(log_format format, const access_entry *e)
{
    char ts[40];
    timestamp(ts);
    if (format == LOG_JSON) {
        write_json(json_pack("{s:s, s:s, s:s, s:s, s:i, s:I, s:I, s:f, s:f, s:s?}", "time", ts, "level", "access",
                             "method", e->method, "path", e->path, "status", e->status, "bytes_in",
                             (json_int_t)e->bytes_in, "bytes_out", (json_int_t)e->bytes_out, "queue_ms", e->queue_ms,
                             "total_ms", e->total_ms, "model", e->model),
                   true);
        return;
    }
    /* "<time> <method> <path> <status> in=<n> out=<n> queue_ms=<x.xxx> total_ms=<x.xxx>", cut at 2 KiB */
    char line[2048];
    line_buf b = {line, 0, sizeof line - 1}; /* room kept for the newline */
    put_str(&b, ts);
    put_bytes(&b, " ", 1);
    put_str(&b, e->method);
    put_bytes(&b, " ", 1);
    put_str(&b, e->path);
    put_bytes(&b, " ", 1);
    if (e->status < 0) {
        put_bytes(&b, "-", 1);
        put_uint(&b, (uint64_t)-(int64_t)e->status);
    } else {
        put_uint(&b, (uint64_t)e->status);
    }
    put_str(&b, " in=");
    put_uint(&b, e->bytes_in);
    put_str(&b, " out=");
    put_uint(&b, e->bytes_out);
    put_str(&b, " queue_ms=");
    put_ms(&b, e->queue_ms);
    put_str(&b, " total_ms=");
    put_ms(&b, e->total_ms);
    line[b.len++] = '\n';
    emit_line(line, b.len, true);
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
        timestamp(ts);
        write_json(json_pack("{s:s, s:s, s:s}", "time", ts, "level", level, "msg", msg), false);
        return;
    }
    char line[1100];
    int n = snprintf(line, sizeof line, "convd serve: %s\n", msg);
    if (n > 0) emit_line(line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1, false);
}
