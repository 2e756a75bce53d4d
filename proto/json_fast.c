/* json_fast.c — recursive-descent JSON parser producing jansson's DOM, with
 * long "data" lists of numbers packed into one string-typed json_t.
 * jansson's lexer reads one byte at a time through a callback and allocates
 * a json_t per number, which caps tensor text at ~20 MB/s; this parser
 * scans the buffer directly and rounds decimals to doubles itself. */
#include "proto/json_fast.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* A number list's bytes: this magic (starting with the NUL no parsed string
 * can hold), the count as a uint64, the doubles, then the kind bytes. */
static const unsigned char LIST_MAGIC[8] = {0, 'j', 's', 'o', 'n', 'n', 'u', 'm'};
enum { LIST_HEADER = 16, LIST_BYTES_PER_ELEMENT = sizeof(double) + 1 };

#define EXACT_DOUBLE_INT 9007199254740992.0 /* 2^53: integers up to here are exact in a double */
#define EXACT_DOUBLE_INT_U 9007199254740992u

typedef struct parser {
    const unsigned char *p, *end;
    size_t flags;
    size_t min_numbers;
    char *scratch; /* decoded strings and numbers handed to strtod */
    size_t scratch_cap;
    unsigned char *list; /* a number list being built: header + doubles (+ kinds at the end) */
    size_t list_cap;
    unsigned char *kinds;
    size_t kinds_cap;
    size_t list_room; /* elements list and kinds both have room for */
    size_t nuls_skipped;
} parser;

/* jansson quirk, kept so both accept the same texts: the byte that ends a
 * number or a literal is pushed back into its one-character buffer, where a
 * NUL byte reads as "buffer empty" and is dropped ("[1\0]" is accepted). */
static const unsigned char *skip_pushed_back_nul(parser *ps, const unsigned char *p)
{
    if (p < ps->end && *p == '\0') {
        ps->nuls_skipped++;
        return p + 1;
    }
    return p;
}

static bool grow(void **buf, size_t *cap, size_t need)
{
    if (need <= *cap) return true;
    size_t cap2 = *cap ? *cap : 256;
    while (cap2 < need) {
        if (cap2 > SIZE_MAX / 2) return false;
        cap2 *= 2;
    }
    void *b = realloc(*buf, cap2);
    if (!b) return false;
    *buf = b;
    *cap = cap2;
    return true;
}

static bool scratch_reserve(parser *ps, size_t need)
{
    return grow((void **)&ps->scratch, &ps->scratch_cap, need);
}

static void skip_ws(parser *ps)
{
    const unsigned char *p = ps->p, *end = ps->end;
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
    ps->p = p;
}

static bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* ------------------------------------------------------------ numbers */

static const double POW10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

typedef struct number {
    bool is_integer;
    int64_t integer;
    double real;
} number;

/* The correctly rounded double of a decimal that the fast path cannot do:
 * the digits (sign, integer and fraction parts, the point dropped) and the
 * adjusted exponent go to strtod as "-DDDDe-N", a form no locale reads
 * differently (there is no decimal point to localise). */
static bool slow_real(parser *ps, const unsigned char *start, const unsigned char *mantissa_end, int64_t exponent,
                      double *out)
{
    size_t digits = (size_t)(mantissa_end - start);
    if (!scratch_reserve(ps, digits + 32)) return false;
    char *q = ps->scratch;
    for (const unsigned char *s = start; s < mantissa_end; s++)
        if (*s != '.') *q++ = (char)*s;
    snprintf(q, 32, "e%lld", (long long)exponent);
    errno = 0;
    char *stop;
    double d = strtod(ps->scratch, &stop);
    if (errno == ERANGE && (d == HUGE_VAL || d == -HUGE_VAL)) return false; /* jansson: "real number overflow" */
    *out = d;
    return true;
}

/* RFC 8259 number at ps->p; jansson's value (an int64 when there is no
 * fraction or exponent, otherwise strtod's double). False on bad syntax,
 * integer overflow (jansson: "too big integer") or real overflow. */
