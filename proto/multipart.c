/* multipart.c — multipart/form-data parsing. The body is never copied: the
 * parser finds each delimiter ("\r\n--" boundary) with memmem, reads the
 * part's header lines with a strict CRLF scanner, and records where the
 * part's data lies. Header values are parsed by one small parameter reader
 * shared by Content-Type and Content-Disposition. */
#include "proto/multipart.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum {
    PARAM_VALUE_MAX = 512, /* longer parameter values are refused, whatever the field */
    EXCERPT_MAX = 40,
};

/* ------------------------------------------------------------ text helpers */

static bool is_space(char c) { return c == ' ' || c == '\t'; }

static bool is_tchar(unsigned char c)
{
    /* RFC 7230 token characters */
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_bchar(unsigned char c)
{
    /* RFC 2046 bcharsnospace, plus space (which may not be last) */
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
    return c != 0 && strchr("'()+_,-./:=? ", c) != NULL;
}

static bool equals_ignore_case(const char *s, size_t len, const char *word)
{
    return strlen(word) == len && strncasecmp(s, word, len) == 0;
}

/* untrusted text quoted in a message: printable ASCII only, cut short */
static void excerpt(const char *s, size_t len, char *out, size_t out_size)
{
    size_t n = 0, i = 0;
    for (; i < len && n + 4 < out_size; i++) {
        unsigned char c = (unsigned char)s[i];
        out[n++] = (c >= 0x20 && c < 0x7f && c != '"') ? (char)c : '?';
    }
    if (i < len) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
}

/* ------------------------------------------------------------ parameters */

/* A reader over "type; a=b; c=\"d\"" from one header value. */
typedef struct param_reader {
    const char *pos;
    const char *end;
} param_reader;

typedef enum param_result {
    PARAM_FOUND,
    PARAM_END,
    PARAM_MALFORMED,
    PARAM_TOO_LONG,
} param_result;

static void skip_spaces(param_reader *r)
{
    while (r->pos < r->end && is_space(*r->pos)) r->pos++;
}

/* Reads the leading type ("multipart/form-data", "form-data"). */
static bool read_type(param_reader *r, const char **type, size_t *type_len)
{
    skip_spaces(r);
    *type = r->pos;
    while (r->pos < r->end && (is_tchar((unsigned char)*r->pos) || *r->pos == '/')) r->pos++;
    *type_len = (size_t)(r->pos - *type);
    return *type_len > 0;
}

/* Reads "; name=value" into name (pointing into the header) and value
 * (unquoted, NUL-terminated, at most PARAM_VALUE_MAX - 1 bytes). */
static param_result read_param(param_reader *r, const char **name, size_t *name_len, char *value, size_t *value_len)
{
    skip_spaces(r);
    if (r->pos == r->end) return PARAM_END;
    if (*r->pos != ';') return PARAM_MALFORMED;
    r->pos++;
    skip_spaces(r);
    if (r->pos == r->end) return PARAM_END; /* a trailing ';' is common and harmless */
    *name = r->pos;
    while (r->pos < r->end && is_tchar((unsigned char)*r->pos)) r->pos++;
    *name_len = (size_t)(r->pos - *name);
    skip_spaces(r);
    if (*name_len == 0 || r->pos == r->end || *r->pos != '=') return PARAM_MALFORMED;
    r->pos++;
    skip_spaces(r);
    size_t n = 0;
    bool too_long = false;
    if (r->pos < r->end && *r->pos == '"') {
        r->pos++;
        for (;;) {
            if (r->pos == r->end) return PARAM_MALFORMED; /* unterminated quote */
            char c = *r->pos++;
            if (c == '"') break;
            if (c == '\\') {
                if (r->pos == r->end) return PARAM_MALFORMED;
                c = *r->pos++;
            }
            if (n + 1 < PARAM_VALUE_MAX)
                value[n++] = c;
            else
                too_long = true;
        }
    } else {
        while (r->pos < r->end && *r->pos != ';' && !is_space(*r->pos)) {
            if (n + 1 < PARAM_VALUE_MAX)
                value[n++] = *r->pos;
            else
                too_long = true;
            r->pos++;
        }
        if (n == 0) return PARAM_MALFORMED;
    }
    value[n] = '\0';
    *value_len = n;
    return too_long ? PARAM_TOO_LONG : PARAM_FOUND;
}

static bool has_control_char(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) return true;
    return false;
}

