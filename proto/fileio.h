/* fileio.h — whole-file reads and atomic whole-file writes for the codecs in
 * proto/, with errors that name the path and the reason. */
#ifndef CONVD_PROTO_FILEIO_H
#define CONVD_PROTO_FILEIO_H

#include <stddef.h>
#include <stdint.h>

#include "core/conv.h"

/* The size limit the *_read_file helpers of proto/ pass to fileio_read_all:
 * large enough for any model convd runs, small enough that a wrong path
 * (a disk image, /dev/zero) fails instead of exhausting memory. */
#define FILEIO_MAX_FILE_BYTES ((size_t)4 << 30)

/* Reads the whole file at path into a malloc'ed buffer (*out, never NULL on
 * success, even for an empty file; caller frees with free()). A file longer
 * than max_bytes is refused with CONV_LIMIT_EXCEEDED before it is read. */
conv_status fileio_read_all(const char *path, size_t max_bytes, uint8_t **out, size_t *len,
                            conv_error *err);

/* Writes data to a temporary file in path's directory and renames it over
 * path, so a concurrent reader sees either the old file or the whole new one. */
conv_status fileio_write_all(const char *path, const void *data, size_t len, conv_error *err);

#endif