static bool parse_number(parser *ps, number *out)
{
    const unsigned char *p = ps->p, *end = ps->end, *start = p;
    bool negative = false;
    if (p < end && *p == '-') {
        negative = true;
        p++;
    }
    if (p == end) return false;
    uint64_t mantissa = 0;
    int64_t significant = 0; /* digits in mantissa, leading zeros not counted */
    if (*p == '0') {
        p++;
        if (p < end && is_digit(*p)) return false;
    } else if (is_digit(*p)) {
        do {
            unsigned d = (unsigned)(*p - '0');
            if (significant < 19) mantissa = mantissa * 10 + d;
            significant++;
            p++;
        } while (p < end && is_digit(*p));
    } else {
        return false;
    }
    if (p == end || (*p != '.' && *p != 'e' && *p != 'E')) {
        /* an integer: what strtoll accepts, up to 2^63 - 1 and down to -2^63 */
        uint64_t limit = negative ? (uint64_t)1 << 63 : ((uint64_t)1 << 63) - 1;
        if (significant > 19 || mantissa > limit) return false; /* 19 digits still fit a uint64 */
        out->is_integer = true;
        if (!negative)
            out->integer = (int64_t)mantissa;
        else
            out->integer = mantissa == (uint64_t)1 << 63 ? INT64_MIN : -(int64_t)mantissa;
        ps->p = skip_pushed_back_nul(ps, p);
        return true;
    }
    int64_t exponent = 0;
    if (significant > 19) exponent = significant - 19; /* digits past the 19th: the slow path reads them */
    if (*p == '.') {
        p++;
        if (p == end || !is_digit(*p)) return false;
        do {
            unsigned d = (unsigned)(*p - '0');
            if (significant < 19) {
                if (mantissa || d) {
                    mantissa = mantissa * 10 + d;
                    significant++;
                }
                exponent--;
            } else {
                significant++;
            }
            p++;
        } while (p < end && is_digit(*p));
    }
    const unsigned char *mantissa_end = p;
    int64_t written_exponent = 0;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        bool exponent_negative = false;
        if (p < end && (*p == '+' || *p == '-')) {
            exponent_negative = *p == '-';
            p++;
        }
        if (p == end || !is_digit(*p)) return false;
        do {
            /* saturates far beyond any double; strtod sees the same overflow or underflow */
            if (written_exponent < 1000000000) written_exponent = written_exponent * 10 + (*p - '0');
            p++;
        } while (p < end && is_digit(*p));
        if (exponent_negative) written_exponent = -written_exponent;
    }
    ps->p = skip_pushed_back_nul(ps, p);
    out->is_integer = false;
    if (mantissa == 0 && significant <= 19) {
        /* every digit is zero */
        out->real = negative ? -0.0 : 0.0;
        return true;
    }
    if (significant <= 19) {
        int64_t e = exponent + written_exponent;
        /* Clinger's fast path: an exact mantissa times an exact power of ten is
         * one correctly rounded operation */
        if (mantissa <= EXACT_DOUBLE_INT_U) {
            while (e > 22 && mantissa <= EXACT_DOUBLE_INT_U / 10) {
                mantissa *= 10;
                e--;
            }
            if (e >= -22 && e <= 22) {
                double d = (double)mantissa;
                d = e < 0 ? d / POW10[-e] : d * POW10[e];
                out->real = negative ? -d : d;
                return true;
            }
        }
    }
    /* count the fraction digits for the strtod form */
    int64_t fraction_digits = 0;
    const unsigned char *dot = memchr(start, '.', (size_t)(mantissa_end - start));
    if (dot) fraction_digits = mantissa_end - dot - 1;
    return slow_real(ps, start, mantissa_end, written_exponent - fraction_digits, &out->real);
}

/* ------------------------------------------------------------ strings */

