/* multipart.h — multipart/form-data request bodies (RFC 7578 over RFC 2046),
 * parsed in place: parts point into the caller's buffer. */
#ifndef CONVD_PROTO_MULTIPART_H
#define CONVD_PROTO_MULTIPART_H

#include <stddef.h>
#include <stdint.h>

#include "core/conv.h"

#define MULTIPART_MAX_BOUNDARY 70        /* RFC 2046: 1 to 70 characters */
#define MULTIPART_MAX_HEADER_BYTES 8192  /* per part, header lines and their CRLFs */

typedef struct multipart_part {
    char name[128];         /* from Content-Disposition: form-data; name="..." */
    char filename[256];     /* "" if absent */
    char content_type[128]; /* "" if absent */
    const uint8_t *data;    /* points into the body buffer (no copy) */
    size_t len;
} multipart_part;

typedef struct multipart_body {
    size_t count;
    multipart_part *parts;
} multipart_body;

/* content_type is the request's Content-Type header value, e.g.
 * 'multipart/form-data; boundary=----abc' (the boundary may be quoted).
 *
 * Follows RFC 2046's grammar: an optional preamble, then "--boundary"
 * lines, each followed by transport padding (spaces, tabs) and CRLF, the
 * closing "--boundary--", and an optional epilogue; the preamble and the
 * epilogue are ignored. The CRLF before each delimiter belongs to the
 * delimiter, not to the part's data. A "--boundary" followed by anything
 * else is part data. Header lines must end in CRLF; folded (obsolete)
 * header lines, bare CR or LF, and more than MULTIPART_MAX_HEADER_BYTES of
 * headers in one part are refused. Every part needs Content-Disposition:
 * form-data with a non-empty name, unique in the body; quoted values take
 * backslash escapes, other escapes (%22) are kept as sent. Headers other
 * than Content-Disposition and Content-Type are ignored.
 *
 * Messages start with "multipart: " and name the part (from 1) and the
 * byte offset in body, e.g. "multipart: part 2 has no name (offset 341)".
 * Statuses: CONV_INVALID_PARAMETER for a malformed body or Content-Type,
 * CONV_LIMIT_EXCEEDED for more than max_parts parts or oversized headers,
 * CONV_OUT_OF_MEMORY. On failure *out is empty. */
conv_status multipart_parse(const char *content_type, const uint8_t *body, size_t len, size_t max_parts,
                            multipart_body *out, conv_error *err);
void multipart_free(multipart_body *b);
/* the part with this name, or NULL */
const multipart_part *multipart_find(const multipart_body *b, const char *name);

#endif
