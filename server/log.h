/* log.h — the daemon's stderr output: one access-log line per request and
 * start-up/shutdown messages, as text or as one JSON object per line.
 *
 * Design: every line is formatted in full into a local buffer and written
 * with a single write(2), so lines from the HTTP thread, the loop thread and
 * the main thread never interleave. No state beyond the chosen format. */
#ifndef CONVD_SERVER_LOG_H
#define CONVD_SERVER_LOG_H

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
/* "convd serve: <message>" (text) or {"level": level, "msg": message} (json) */
void log_message(log_format format, const char *level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