/* jansson's UTF-8 rules (shortest form, no surrogates, up to U+10FFFF);
 * returns the sequence length at p, 0 if invalid */
static size_t utf8_sequence(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000)) return 0;
    return n;
}

static int hex4(const unsigned char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i];
        int d;
        if (c >= '0' && c <= '9')
            d = (int)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (int)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = (int)(c - 'A' + 10);
        else
            return -1;
        v = v * 16 + d;
    }
    return v;
}

static size_t utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* The string at ps->p (its opening quote) decoded into ps->scratch. False on
 * bad syntax, invalid UTF-8, a lone surrogate, or \u0000 (jansson refuses it
 * in values and keys alike without JSON_ALLOW_NUL). */
static bool parse_string(parser *ps, size_t *len)
{
    const unsigned char *p = ps->p + 1, *end = ps->end;
    size_t n = 0;
    for (;;) {
        const unsigned char *run = p;
        while (p < end && *p >= 0x20 && *p != '"' && *p != '\\' && *p < 0x80) p++;
        size_t run_len = (size_t)(p - run);
        if (!scratch_reserve(ps, n + run_len + 8)) return false;
        memcpy(ps->scratch + n, run, run_len);
        n += run_len;
        if (p == end) return false;
        unsigned c = *p;
        if (c == '"') {
            ps->p = p + 1;
            *len = n;
            return true;
        }
        if (c < 0x20) return false;
        if (c >= 0x80) {
            size_t k = utf8_sequence(p, end);
            if (!k) return false;
            memcpy(ps->scratch + n, p, k);
            n += k;
            p += k;
            continue;
        }
        /* an escape */
        if (end - p < 2) return false;
        unsigned e = p[1];
        char simple = 0;
        switch (e) {
        case '"': simple = '"'; break;
        case '\\': simple = '\\'; break;
        case '/': simple = '/'; break;
        case 'b': simple = '\b'; break;
        case 'f': simple = '\f'; break;
        case 'n': simple = '\n'; break;
        case 'r': simple = '\r'; break;
        case 't': simple = '\t'; break;
        case 'u': break;
        default: return false;
        }
        if (simple) {
            ps->scratch[n++] = simple;
            p += 2;
            continue;
        }
        if (end - p < 6) return false;
        int cp = hex4(p + 2);
        if (cp < 0) return false;
        p += 6;
        uint32_t value = (uint32_t)cp;
        if (value >= 0xd800 && value <= 0xdbff) {
            if (end - p < 6 || p[0] != '\\' || p[1] != 'u') return false;
            int low = hex4(p + 2);
            if (low < 0xdc00 || low > 0xdfff) return false;
            p += 6;
            value = 0x10000 + ((value - 0xd800) << 10) + ((uint32_t)low - 0xdc00);
        } else if (value >= 0xdc00 && value <= 0xdfff) {
            return false;
        }
        if (value == 0) return false;
        n += utf8_encode(value, ps->scratch + n);
    }
}

/* ------------------------------------------------------------ number lists */

static bool list_reserve(parser *ps, size_t count)
{
    if (count > (SIZE_MAX - LIST_HEADER) / LIST_BYTES_PER_ELEMENT) return false;
    /* room to append the kinds after the doubles at the end */
    size_t bytes = LIST_HEADER + count * LIST_BYTES_PER_ELEMENT;
    if (!grow((void **)&ps->list, &ps->list_cap, bytes) || !grow((void **)&ps->kinds, &ps->kinds_cap, count))
        return false;
    ps->list_room = count;
    return true;
}

