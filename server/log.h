/* log.h — the daemon's stderr output: one access-log line per request and
 * start-up/shutdown messages, as text or as one JSON object per line.
 *
 * Design: every line is formatted in full into a local buffer, so lines from
 * the HTTP thread, the loop thread and the main thread never interleave.
 * Without log_buffering_start() each line is one write(2). With it (the
 * daemon), access lines collect in a process-wide buffer written when it
 * fills or LOG_FLUSH_MS after its first line, by a small flusher thread:
 * one write(2) per request cost the HTTP thread more than the rest of a
 * tiny request's bookkeeping. Other messages flush the buffer and go out at
 * once, in order. log_buffering_stop() flushes and ends the thread; lines
 * still buffered when the process dies abruptly (SIGKILL) are lost. */
#ifndef CONVD_SERVER_LOG_H
#define CONVD_SERVER_LOG_H

#include <stdbool.h>
#include <stddef.h>

typedef enum log_format { LOG_TEXT = 0, LOG_JSON } log_format;

typedef struct access_entry {
    const char *method;
    const char *path;
    int status; /* 0 when the client went away before a reply */
    size_t bytes_in, bytes_out;
    double queue_ms, total_ms;
    const char *model; /* may be NULL */
} access_entry;

void log_access(log_format format, const access_entry *e);
/* Starts buffering access lines (and the flusher thread); false if the
 * thread cannot start, and lines are then written one by one. */
bool log_buffering_start(void);
/* Writes what is buffered and stops the flusher; lines after it are written
 * one by one again. Safe to call without a start. */
void log_buffering_stop(void);
/* "convd serve: <message>" (text) or {"level": level, "msg": message} (json) */
void log_message(log_format format, const char *level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
