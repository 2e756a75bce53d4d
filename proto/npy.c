/* npy.c — reads and writes NumPy .npy files. The header is a Python dict
 * literal; it is parsed by hand with a small, strict grammar rather than
 * evaluated, and every size taken from it is overflow-checked. */
#include "proto/npy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/fileio.h"

static const uint8_t NPY_MAGIC[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
enum {
    NPY_MAGIC_LEN = 6,
    NPY_V1_PREAMBLE = 10, /* magic, 2 version bytes, u16 header length */
    NPY_V2_PREAMBLE = 12, /* magic, 2 version bytes, u32 header length */
    NPY_DATA_ALIGN = 64,  /* numpy >= 1.14 aligns the data to 64 bytes */
    /* numpy's own limit (NPY_MAXDIMS in numpy 2); more is not a real file */
    NPY_MAX_HEADER_DIMS = 64,
    NPY_MESSAGE_EXCERPT = 64,
};

/* ------------------------------------------------------------ float16 */

float npy_half_to_float(uint16_t half)
{
    uint32_t sign = (uint32_t)(half & 0x8000u) << 16;
    uint32_t exponent = (half >> 10) & 0x1fu;
    uint32_t mantissa = half & 0x3ffu;
    uint32_t bits;
    if (exponent == 0x1f) {
        /* inf and NaN keep their payload, as numpy's conversion does */
        bits = sign | 0x7f800000u | (mantissa << 13);
    } else if (exponent != 0) {
        bits = sign | ((exponent + (127 - 15)) << 23) | (mantissa << 13);
    } else if (mantissa == 0) {
        bits = sign;
    } else {
        /* subnormal half: normalise, since every one is a normal float32 */
        int shift = 0;
        while (!(mantissa & 0x400u)) {
            mantissa <<= 1;
            shift++;
        }
        mantissa &= 0x3ffu;
        bits = sign | ((uint32_t)(127 - 15 + 1 - shift) << 23) | (mantissa << 13);
    }
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

/* ------------------------------------------------------------ helpers */

static uint32_t load_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t load_le64(const uint8_t *p)
{
    return (uint64_t)load_le32(p) | (uint64_t)load_le32(p + 4) << 32;
}

/* Header bytes are untrusted; messages quote them with anything that could
 * break the one-line message replaced by '?', and cut at a fixed length. */
static void quote_excerpt(const uint8_t *text, size_t len, char *out, size_t out_size)
{
    size_t n = 0;
    for (size_t i = 0; i < len && n + 1 < out_size; i++) {
        if (n + 4 >= out_size && i + 1 < len) {
            memcpy(out + n, "...", 3);
            n += 3;
            break;
        }
        uint8_t c = text[i];
        out[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    out[n] = '\0';
}

/* ------------------------------------------------------------ header */

typedef struct npy_header {
    const uint8_t *descr; /* the descr text as written (inside the quotes, or the whole list) */
    size_t descr_len;
    bool descr_is_structured; /* a list of fields rather than a string */
    bool fortran_order;
    int rank;
    int64_t dims[NPY_MAX_HEADER_DIMS];
    bool seen_descr, seen_fortran_order, seen_shape;
} npy_header;

typedef struct header_cursor {
    const uint8_t *text;
    size_t len;
    size_t pos;
    size_t file_offset; /* where text[0] sits in the file, for messages */
} header_cursor;

static size_t cursor_offset(const header_cursor *c) { return c->file_offset + c->pos; }

static void skip_space(header_cursor *c)
{
    while (c->pos < c->len) {
        uint8_t ch = c->text[c->pos];
        if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r') break;
        c->pos++;
    }
}

static conv_status expected(const header_cursor *c, const char *what, conv_error *err)
{
    if (c->pos >= c->len)
        return conv_fail(err, CONV_INVALID_PARAMETER, "npy: header ends at byte %zu where %s was expected",
                         cursor_offset(c), what);
    uint8_t ch = c->text[c->pos];
    return conv_fail(err, CONV_INVALID_PARAMETER, "npy: malformed header at byte %zu: expected %s, found '%c'",
                     cursor_offset(c), what, (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?');
}

static bool take(header_cursor *c, char ch)
{
    if (c->pos < c->len && c->text[c->pos] == (uint8_t)ch) {
        c->pos++;
        return true;
    }
    return false;
}

/* A Python str literal without escapes (numpy never writes any). */
static conv_status parse_string(header_cursor *c, const uint8_t **start, size_t *len, conv_error *err)
{
    if (c->pos >= c->len || (c->text[c->pos] != '\'' && c->text[c->pos] != '"'))
        return expected(c, "a quoted string", err);
    uint8_t quote = c->text[c->pos];
    size_t open = c->pos++;
    size_t begin = c->pos;
    while (c->pos < c->len && c->text[c->pos] != quote) {
        uint8_t ch = c->text[c->pos];
        if (ch == '\\' || ch == '\n' || ch == '\r')
            return conv_fail(err, CONV_INVALID_PARAMETER,
                             "npy: malformed header at byte %zu: escapes and line breaks are not allowed in strings",
                             cursor_offset(c));
        c->pos++;
    }
    if (c->pos >= c->len)
        return conv_fail(err, CONV_INVALID_PARAMETER, "npy: malformed header: string opened at byte %zu is not closed",
                         c->file_offset + open);
    *start = c->text + begin;
    *len = c->pos - begin;
    c->pos++;
    return CONV_OK;
}

/* A structured dtype is a list of tuples; it is only skipped (to quote it in
 * the refusal), so brackets are balanced without interpreting the fields. */
static conv_status skip_structured_descr(header_cursor *c, npy_header *h, conv_error *err)
{
    size_t begin = c->pos;
    int depth = 0;
    while (c->pos < c->len) {
        uint8_t ch = c->text[c->pos];
        if (ch == '\'' || ch == '"') {
            const uint8_t *ignored;
            size_t ignored_len;
            conv_status st = parse_string(c, &ignored, &ignored_len, err);
            if (st != CONV_OK) return st;
            continue;
        }
        c->pos++;
        if (ch == '[' || ch == '(') {
            depth++;
        } else if (ch == ']' || ch == ')') {
            if (--depth == 0) {
                h->descr = c->text + begin;
                h->descr_len = c->pos - begin;
                h->descr_is_structured = true;
                return CONV_OK;
            }
        }
    }
    return conv_fail(err, CONV_INVALID_PARAMETER, "npy: malformed header: 'descr' list opened at byte %zu is not closed",
                     c->file_offset + begin);
}

static conv_status parse_bool(header_cursor *c, bool *value, conv_error *err)
{
    size_t rest = c->len - c->pos;
    if (rest >= 4 && memcmp(c->text + c->pos, "True", 4) == 0) {
        c->pos += 4;
        *value = true;
    } else if (rest >= 5 && memcmp(c->text + c->pos, "False", 5) == 0) {
        c->pos += 5;
        *value = false;
    } else {
        return expected(c, "True or False for 'fortran_order'", err);
    }
    return CONV_OK;
}

static conv_status parse_dim(header_cursor *c, int64_t *dim, conv_error *err)
{
    size_t start = cursor_offset(c);
    bool negative = take(c, '-');
    if (c->pos >= c->len || c->text[c->pos] < '0' || c->text[c->pos] > '9')
        return expected(c, "an integer in 'shape'", err);
    uint64_t value = 0;
    bool too_big = false;
    while (c->pos < c->len && c->text[c->pos] >= '0' && c->text[c->pos] <= '9') {
        uint64_t digit = c->text[c->pos] - '0';
        if (value > (UINT64_MAX - digit) / 10) too_big = true;
        else value = value * 10 + digit;
        c->pos++;
    }
    if (too_big || value > (uint64_t)INT64_MAX)
        return conv_fail(err, CONV_LIMIT_EXCEEDED, "npy: 'shape' dimension at byte %zu does not fit in 64 bits", start);
    *dim = negative ? -(int64_t)value : (int64_t)value;
    return CONV_OK;
}

/* A Python tuple of ints: (), (3,), (1, 3, 128, 128), with optional
 * trailing comma; "(3)" is an int in Python, not a tuple, so it is refused. */
static conv_status parse_shape(header_cursor *c, npy_header *h, conv_error *err)
{
    if (!take(c, '(')) return expected(c, "a tuple '(...)' for 'shape'", err);
    h->rank = 0;
    bool trailing_comma = false;
    for (;;) {
        skip_space(c);
        if (take(c, ')')) break;
        if (h->rank > 0 && !trailing_comma) return expected(c, "',' or ')' in 'shape'", err);
        if (h->rank == NPY_MAX_HEADER_DIMS)
            return conv_fail(err, CONV_INVALID_SHAPE, "npy: 'shape' has more than %d dimensions",
                             NPY_MAX_HEADER_DIMS);
        conv_status st = parse_dim(c, &h->dims[h->rank], err);
        if (st != CONV_OK) return st;
        h->rank++;
        skip_space(c);
        trailing_comma = take(c, ',');
    }
    if (h->rank == 1 && !trailing_comma)
        return conv_fail(err, CONV_INVALID_PARAMETER,
                         "npy: malformed header before byte %zu: a one-element 'shape' needs a trailing comma, as in (3,)",
                         cursor_offset(c));
    return CONV_OK;
}

static conv_status parse_entry(header_cursor *c, npy_header *h, conv_error *err)
{
    size_t key_offset = cursor_offset(c);
    const uint8_t *key;
    size_t key_len;
    conv_status st = parse_string(c, &key, &key_len, err);
    if (st != CONV_OK) return st;
    skip_space(c);
    if (!take(c, ':')) return expected(c, "':' after a key", err);
    skip_space(c);

    enum { KEY_DESCR, KEY_FORTRAN_ORDER, KEY_SHAPE } which;
    bool *seen;
    const char *name;
    if (key_len == 5 && memcmp(key, "descr", 5) == 0) {
        which = KEY_DESCR;
        seen = &h->seen_descr;
        name = "descr";
    } else if (key_len == 13 && memcmp(key, "fortran_order", 13) == 0) {
        which = KEY_FORTRAN_ORDER;
        seen = &h->seen_fortran_order;
        name = "fortran_order";
    } else if (key_len == 5 && memcmp(key, "shape", 5) == 0) {
        which = KEY_SHAPE;
        seen = &h->seen_shape;
        name = "shape";
    } else {
        char quoted[NPY_MESSAGE_EXCERPT];
        quote_excerpt(key, key_len, quoted, sizeof quoted);
        return conv_fail(err, CONV_INVALID_PARAMETER,
                         "npy: unexpected key '%s' at byte %zu (allowed: 'descr', 'fortran_order', 'shape')", quoted,
                         key_offset);
    }
    if (*seen)
        return conv_fail(err, CONV_INVALID_PARAMETER, "npy: duplicate key '%s' at byte %zu", name, key_offset);
    *seen = true;

    switch (which) {
    case KEY_DESCR:
        if (c->pos < c->len && c->text[c->pos] == '[') return skip_structured_descr(c, h, err);
        return parse_string(c, &h->descr, &h->descr_len, err);
    case KEY_FORTRAN_ORDER:
        return parse_bool(c, &h->fortran_order, err);
    case KEY_SHAPE:
        break;
    }
    return parse_shape(c, h, err);
}

static conv_status parse_header_dict(header_cursor *c, npy_header *h, conv_error *err)
{
    memset(h, 0, sizeof *h);
    skip_space(c);
    if (!take(c, '{')) return expected(c, "'{' opening the header dict", err);
    bool need_separator = false;
    for (;;) {
        skip_space(c);
        if (take(c, '}')) break;
        if (need_separator) return expected(c, "',' or '}' in the header dict", err);
        conv_status st = parse_entry(c, h, err);
        if (st != CONV_OK) return st;
        skip_space(c);
        need_separator = !take(c, ',');
    }
    skip_space(c);
    if (c->pos != c->len)
        return conv_fail(err, CONV_INVALID_PARAMETER, "npy: malformed header: unexpected text after the dict at byte %zu",
                         cursor_offset(c));
    if (!h->seen_descr) return conv_fail(err, CONV_INVALID_PARAMETER, "npy: header has no 'descr' key");
    if (!h->seen_fortran_order)
        return conv_fail(err, CONV_INVALID_PARAMETER, "npy: header has no 'fortran_order' key");
    if (!h->seen_shape) return conv_fail(err, CONV_INVALID_PARAMETER, "npy: header has no 'shape' key");
    return CONV_OK;
}

/* ------------------------------------------------------------ dtypes */

typedef enum npy_dtype { NPY_F32, NPY_F64, NPY_F16 } npy_dtype;

static conv_status check_dtype(const npy_header *h, npy_dtype *dtype, size_t *itemsize, conv_error *err)
{
    char quoted[NPY_MESSAGE_EXCERPT];
    quote_excerpt(h->descr, h->descr_len, quoted, sizeof quoted);
    if (h->descr_is_structured)
        return conv_fail(err, CONV_INVALID_PARAMETER,
                         "npy: structured dtype %s is not supported; only '<f4', '<f8' and '<f2' are", quoted);
    static const struct {
        const char *descr;
        npy_dtype dtype;
        size_t itemsize;
    } supported[] = {{"<f4", NPY_F32, 4}, {"<f8", NPY_F64, 8}, {"<f2", NPY_F16, 2}};
    for (size_t i = 0; i < sizeof supported / sizeof supported[0]; i++) {
        if (h->descr_len == 3 && memcmp(h->descr, supported[i].descr, 3) == 0) {
            *dtype = supported[i].dtype;
            *itemsize = supported[i].itemsize;
            return CONV_OK;
        }
    }
    const char *hint = "; convert with arr.astype(np.float32)";
    if (h->descr_len > 0 && h->descr[0] == '>') hint = "; big-endian data: save with arr.astype('<f4')";
    else if (h->descr_len > 0 && h->descr[h->descr_len - 1] == 'O')
        hint = "; object arrays hold pickled Python objects";
    return conv_fail(err, CONV_INVALID_PARAMETER, "npy: dtype '%s' is not supported; only '<f4', '<f8' and '<f2' are%s",
                     quoted, hint);
}

static void decode_floats(const uint8_t *data, npy_dtype dtype, size_t count, float *out)
{
    switch (dtype) {
    case NPY_F32:
        for (size_t i = 0; i < count; i++) {
            uint32_t bits = load_le32(data + 4 * i);
            memcpy(&out[i], &bits, sizeof bits);
        }
        break;
    case NPY_F64:
        for (size_t i = 0; i < count; i++) {
            uint64_t bits = load_le64(data + 8 * i);
            double value;
            memcpy(&value, &bits, sizeof value);
            out[i] = (float)value;
        }
        break;
    case NPY_F16:
        for (size_t i = 0; i < count; i++)
            out[i] = npy_half_to_float((uint16_t)(data[2 * i] | data[2 * i + 1] << 8));
        break;
    }
}

/* ------------------------------------------------------------ parse */

conv_status npy_parse_limited(const uint8_t *buf, size_t len, size_t max_elements, conv_tensor *out,
                              conv_error *err)
{
    memset(out, 0, sizeof *out);
    if (len < NPY_MAGIC_LEN || memcmp(buf, NPY_MAGIC, NPY_MAGIC_LEN) != 0)
        return conv_fail(err, CONV_INVALID_PARAMETER, "npy: not a .npy file (missing the \\x93NUMPY magic at byte 0)");
    if (len < NPY_MAGIC_LEN + 2)
        return conv_fail(err, CONV_INVALID_PARAMETER, "npy: file is %zu bytes, too short for the format version", len);
    uint8_t major = buf[6], minor = buf[7];
    if (minor != 0 || major < 1 || major > 3)
        return conv_fail(err, CONV_INVALID_PARAMETER,
                         "npy: format version %u.%u is not supported (only 1.0, 2.0 and 3.0 are)", major, minor);
    size_t preamble = major == 1 ? NPY_V1_PREAMBLE : NPY_V2_PREAMBLE;
    if (len < preamble)
        return conv_fail(err, CONV_INVALID_PARAMETER, "npy: file is %zu bytes, shorter than the %zu-byte preamble",
                         len, preamble);
    size_t header_len = major == 1 ? (size_t)(buf[8] | buf[9] << 8) : (size_t)load_le32(buf + 8);
    if (header_len > len - preamble)
        return conv_fail(err, CONV_INVALID_PARAMETER,
                         "npy: header length %zu at byte 8 runs past the end of the %zu-byte file", header_len, len);

    /* version 3.0 only changes the header's encoding to utf-8; everything
     * the grammar accepts is ASCII, so 2.0 and 3.0 parse alike */
    header_cursor cursor = {.text = buf + preamble, .len = header_len, .pos = 0, .file_offset = preamble};
    npy_header h;
    conv_status st = parse_header_dict(&cursor, &h, err);
    if (st != CONV_OK) return st;

    npy_dtype dtype = NPY_F32;
    size_t itemsize = 0;
    st = check_dtype(&h, &dtype, &itemsize, err);
    if (st != CONV_OK) return st;
    if (h.fortran_order)
        return conv_fail(err, CONV_INVALID_PARAMETER,
                         "npy: Fortran-order arrays are not supported; save with np.ascontiguousarray");

    char shape[256];
    conv_shape_format(h.dims, h.rank, shape, sizeof shape);
    for (int i = 0; i < h.rank; i++)
        if (h.dims[i] < 0)
            return conv_fail(err, CONV_INVALID_SHAPE, "npy: 'shape' %s has a negative dimension", shape);
    if (h.rank > CONV_MAX_RANK)
        return conv_fail(err, CONV_INVALID_SHAPE, "npy: 'shape' %s has rank %d; at most %d is supported", shape,
                         h.rank, CONV_MAX_RANK);

    size_t numel, data_bytes, float_bytes;
    if (!conv_dims_product(h.dims, h.rank, &numel) || !conv_size_mul(numel, itemsize, &data_bytes) ||
        !conv_size_mul(numel, sizeof(float), &float_bytes))
        return conv_fail(err, CONV_LIMIT_EXCEEDED, "npy: 'shape' %s is too large: its byte size overflows", shape);
    if (numel > max_elements)
        return conv_fail(err, CONV_LIMIT_EXCEEDED, "npy: 'shape' %s has %zu elements, more than the limit of %zu",
                         shape, numel, max_elements);

    size_t data_offset = preamble + header_len;
    size_t available = len - data_offset;
    if (available != data_bytes)
        return conv_fail(err, CONV_INVALID_PARAMETER, "npy: data is %zu bytes, shape %s needs %zu", available, shape,
                         data_bytes);

    st = conv_tensor_alloc(out, h.rank, h.dims, err);
    if (st != CONV_OK) {
        memset(out, 0, sizeof *out);
        return st;
    }
    decode_floats(buf + data_offset, dtype, numel, out->data);
    return CONV_OK;
}

conv_status npy_parse(const uint8_t *buf, size_t len, conv_tensor *out, conv_error *err)
{
    return npy_parse_limited(buf, len, SIZE_MAX, out, err);
}

/* ------------------------------------------------------------ serialize */

conv_status npy_serialize(const conv_tensor *t, uint8_t **out, size_t *out_len, conv_error *err)
{
    *out = NULL;
    *out_len = 0;
    if (t->rank < 0 || t->rank > CONV_MAX_RANK)
        return conv_fail(err, CONV_INVALID_SHAPE, "npy: tensor rank %d is outside 0..%d", t->rank, CONV_MAX_RANK);
    size_t numel, data_bytes;
    if (!conv_dims_product(t->dims, t->rank, &numel))
        return conv_fail(err, CONV_INVALID_SHAPE, "npy: tensor has a negative or overflowing dimension");
    if (!conv_size_mul(numel, sizeof(float), &data_bytes))
        return conv_fail(err, CONV_LIMIT_EXCEEDED, "npy: tensor byte size overflows");
    if (numel > 0 && !t->data) return conv_fail(err, CONV_INVALID_PARAMETER, "npy: tensor has no data");

    char shape[CONV_MAX_RANK * 24 + 4] = "";
    size_t used = 0;
    for (int i = 0; i < t->rank; i++)
        used += (size_t)snprintf(shape + used, sizeof shape - used, "%s%lld", i ? ", " : "", (long long)t->dims[i]);
    if (t->rank == 1) snprintf(shape + used, sizeof shape - used, ",");

    char dict[256];
    int dict_len = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", shape);
    /* numpy pads with spaces and ends with '\n' so the data is 64-aligned */
    size_t unpadded = NPY_V1_PREAMBLE + (size_t)dict_len + 1;
    size_t data_offset = (unpadded + NPY_DATA_ALIGN - 1) / NPY_DATA_ALIGN * NPY_DATA_ALIGN;
    size_t header_len = data_offset - NPY_V1_PREAMBLE;

    size_t total;
    if (!conv_size_add(data_offset, data_bytes, &total))
        return conv_fail(err, CONV_LIMIT_EXCEEDED, "npy: tensor byte size overflows");
    uint8_t *bytes = malloc(total);
    if (!bytes) return conv_fail(err, CONV_OUT_OF_MEMORY, "npy: out of memory for a %zu-byte file", total);

    memcpy(bytes, NPY_MAGIC, NPY_MAGIC_LEN);
    bytes[6] = 1;
    bytes[7] = 0;
    bytes[8] = (uint8_t)(header_len & 0xff);
    bytes[9] = (uint8_t)(header_len >> 8);
    memcpy(bytes + NPY_V1_PREAMBLE, dict, (size_t)dict_len);
    memset(bytes + NPY_V1_PREAMBLE + dict_len, ' ', header_len - (size_t)dict_len - 1);
    bytes[data_offset - 1] = '\n';
    for (size_t i = 0; i < numel; i++) {
        uint32_t bits;
        memcpy(&bits, &t->data[i], sizeof bits);
        uint8_t *p = bytes + data_offset + 4 * i;
        p[0] = (uint8_t)bits;
        p[1] = (uint8_t)(bits >> 8);
        p[2] = (uint8_t)(bits >> 16);
        p[3] = (uint8_t)(bits >> 24);
    }
    *out = bytes;
    *out_len = total;
    return CONV_OK;
}

/* ------------------------------------------------------------ files */

conv_status npy_read_file(const char *path, conv_tensor *out, conv_error *err)
{
    memset(out, 0, sizeof *out);
    uint8_t *bytes;
    size_t len;
    conv_status st = fileio_read_all(path, FILEIO_MAX_FILE_BYTES, &bytes, &len, err);
    if (st != CONV_OK) return st;
    st = npy_parse(bytes, len, out, err);
    free(bytes);
    return st;
}

conv_status npy_write_file(const char *path, const conv_tensor *t, conv_error *err)
{
    uint8_t *bytes;
    size_t len;
    conv_status st = npy_serialize(t, &bytes, &len, err);
    if (st != CONV_OK) return st;
    st = fileio_write_all(path, bytes, len, err);
    free(bytes);
    return st;
}