/* ------------------------------------------------------------ boundary */

static conv_status read_boundary(const char *content_type, char boundary[MULTIPART_MAX_BOUNDARY + 1],
                                 size_t *boundary_len, conv_error *err)
{
    if (!content_type) return conv_fail(err, CONV_INVALID_PARAMETER, "multipart: no Content-Type header");
    param_reader r = {content_type, content_type + strlen(content_type)};
    const char *type;
    size_t type_len;
    char excerpt_text[EXCERPT_MAX];
    if (!read_type(&r, &type, &type_len) || !equals_ignore_case(type, type_len, "multipart/form-data")) {
        excerpt(content_type, strlen(content_type), excerpt_text, sizeof excerpt_text);
        return conv_fail(err, CONV_INVALID_PARAMETER, "multipart: Content-Type \"%s\" is not multipart/form-data",
                         excerpt_text);
    }
    bool found = false;
    for (;;) {
        const char *name;
        size_t name_len, value_len;
        char value[PARAM_VALUE_MAX];
        param_result res = read_param(&r, &name, &name_len, value, &value_len);
        if (res == PARAM_END) break;
        if (res == PARAM_MALFORMED) {
            excerpt(r.pos, (size_t)(r.end - r.pos), excerpt_text, sizeof excerpt_text);
            return conv_fail(err, CONV_INVALID_PARAMETER, "multipart: Content-Type parameters are malformed at \"%s\"",
                             excerpt_text);
        }
        if (!equals_ignore_case(name, name_len, "boundary")) continue;
        if (found) return conv_fail(err, CONV_INVALID_PARAMETER, "multipart: Content-Type has two boundary parameters");
        found = true;
        if (res == PARAM_TOO_LONG || value_len > MULTIPART_MAX_BOUNDARY)
            return conv_fail(err, CONV_INVALID_PARAMETER, "multipart: boundary is longer than %d characters",
                             MULTIPART_MAX_BOUNDARY);
        for (size_t i = 0; i < value_len; i++)
            if (!is_bchar((unsigned char)value[i]))
                return conv_fail(err, CONV_INVALID_PARAMETER,
                                 "multipart: boundary character %zu is not allowed by RFC 2046", i);
        if (value_len > 0 && value[value_len - 1] == ' ')
            return conv_fail(err, CONV_INVALID_PARAMETER, "multipart: boundary ends in a space (RFC 2046)");
        memcpy(boundary, value, value_len + 1);
        *boundary_len = value_len;
    }
    if (!found) return conv_fail(err, CONV_INVALID_PARAMETER, "multipart: Content-Type has no boundary parameter");
    if (*boundary_len == 0) return conv_fail(err, CONV_INVALID_PARAMETER, "multipart: boundary is empty");
    return CONV_OK;
}

/* ------------------------------------------------------------ delimiters */

typedef struct delimiter {
    char text[4 + MULTIPART_MAX_BOUNDARY]; /* "\r\n--" boundary, not NUL-terminated */
    size_t len;
} delimiter;

/* If body[at..] (starting with the delimiter text) is a whole delimiter line,
 * sets *next to the first byte after it and *closing for "--boundary--". */
static bool delimiter_line_at(const uint8_t *body, size_t len, size_t at, size_t text_len, size_t *next,
                              bool *closing)
{
    size_t p = at + text_len;
    if (p + 2 <= len && body[p] == '-' && body[p + 1] == '-') {
        *closing = true;
        *next = p + 2;
        return true;
    }
    while (p < len && is_space((char)body[p])) p++;
    if (p + 2 <= len && body[p] == '\r' && body[p + 1] == '\n') {
        *closing = false;
        *next = p + 2;
        return true;
    }
    return false;
}