/* "NaN", "Infinity" or "-Infinity" with its quotes at p, as written; 0 otherwise */
static size_t non_finite_string(const unsigned char *p, const unsigned char *end, json_fast_kind *kind,
                                double *value)
{
    size_t left = (size_t)(end - p);
    if (left >= 5 && memcmp(p, "\"NaN\"", 5) == 0) {
        *kind = JSON_FAST_NAN;
        *value = (double)NAN;
        return 5;
    }
    if (left >= 10 && memcmp(p, "\"Infinity\"", 10) == 0) {
        *kind = JSON_FAST_INFINITY;
        *value = (double)INFINITY;
        return 10;
    }
    if (left >= 11 && memcmp(p, "\"-Infinity\"", 11) == 0) {
        *kind = JSON_FAST_NEG_INFINITY;
        *value = -(double)INFINITY;
        return 11;
    }
    return 0;
}

typedef enum list_result { LIST_MADE, LIST_NOT_APPLICABLE, LIST_OUT_OF_MEMORY } list_result;

/* Reads the array at ps->p as a number list. When it is not one (too short,
 * an element of another kind, a syntax error the ordinary parser will
 * report), ps->p is left at the '[' so the ordinary parser takes over. */
static list_result parse_number_list(parser *ps, json_t **out)
{
    const unsigned char *open = ps->p;
    size_t nuls_skipped = ps->nuls_skipped;
    ps->p++;
    skip_ws(ps);
    size_t count = 0;
    list_result result = LIST_NOT_APPLICABLE;
    if (ps->p < ps->end && *ps->p == ']') goto restore;
    for (;;) {
        if (count == ps->list_room) {
            if (!list_reserve(ps, count < 1024 ? 1024 : count * 2)) {
                result = LIST_OUT_OF_MEMORY;
                goto restore;
            }
        }
        if (ps->p == ps->end) goto restore;
        json_fast_kind kind;
        double value;
        unsigned char c = *ps->p;
        if (c == '"') {
            size_t n = non_finite_string(ps->p, ps->end, &kind, &value);
            if (!n) goto restore;
            ps->p += n;
        } else if (c == '-' || is_digit(c)) {
            number num;
            if (!parse_number(ps, &num)) goto restore;
            if (num.is_integer) {
                if (num.integer > (int64_t)EXACT_DOUBLE_INT_U || num.integer < -(int64_t)EXACT_DOUBLE_INT_U)
                    goto restore; /* a double would round it; jansson keeps the int64 */
                kind = JSON_FAST_INTEGER;
                value = (double)num.integer;
            } else {
                kind = JSON_FAST_REAL;
                value = num.real;
            }
        } else {
            goto restore;
        }
        memcpy(ps->list + LIST_HEADER + count * sizeof(double), &value, sizeof value);
        ps->kinds[count] = (unsigned char)kind;
        count++;
        skip_ws(ps);
        if (ps->p == ps->end) goto restore;
        if (*ps->p == ',') {
            ps->p++;
            skip_ws(ps);
            continue;
        }
        if (*ps->p == ']') {
            ps->p++;
            break;
        }
        goto restore;
    }
    if (count < ps->min_numbers) goto restore;
    {
        uint64_t count64 = count;
        memcpy(ps->list, LIST_MAGIC, sizeof LIST_MAGIC);
        memcpy(ps->list + sizeof LIST_MAGIC, &count64, sizeof count64);
        size_t values_end = LIST_HEADER + count * sizeof(double);
        memcpy(ps->list + values_end, ps->kinds, count);
        json_t *list = json_stringn_nocheck((const char *)ps->list, values_end + count);
        if (!list) {
            result = LIST_OUT_OF_MEMORY;
            goto restore;
        }
        *out = list;
        return LIST_MADE;
    }
restore:
    ps->p = open;
    ps->nuls_skipped = nuls_skipped;
    return result;
}

bool json_fast_numbers_view(const json_t *value, json_fast_numbers *out)
{
    if (!json_is_string(value)) return false;
    size_t len = json_string_length(value);
    const unsigned char *s = (const unsigned char *)json_string_value(value);
    if (len < LIST_HEADER || memcmp(s, LIST_MAGIC, sizeof LIST_MAGIC) != 0) return false;
    uint64_t count;
    memcpy(&count, s + sizeof LIST_MAGIC, sizeof count);
    if (count > (len - LIST_HEADER) / LIST_BYTES_PER_ELEMENT || LIST_HEADER + count * LIST_BYTES_PER_ELEMENT != len)
        return false;
    out->count = (size_t)count;
    out->values = s + LIST_HEADER;
    out->kinds = s + LIST_HEADER + count * sizeof(double);
    return true;
}

