/* cli_util.c — argument parsing and error printing shared by the subcommands. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "server/cli.h"

bool cli_parse_int(const char *text, long min, long max, long *out)
{
    if (!text || !*text) return false;
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || *end || v < min || v > max) return false;
    *out = v;
    return true;
}

bool cli_parse_shape(const char *text, int64_t shape[4])
{
    const char *p = text;
    for (int i = 0; i < 4; i++) {
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno || v <= 0 || v > (1LL << 30)) return false;
        shape[i] = v;
        if (i < 3) {
            if (*end != ',' && *end != 'x') return false;
            p = end + 1;
        } else if (*end) {
            return false;
        }
    }
    return true;
}

int cli_fail(const char *cmd, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "convd %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return status;
}