/* Finds the first delimiter line starting at or after from; *at is where its
 * CRLF starts, i.e. where the preceding part's data ends. */
static bool find_delimiter(const delimiter *d, const uint8_t *body, size_t len, size_t from, size_t *at,
                           size_t *next, bool *closing)
{
    while (from < len) {
        const uint8_t *hit = memmem(body + from, len - from, d->text, d->len);
        if (!hit) return false;
        size_t pos = (size_t)(hit - body);
        if (delimiter_line_at(body, len, pos, d->len, next, closing)) {
            *at = pos;
            return true;
        }
        from = pos + 1;
    }
    return false;
}

/* ------------------------------------------------------------ part headers */

typedef struct part_headers {
    bool has_disposition;
    bool has_content_type;
    bool has_name;
    size_t disposition_offset;
} part_headers;

/* offset is where the header line starts, value_offset where its value does */
static conv_status parse_disposition(const char *value, size_t value_len, size_t part_no, size_t offset,
                                     size_t value_offset, multipart_part *part, part_headers *seen, conv_error *err)
{
    param_reader r = {value, value + value_len};
    const char *type;
    size_t type_len;
    char excerpt_text[EXCERPT_MAX];
    if (!read_type(&r, &type, &type_len) || !equals_ignore_case(type, type_len, "form-data")) {
        excerpt(value, value_len, excerpt_text, sizeof excerpt_text);
        return conv_fail(err, CONV_INVALID_PARAMETER,
                         "multipart: part %zu Content-Disposition \"%s\" is not form-data (offset %zu)", part_no,
                         excerpt_text, offset);
    }
    bool has_filename = false;
    for (;;) {
        const char *name;
        size_t name_len, param_len;
        char param[PARAM_VALUE_MAX];
        param_result res = read_param(&r, &name, &name_len, param, &param_len);
        if (res == PARAM_END) break;
        if (res == PARAM_MALFORMED)
            return conv_fail(err, CONV_INVALID_PARAMETER,
                             "multipart: part %zu Content-Disposition is malformed (offset %zu)", part_no,
                             value_offset + (size_t)(r.pos - value));
        bool is_name = equals_ignore_case(name, name_len, "name");
        bool is_filename = equals_ignore_case(name, name_len, "filename");
        if (!is_name && !is_filename) continue; /* filename* and extensions */
        const char *field = is_name ? "name" : "filename";
        size_t capacity = is_name ? sizeof part->name : sizeof part->filename;
        if ((is_name && seen->has_name) || (is_filename && has_filename))
            return conv_fail(err, CONV_INVALID_PARAMETER, "multipart: part %zu has two %s parameters (offset %zu)",
                             part_no, field, offset);
        if (res == PARAM_TOO_LONG || param_len >= capacity)
            return conv_fail(err, CONV_INVALID_PARAMETER, "multipart: part %zu %s is longer than %zu bytes (offset %zu)",
                             part_no, field, capacity - 1, offset);
        if (has_control_char(param, param_len))
            return conv_fail(err, CONV_INVALID_PARAMETER,
                             "multipart: part %zu %s contains a control character (offset %zu)", part_no, field,
                             offset);
        memcpy(is_name ? part->name : part->filename, param, param_len + 1);
        if (is_name)
            seen->has_name = true;
        else
            has_filename = true;
    }
    return CONV_OK;
}