json_t *json_fast_numbers_to_array(const json_t *value)
{
    json_fast_numbers n;
    if (!json_fast_numbers_view(value, &n)) return NULL;
    json_t *array = json_array();
    for (size_t i = 0; array && i < n.count; i++) {
        double d = json_fast_numbers_value(&n, i);
        json_t *item;
        switch (json_fast_numbers_kind(&n, i)) {
        case JSON_FAST_INTEGER: item = json_integer((json_int_t)d); break;
        case JSON_FAST_REAL: item = json_real(d); break;
        case JSON_FAST_NAN: item = json_string("NaN"); break;
        case JSON_FAST_INFINITY: item = json_string("Infinity"); break;
        default: item = json_string("-Infinity"); break;
        }
        if (json_array_append_new(array, item) != 0) {
            json_decref(array);
            array = NULL;
        }
    }
    return array;
}

int json_fast_expand(json_t *root)
{
    if (json_is_object(root)) {
        for (void *it = json_object_iter(root); it; it = json_object_iter_next(root, it)) {
            json_t *v = json_object_iter_value(it);
            if (json_fast_numbers_view(v, &(json_fast_numbers){0})) {
                json_t *a = json_fast_numbers_to_array(v);
                if (!a || json_object_iter_set_new(root, it, a) != 0) return -1;
            } else if (json_fast_expand(v) != 0) {
                return -1;
            }
        }
    } else if (json_is_array(root)) {
        for (size_t i = 0; i < json_array_size(root); i++) {
            json_t *v = json_array_get(root, i);
            if (json_fast_numbers_view(v, &(json_fast_numbers){0})) {
                json_t *a = json_fast_numbers_to_array(v);
                if (!a || json_array_set_new(root, i, a) != 0) return -1;
            } else if (json_fast_expand(v) != 0) {
                return -1;
            }
        }
    }
    return 0;
}

/* ------------------------------------------------------------ the DOM */

static json_t *parse_value(parser *ps, size_t depth, bool in_data);

/* jansson counts every value, scalars included, against its depth limit */
static json_t *parse_array(parser *ps, size_t depth, bool in_data)
{
    json_t *array = json_array();
    if (!array) return NULL;
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
        return array;
    }
    for (;;) {
        json_t *item = parse_value(ps, depth + 1, in_data);
        if (!item || json_array_append_new(array, item) != 0) break;
        skip_ws(ps);
        if (ps->p == ps->end) break;
        if (*ps->p == ',') {
            ps->p++;
            skip_ws(ps);
            continue;
        }
        if (*ps->p == ']') {
            ps->p++;
            return array;
        }
        break;
    }
    json_decref(array);
    return NULL;
}

static json_t *parse_object(parser *ps, size_t depth)
{
    json_t *object = json_object();
    if (!object) return NULL;
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
        return object;
    }
    char small_key[64];
    char *key = NULL;
    for (;;) {
        size_t key_len;
        if (ps->p == ps->end || *ps->p != '"' || !parse_string(ps, &key_len)) break;
        /* the value reuses the scratch buffer, so the key moves out of it */
        key = key_len < sizeof small_key ? small_key : malloc(key_len + 1);
        if (!key) break;
        memcpy(key, ps->scratch, key_len);
        key[key_len] = '\0';
        if ((ps->flags & JSON_REJECT_DUPLICATES) && json_object_getn(object, key, key_len)) break;
        skip_ws(ps);
        if (ps->p == ps->end || *ps->p != ':') break;
        ps->p++;
        skip_ws(ps);
        bool is_data = key_len == 4 && memcmp(key, "data", 4) == 0;
        json_t *value = parse_value(ps, depth + 1, is_data);
        if (!value || json_object_setn_new_nocheck(object, key, key_len, value) != 0) break;
        if (key != small_key) free(key);
        key = NULL;
        skip_ws(ps);
        if (ps->p == ps->end) break;
        if (*ps->p == ',') {
            ps->p++;
            skip_ws(ps);
            continue;
        }
        if (*ps->p == '}') {
            ps->p++;
            return object;
        }
        break;
    }
    if (key != small_key) free(key);
    json_decref(object);
    return NULL;
}

