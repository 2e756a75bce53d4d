/* fileio.c — whole-file reads and atomic (temp file + rename) writes used by
 * the .npy and safetensors codecs. */
#include "proto/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static conv_status fail_errno(conv_error *err, const char *what, const char *path, int saved_errno)
{
    char reason[128];
    /* the GNU strerror_r returns the message, which may not be in reason */
    const char *text = strerror_r(saved_errno, reason, sizeof reason);
    conv_status status = saved_errno == ENOMEM ? CONV_OUT_OF_MEMORY : CONV_INVALID_PARAMETER;
    return conv_fail(err, status, "%s '%s': %s", what, path, text);
}

conv_status fileio_read_all(const char *path, size_t max_bytes, uint8_t **out, size_t *len,
                            conv_error *err)
{
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail_errno(err, "cannot open", path, errno);

    struct stat st;
    if (fstat(fd, &st) != 0) {
        int saved = errno;
        close(fd);
        return fail_errno(err, "cannot stat", path, saved);
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return conv_fail(err, CONV_INVALID_PARAMETER, "cannot read '%s': it is a directory", path);
    }
    if (st.st_size > 0 && (uint64_t)st.st_size > (uint64_t)max_bytes) {
        close(fd);
        return conv_fail(err, CONV_LIMIT_EXCEEDED, "file '%s' is %lld bytes, more than the limit of %zu",
                         path, (long long)st.st_size, max_bytes);
    }

    /* st_size is only a hint (pipes and /proc report 0), so read until EOF
     * and grow the buffer, never past max_bytes. */
    size_t capacity = st.st_size > 0 ? (size_t)st.st_size : 4096;
    if (capacity > max_bytes) capacity = max_bytes;
    uint8_t *buf = malloc(capacity + 1); /* +1: probes for growth past st_size and keeps malloc(0) away */
    if (!buf) {
        close(fd);
        return conv_fail(err, CONV_OUT_OF_MEMORY, "out of memory reading '%s' (%zu bytes)", path, capacity);
    }
    size_t used = 0;
    for (;;) {
        if (used == capacity + 1) {
            if (capacity >= max_bytes) {
                free(buf);
                close(fd);
                return conv_fail(err, CONV_LIMIT_EXCEEDED, "file '%s' is longer than the limit of %zu bytes",
                                 path, max_bytes);
            }
            size_t grown = capacity > max_bytes / 2 ? max_bytes : capacity * 2;
            uint8_t *bigger = realloc(buf, grown + 1);
            if (!bigger) {
                free(buf);
                close(fd);
                return conv_fail(err, CONV_OUT_OF_MEMORY, "out of memory reading '%s' (%zu bytes)", path, grown);
            }
            buf = bigger;
            capacity = grown;
        }
        ssize_t got = read(fd, buf + used, capacity + 1 - used);
        if (got < 0) {
            if (errno == EINTR) continue;
            int saved = errno;
            free(buf);
            close(fd);
            return fail_errno(err, "cannot read", path, saved);
        }
        if (got == 0) break;
        used += (size_t)got;
    }
    close(fd);
    if (used > max_bytes) {
        free(buf);
        return conv_fail(err, CONV_LIMIT_EXCEEDED, "file '%s' is longer than the limit of %zu bytes", path,
                         max_bytes);
    }
    *out = buf;
    *len = used;
    return CONV_OK;
}

conv_status fileio_write_all(const char *path, const void *data, size_t len, conv_error *err)
{
    static const char suffix[] = ".tmp.XXXXXX";
    size_t path_len = strlen(path);
    size_t tmp_size;
    if (!conv_size_add(path_len, sizeof suffix, &tmp_size))
        return conv_fail(err, CONV_LIMIT_EXCEEDED, "path is too long");
    char *tmp_path = malloc(tmp_size);
    if (!tmp_path) return conv_fail(err, CONV_OUT_OF_MEMORY, "out of memory writing '%s'", path);
    memcpy(tmp_path, path, path_len);
    memcpy(tmp_path + path_len, suffix, sizeof suffix);

    /* the temp file sits next to path so that rename() stays within one
     * file system and is atomic */
    int fd = mkstemp(tmp_path);
    if (fd < 0) {
        int saved = errno;
        free(tmp_path);
        return fail_errno(err, "cannot create a temporary file for", path, saved);
    }
    const char *failed_step = NULL;
    int saved = 0;
    /* mkstemp creates 0600; a written model or tensor is meant to be shared */
    if (fchmod(fd, 0644) != 0) {
        failed_step = "cannot set permissions on";
        saved = errno;
    }
    const uint8_t *bytes = data;
    size_t written = 0;
    while (!failed_step && written < len) {
        ssize_t n = write(fd, bytes + written, len - written);
        if (n < 0) {
            if (errno == EINTR) continue;
            failed_step = "cannot write";
            saved = errno;
        } else {
            written += (size_t)n;
        }
    }
    if (!failed_step && fsync(fd) != 0) {
        failed_step = "cannot sync";
        saved = errno;
    }
    if (close(fd) != 0 && !failed_step) {
        failed_step = "cannot close";
        saved = errno;
    }
    if (!failed_step && rename(tmp_path, path) != 0) {
        failed_step = "cannot rename the temporary file onto";
        saved = errno;
    }
    if (failed_step) {
        unlink(tmp_path);
        free(tmp_path);
        return fail_errno(err, failed_step, path, saved);
    }
    free(tmp_path);
    return CONV_OK;
}