static conv_status parse_header_line(const char *line, size_t line_len, size_t part_no, size_t offset,
                                     multipart_part *part, part_headers *seen, conv_error *err)
{
    if (is_space(line[0]))
        return conv_fail(err, CONV_INVALID_PARAMETER,
                         "multipart: part %zu has a folded header line, which RFC 7578 does not allow (offset %zu)",
                         part_no, offset);
    const char *colon = memchr(line, ':', line_len);
    if (!colon)
        return conv_fail(err, CONV_INVALID_PARAMETER, "multipart: part %zu header line has no ':' (offset %zu)",
                         part_no, offset);
    size_t name_len = (size_t)(colon - line);
    while (name_len > 0 && is_space(line[name_len - 1])) name_len--;
    const char *value = colon + 1;
    const char *end = line + line_len;
    while (value < end && is_space(*value)) value++;
    while (end > value && is_space(end[-1])) end--;
    size_t value_len = (size_t)(end - value);

    if (equals_ignore_case(line, name_len, "Content-Disposition")) {
        if (seen->has_disposition)
            return conv_fail(err, CONV_INVALID_PARAMETER, "multipart: part %zu has two Content-Disposition headers (offset %zu)",
                             part_no, offset);
        seen->has_disposition = true;
        seen->disposition_offset = offset;
        return parse_disposition(value, value_len, part_no, offset, offset + (size_t)(value - line), part, seen, err);
    }
    if (equals_ignore_case(line, name_len, "Content-Type")) {
        if (seen->has_content_type)
            return conv_fail(err, CONV_INVALID_PARAMETER, "multipart: part %zu has two Content-Type headers (offset %zu)",
                             part_no, offset);
        seen->has_content_type = true;
        if (value_len >= sizeof part->content_type)
            return conv_fail(err, CONV_INVALID_PARAMETER,
                             "multipart: part %zu Content-Type is longer than %zu bytes (offset %zu)", part_no,
                             sizeof part->content_type - 1, offset);
        if (has_control_char(value, value_len))
            return conv_fail(err, CONV_INVALID_PARAMETER,
                             "multipart: part %zu Content-Type contains a control character (offset %zu)", part_no,
                             offset);
        memcpy(part->content_type, value, value_len);
        part->content_type[value_len] = '\0';
    }
    return CONV_OK;
}

/* Reads the header lines of the part starting at start; *data_start is the
 * byte after the blank line. */
static conv_status parse_part_headers(const uint8_t *body, size_t len, size_t start, size_t part_no,
                                      multipart_part *part, size_t *data_start, conv_error *err)
{
    part_headers seen = {0};
    /* the blank line's CRLF does not count against the limit */
    size_t limit = len - start > MULTIPART_MAX_HEADER_BYTES + 2 ? start + MULTIPART_MAX_HEADER_BYTES + 2 : len;
    size_t line = start;
    for (;;) {
        size_t p = line;
        while (p < limit && body[p] != '\r' && body[p] != '\n') p++;
        if (p == limit || (body[p] == '\r' && p + 1 == limit)) {
            if (limit < len)
                return conv_fail(err, CONV_LIMIT_EXCEEDED,
                                 "multipart: part %zu headers are longer than %d bytes (offset %zu)", part_no,
                                 MULTIPART_MAX_HEADER_BYTES, start);
            return conv_fail(err, CONV_INVALID_PARAMETER,
                             "multipart: part %zu headers end without a blank line; the body is cut short (offset %zu)",
                             part_no, line);
        }
        if (body[p] == '\n' || body[p + 1] != '\n')
            return conv_fail(err, CONV_INVALID_PARAMETER,
                             "multipart: part %zu header line does not end in CRLF (offset %zu)", part_no, p);
        if (p == line) {
            *data_start = p + 2;
            break;
        }
        conv_status st = parse_header_line((const char *)body + line, p - line, part_no, line, part, &seen, err);
        if (st != CONV_OK) return st;
        line = p + 2;
    }
    if (!seen.has_disposition)
        return conv_fail(err, CONV_INVALID_PARAMETER, "multipart: part %zu has no Content-Disposition (offset %zu)",
                         part_no, start);
    if (!seen.has_name)
        return conv_fail(err, CONV_INVALID_PARAMETER, "multipart: part %zu has no name (offset %zu)", part_no,
                         seen.disposition_offset);
    if (part->name[0] == '\0')
        return conv_fail(err, CONV_INVALID_PARAMETER, "multipart: part %zu has an empty name (offset %zu)", part_no,
                         seen.disposition_offset);
    return CONV_OK;
}

/* ------------------------------------------------------------ body */