static bool literal(parser *ps, const char *word, size_t n)
{
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0) return false;
    ps->p = skip_pushed_back_nul(ps, ps->p + n);
    return true;
}

static json_t *parse_value(parser *ps, size_t depth, bool in_data)
{
    if (depth > JSON_PARSER_MAX_DEPTH || ps->p == ps->end) return NULL;
    switch (*ps->p) {
    case '{':
        return parse_object(ps, depth);
    case '[':
        if (in_data && depth + 1 <= JSON_PARSER_MAX_DEPTH) {
            json_t *list = NULL;
            list_result r = parse_number_list(ps, &list);
            if (r == LIST_MADE) return list;
            if (r == LIST_OUT_OF_MEMORY) return NULL;
        }
        return parse_array(ps, depth, in_data);
    case '"': {
        size_t len;
        if (!parse_string(ps, &len)) return NULL;
        return json_stringn_nocheck(ps->scratch, len);
    }
    case 't':
        return literal(ps, "true", 4) ? json_true() : NULL;
    case 'f':
        return literal(ps, "false", 5) ? json_false() : NULL;
    case 'n':
        return literal(ps, "null", 4) ? json_null() : NULL;
    default: {
        number num;
        if (!parse_number(ps, &num)) return NULL;
        return num.is_integer ? json_integer((json_int_t)num.integer) : json_real(num.real);
    }
    }
}

json_t *json_fast_loadb_opts(const char *text, size_t len, size_t flags, const json_fast_options *options,
                             json_error_t *error)
{
    const size_t supported = JSON_REJECT_DUPLICATES | JSON_DECODE_ANY;
    if (!text || (flags & ~supported)) return json_loadb(text, len, flags, error);
    parser ps = {
        .p = (const unsigned char *)text,
        .end = (const unsigned char *)text + len,
        .flags = flags,
        .min_numbers = options && options->min_numbers ? options->min_numbers : 1,
    };
    skip_ws(&ps);
    json_t *root = NULL;
    if (ps.p < ps.end && ((flags & JSON_DECODE_ANY) || *ps.p == '[' || *ps.p == '{')) {
        root = parse_value(&ps, 1, false);
        skip_ws(&ps);
        if (root && ps.p != ps.end) {
            json_decref(root);
            root = NULL;
        }
    }
    free(ps.scratch);
    free(ps.list);
    free(ps.kinds);
    if (root) {
        if (error) {
            /* what json_loadb leaves on success */
            memset(error, 0, sizeof *error);
            error->line = error->column = -1;
            error->position = (int)(len - ps.nuls_skipped);
            snprintf(error->source, sizeof error->source, "<buffer>");
        }
        return root;
    }
    if (options && options->no_fallback) {
        if (error) {
            memset(error, 0, sizeof *error);
            error->line = error->column = -1;
            snprintf(error->text, sizeof error->text, "json_fast: parse failed");
        }
        return NULL;
    }
    /* errors are rare and must read exactly as jansson's: let it find its own */
    return json_loadb(text, len, flags, error);
}

json_t *json_fast_loadb(const char *text, size_t len, size_t flags, json_error_t *error)
{
    json_fast_options options = {.min_numbers = JSON_FAST_MIN_NUMBERS};
    return json_fast_loadb_opts(text, len, flags, &options, error);
}