static conv_status append_part(multipart_body *out, size_t *capacity, const multipart_part *part, conv_error *err)
{
    if (out->count == *capacity) {
        size_t grown = *capacity ? *capacity * 2 : 4;
        size_t bytes;
        if (!conv_size_mul(grown, sizeof *out->parts, &bytes))
            return conv_fail(err, CONV_LIMIT_EXCEEDED, "multipart: too many parts");
        multipart_part *parts = realloc(out->parts, bytes);
        if (!parts) return conv_fail(err, CONV_OUT_OF_MEMORY, "multipart: out of memory for %zu parts", grown);
        out->parts = parts;
        *capacity = grown;
    }
    out->parts[out->count++] = *part;
    return CONV_OK;
}

static conv_status parse_parts(const delimiter *d, const uint8_t *body, size_t len, size_t max_parts,
                               multipart_body *out, conv_error *err)
{
    /* The first delimiter may open the body, with no CRLF before it. */
    size_t at, next;
    bool closing;
    if (!(len >= d->len - 2 && memcmp(body, d->text + 2, d->len - 2) == 0 &&
          delimiter_line_at(body, len, 0, d->len - 2, &next, &closing)) &&
        !find_delimiter(d, body, len, 0, &at, &next, &closing))
        return conv_fail(err, CONV_INVALID_PARAMETER, "multipart: no \"--boundary\" line found (offset 0)");
    if (closing)
        return conv_fail(err, CONV_INVALID_PARAMETER, "multipart: body has no parts (offset %zu)", next);

    size_t capacity = 0;
    for (size_t part_no = 1; !closing; part_no++) {
        size_t start = next;
        if (out->count == max_parts)
            return conv_fail(err, CONV_LIMIT_EXCEEDED, "multipart: more than %zu parts (offset %zu)", max_parts,
                             start);
        multipart_part part;
        memset(&part, 0, sizeof part);
        size_t data_start = 0;
        conv_status st = parse_part_headers(body, len, start, part_no, &part, &data_start, err);
        if (st != CONV_OK) return st;
        /* the delimiter's CRLF may be the first bytes of an empty part */
        if (!find_delimiter(d, body, len, data_start, &at, &next, &closing))
            return conv_fail(err, CONV_INVALID_PARAMETER,
                             "multipart: part %zu is not followed by a boundary; the closing \"--boundary--\" is "
                             "missing (offset %zu)",
                             part_no, start);
        for (size_t i = 0; i < out->count; i++)
            if (strcmp(out->parts[i].name, part.name) == 0) {
                char name[EXCERPT_MAX];
                excerpt(part.name, strlen(part.name), name, sizeof name);
                return conv_fail(err, CONV_INVALID_PARAMETER,
                                 "multipart: part %zu repeats the name \"%s\" of part %zu (offset %zu)", part_no, name,
                                 i + 1, start);
            }
        part.data = body + data_start;
        part.len = at - data_start;
        st = append_part(out, &capacity, &part, err);
        if (st != CONV_OK) return st;
    }
    return CONV_OK;
}

conv_status multipart_parse(const char *content_type, const uint8_t *body, size_t len, size_t max_parts,
                            multipart_body *out, conv_error *err)
{
    memset(out, 0, sizeof *out);
    char boundary[MULTIPART_MAX_BOUNDARY + 1];
    size_t boundary_len = 0;
    conv_status st = read_boundary(content_type, boundary, &boundary_len, err);
    if (st != CONV_OK) return st;
    if (!body && len > 0) return conv_fail(err, CONV_INVALID_PARAMETER, "multipart: no body");
    delimiter d;
    memcpy(d.text, "\r\n--", 4);
    memcpy(d.text + 4, boundary, boundary_len);
    d.len = 4 + boundary_len;
    st = parse_parts(&d, body ? body : (const uint8_t *)"", len, max_parts, out, err);
    if (st != CONV_OK) multipart_free(out);
    return st;
}

void multipart_free(multipart_body *b)
{
    if (!b) return;
    free(b->parts);
    b->parts = NULL;
    b->count = 0;
}

const multipart_part *multipart_find(const multipart_body *b, const char *name)
{
    for (size_t i = 0; b && i < b->count; i++)
        if (strcmp(b->parts[i].name, name) == 0) return &b->parts[i];
    return NULL;
}
