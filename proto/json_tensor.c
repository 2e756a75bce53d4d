/* json_tensor.c — tensors to and from JSON. Numbers are written by a Ryu-style
 * shortest round-trip formatter (Ulf Adams, "Ryū: fast float-to-string
 * conversion", PLDI 2018) straight into a text buffer, because building one
 * json_t per number and letting jansson print "%.17g" is several times slower. */
#include "proto/json_tensor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/base64.h"
#include "proto/json_fast.h"
#include "proto/random_init.h"

enum {
    SHAPE_TEXT_MAX = 128,   /* "[" + 4 int64 dims + separators + "]" */
    KEY_EXCERPT_MAX = 48,   /* unknown keys are quoted up to this length */
    LIST_NUMBER_MAX = 16,   /* longest number (or quoted "-Infinity") plus its comma */
    B64_TAIL_MAX = 4,       /* '"}' and a NUL after the base64 text */
};

/* ------------------------------------------------------------ float -> text */

/* Ryu's float tables, exact integers computed with Python's big ints:
 *   POW5_INV_SPLIT[i] = 2**(pow5bits(i) - 1 + 59) // 5**i + 1
 *   POW5_SPLIT[i]     = 5**i >> (pow5bits(i) - 61)   (a left shift when negative) */
#define POW5_INV_BITCOUNT 59
#define POW5_BITCOUNT 61
static const uint64_t POW5_INV_SPLIT[31] = {
    576460752303423489u, 461168601842738791u, 368934881474191033u,
    295147905179352826u, 472236648286964522u, 377789318629571618u,
    302231454903657294u, 483570327845851670u, 386856262276681336u,
    309485009821345069u, 495176015714152110u, 396140812571321688u,
    316912650057057351u, 507060240091291761u, 405648192073033409u,
    324518553658426727u, 519229685853482763u, 415383748682786211u,
    332306998946228969u, 531691198313966350u, 425352958651173080u,
    340282366920938464u, 544451787073501542u, 435561429658801234u,
    348449143727040987u, 557518629963265579u, 446014903970612463u,
    356811923176489971u, 570899077082383953u, 456719261665907162u,
    365375409332725730u,
};
static const uint64_t POW5_SPLIT[47] = {
    1152921504606846976u, 1441151880758558720u, 1801439850948198400u,
    2251799813685248000u, 1407374883553280000u, 1759218604441600000u,
    2199023255552000000u, 1374389534720000000u, 1717986918400000000u,
    2147483648000000000u, 1342177280000000000u, 1677721600000000000u,
    2097152000000000000u, 1310720000000000000u, 1638400000000000000u,
    2048000000000000000u, 1280000000000000000u, 1600000000000000000u,
    2000000000000000000u, 1250000000000000000u, 1562500000000000000u,
    1953125000000000000u, 1220703125000000000u, 1525878906250000000u,
    1907348632812500000u, 1192092895507812500u, 1490116119384765625u,
    1862645149230957031u, 1164153218269348144u, 1455191522836685180u,
    1818989403545856475u, 2273736754432320594u, 1421085471520200371u,
    1776356839400250464u, 2220446049250313080u, 1387778780781445675u,
    1734723475976807094u, 2168404344971008868u, 1355252715606880542u,
    1694065894508600678u, 2117582368135750847u, 1323488980084844279u,
    1654361225106055349u, 2067951531382569187u, 1292469707114105741u,
    1615587133892632177u, 2019483917365790221u,
};

/* ceil(log2(5^e)) for e in [0, 3528], 1 for e = 0 */
static int32_t pow5bits(int32_t e) { return (int32_t)(((uint32_t)e * 1217359u) >> 19) + 1; }
/* floor(log10(2^e)) and floor(log10(5^e)) for the exponents floats have */
static uint32_t log10_pow2(int32_t e) { return ((uint32_t)e * 78913u) >> 18; }
static uint32_t log10_pow5(int32_t e) { return ((uint32_t)e * 732923u) >> 20; }

static bool multiple_of_pow5(uint32_t value, uint32_t p)
{
    uint32_t count = 0;
    while (value % 5 == 0 && value != 0) {
        value /= 5;
        count++;
    }
    return count >= p;
}

static bool multiple_of_pow2(uint32_t value, uint32_t p) { return (value & ((1u << p) - 1)) == 0; }

/* (m * factor) >> shift, shift > 32, without a 128-bit product */
static uint32_t mul_shift(uint32_t m, uint64_t factor, int32_t shift)
{
    uint64_t low = (uint64_t)m * (uint32_t)factor;
    uint64_t high = (uint64_t)m * (uint32_t)(factor >> 32);
    uint64_t sum = (low >> 32) + high;
    return (uint32_t)(sum >> (shift - 32));
}

/* Shortest decimal digits * 10^exponent that lies within the rounding
 * interval of a finite, positive or zero float; ties go to the closest. */
static void float_to_decimal(uint32_t bits, uint32_t *digits, int32_t *exponent)
{
    uint32_t ieee_mantissa = bits & 0x7fffffu;
    uint32_t ieee_exponent = (bits >> 23) & 0xffu;
    int32_t e2;
    uint32_t m2;
    if (ieee_exponent == 0) {
        e2 = 1 - 127 - 23 - 2;
        m2 = ieee_mantissa;
    } else {
        e2 = (int32_t)ieee_exponent - 127 - 23 - 2;
        m2 = (1u << 23) | ieee_mantissa;
    }
    bool accept_bounds = (m2 & 1) == 0; /* round-half-even reads the bounds back as this float */

    /* the value and its interval's ends, times 4 so they stay integers */
    uint32_t mv = 4 * m2;
    uint32_t mp = 4 * m2 + 2;
    uint32_t mm_shift = ieee_mantissa != 0 || ieee_exponent <= 1;
    uint32_t mm = 4 * m2 - 1 - mm_shift;

    uint32_t vr, vp, vm;
    int32_t e10;
    bool vm_trailing_zeros = false, vr_trailing_zeros = false;
    uint8_t last_removed = 0;
    if (e2 >= 0) {
        uint32_t q = log10_pow2(e2);
        e10 = (int32_t)q;
        int32_t k = POW5_INV_BITCOUNT + pow5bits((int32_t)q) - 1;
        int32_t i = -e2 + (int32_t)q + k;
        vr = mul_shift(mv, POW5_INV_SPLIT[q], i);
        vp = mul_shift(mp, POW5_INV_SPLIT[q], i);
        vm = mul_shift(mm, POW5_INV_SPLIT[q], i);
        if (q != 0 && (vp - 1) / 10 <= vm / 10) {
            int32_t l = POW5_INV_BITCOUNT + pow5bits((int32_t)(q - 1)) - 1;
            last_removed = (uint8_t)(mul_shift(mv, POW5_INV_SPLIT[q - 1], -e2 + (int32_t)q - 1 + l) % 10);
        }
        if (q <= 9) {
            if (mv % 5 == 0)
                vr_trailing_zeros = multiple_of_pow5(mv, q);
            else if (accept_bounds)
                vm_trailing_zeros = multiple_of_pow5(mm, q);
            else
                vp -= multiple_of_pow5(mp, q);
        }
    } else {
        uint32_t q = log10_pow5(-e2);
        e10 = (int32_t)q + e2;
        int32_t i = -e2 - (int32_t)q;
        int32_t k = pow5bits(i) - POW5_BITCOUNT;
        int32_t j = (int32_t)q - k;
        vr = mul_shift(mv, POW5_SPLIT[i], j);
        vp = mul_shift(mp, POW5_SPLIT[i], j);
        vm = mul_shift(mm, POW5_SPLIT[i], j);
        if (q != 0 && (vp - 1) / 10 <= vm / 10) {
            j = (int32_t)q - 1 - (pow5bits(i + 1) - POW5_BITCOUNT);
            last_removed = (uint8_t)(mul_shift(mv, POW5_SPLIT[i + 1], j) % 10);
        }
        if (q <= 1) {
            vr_trailing_zeros = true;
            if (accept_bounds)
                vm_trailing_zeros = mm_shift == 1;
            else
                --vp;
        } else if (q < 31) {
            vr_trailing_zeros = multiple_of_pow2(mv, q - 1);
        }
    }

    int32_t removed = 0;
    uint32_t output;
    if (vm_trailing_zeros || vr_trailing_zeros) {
        /* rare: an interval end or the value itself is exact in decimal */
        while (vp / 10 > vm / 10) {
            vm_trailing_zeros &= vm % 10 == 0;
            vr_trailing_zeros &= last_removed == 0;
            last_removed = (uint8_t)(vr % 10);
            vr /= 10;
            vp /= 10;
            vm /= 10;
            ++removed;
        }
        if (vm_trailing_zeros) {
            while (vm % 10 == 0) {
                vr_trailing_zeros &= last_removed == 0;
                last_removed = (uint8_t)(vr % 10);
                vr /= 10;
                vp /= 10;
                vm /= 10;
                ++removed;
            }
        }
        if (vr_trailing_zeros && last_removed == 5 && vr % 2 == 0) last_removed = 4; /* exact tie: even */
        output = vr + ((vr == vm && (!accept_bounds || !vm_trailing_zeros)) || last_removed >= 5);
    } else {
        while (vp / 10 > vm / 10) {
            last_removed = (uint8_t)(vr % 10);
            vr /= 10;
            vp /= 10;
            vm /= 10;
            ++removed;
        }
        output = vr + (vr == vm || last_removed >= 5);
    }
    *digits = output;
    *exponent = e10 + removed;
}

static int decimal_length(uint32_t v)
{
    int n = 1;
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

/* Most readers (jansson, Python's json) parse a number to double and only
 * then round to float32. An exhaustive run over all 2^32 floats found one
 * magnitude whose shortest form, "7.038531e-26", is exact for strtof but
 * lands on the next float through double; it gets 8 digits instead. */
#define DOUBLE_ROUNDING_TRAP 0x15ae43fdu

static const char DIGIT_PAIRS[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* writes the n decimal digits of v at out[0..n) */
static void write_digits(uint32_t v, int n, char *out)
{
    char *p = out + n;
    while (v >= 100) {
        uint32_t pair = (v % 100) * 2;
        v /= 100;
        p -= 2;
        p[0] = DIGIT_PAIRS[pair];
        p[1] = DIGIT_PAIRS[pair + 1];
    }
    if (v >= 10) {
        p -= 2;
        p[0] = DIGIT_PAIRS[v * 2];
        p[1] = DIGIT_PAIRS[v * 2 + 1];
    } else {
        *--p = (char)('0' + v);
    }
}

size_t json_tensor_format_float(float value, char out[JSON_TENSOR_FLOAT_MAX])
{
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    bool negative = bits >> 31;
    uint32_t magnitude = bits & 0x7fffffffu;
    const char *special = NULL;
    if (magnitude > 0x7f800000u)
        special = "\"NaN\"";
    else if (magnitude == 0x7f800000u)
        special = negative ? "\"-Infinity\"" : "\"Infinity\"";
    else if (magnitude == 0)
        /* "-0" would read back as the integer 0 in jansson and most parsers */
        special = negative ? "-0.0" : "0";
    if (special) {
        size_t n = strlen(special);
        memcpy(out, special, n + 1);
        return n;
    }

    uint32_t digits;
    int32_t exponent;
    if (magnitude == DOUBLE_ROUNDING_TRAP) {
        digits = 70385307; /* the closest 8 digits, which read back right both ways */
        exponent = -33;
    } else {
        float_to_decimal(magnitude, &digits, &exponent);
    }
    int n = decimal_length(digits);
    int point = n + exponent; /* digits before the decimal point */
    int sci_exponent = point - 1;
    int abs_sci = sci_exponent < 0 ? -sci_exponent : sci_exponent;
    int sci_len = n + (n > 1) + 1 + (sci_exponent < 0) + (abs_sci >= 10 ? 2 : 1);
    int plain_len = exponent >= 0 ? point : point > 0 ? n + 1 : 2 - point + n;

    char *p = out;
    if (negative) *p++ = '-';
    if (plain_len <= sci_len) {
        /* plain integers stay short here (< 15 digits), so they fit any parser's integer type */
        if (exponent >= 0) {
            write_digits(digits, n, p);
            memset(p + n, '0', (size_t)exponent);
            p += point;
        } else if (point > 0) {
            write_digits(digits, n, p + 1);
            memmove(p, p + 1, (size_t)point);
            p[point] = '.';
            p += n + 1;
        } else {
            p[0] = '0';
            p[1] = '.';
            memset(p + 2, '0', (size_t)-point);
            write_digits(digits, n, p + 2 - point);
            p += 2 - point + n;
        }
    } else {
        write_digits(digits, n, p + 1);
        p[0] = p[1];
        if (n > 1) {
            p[1] = '.';
            p += n + 1;
        } else {
            p += 1;
        }
        *p++ = 'e';
        if (sci_exponent < 0) *p++ = '-';
        if (abs_sci >= 10) {
            *p++ = DIGIT_PAIRS[abs_sci * 2];
            *p++ = DIGIT_PAIRS[abs_sci * 2 + 1];
        } else {
            *p++ = (char)('0' + abs_sci);
        }
    }
    *p = '\0';
    return (size_t)(p - out);
}

/* ------------------------------------------------------------ writers */

static bool host_is_little_endian(void)
{
    return __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;
}

/* Copies n floats as little-endian bytes. */
static void store_le_floats(const float *in, size_t n, uint8_t *out)
{
    if (host_is_little_endian()) {
        memcpy(out, in, n * sizeof(float));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &in[i], sizeof bits);
        out[4 * i] = (uint8_t)bits;
        out[4 * i + 1] = (uint8_t)(bits >> 8);
        out[4 * i + 2] = (uint8_t)(bits >> 16);
        out[4 * i + 3] = (uint8_t)(bits >> 24);
    }
}

static size_t write_shape(const conv_tensor *t, char *out)
{
    char *p = out;
    memcpy(p, "{\"shape\":[", 10);
    p += 10;
    for (int i = 0; i < t->rank; i++) {
        if (i) *p++ = ',';
        p += sprintf(p, "%lld", (long long)t->dims[i]);
    }
    *p++ = ']';
    return (size_t)(p - out);
}

conv_status json_tensor_write_list(const conv_tensor *t, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    size_t numel = conv_tensor_numel(t), capacity;
    if (!conv_size_mul(numel, LIST_NUMBER_MAX, &capacity) || !conv_size_add(capacity, SHAPE_TEXT_MAX, &capacity))
        return CONV_LIMIT_EXCEEDED;
    char *text = malloc(capacity);
    if (!text) return CONV_OUT_OF_MEMORY;
    char *p = text + write_shape(t, text);
    memcpy(p, ",\"data\":[", 9);
    p += 9;
    for (size_t i = 0; i < numel; i++) {
        if (i) *p++ = ',';
        p += json_tensor_format_float(t->data[i], p);
    }
    memcpy(p, "]}", 3);
    p += 2;
    size_t used = (size_t)(p - text);
    /* the worst case reserves ~16 bytes a number; typical text is much shorter */
    char *shrunk = realloc(text, used + 1);
    *out = shrunk ? shrunk : text;
    *len = used;
    return CONV_OK;
}

/* base64 of t's data as little-endian float32, malloc'ed with reserve bytes
 * free before it and B64_TAIL_MAX after it */
static conv_status encode_b64(const conv_tensor *t, size_t reserve, char **text, size_t *chars)
{
    size_t numel = conv_tensor_numel(t), bytes, capacity;
    if (!conv_size_mul(numel, sizeof(float), &bytes) || !base64_encoded_size(bytes, chars) ||
        !conv_size_add(*chars, reserve, &capacity) || !conv_size_add(capacity, B64_TAIL_MAX, &capacity))
        return CONV_LIMIT_EXCEEDED;
    *text = malloc(capacity);
    if (!*text) return CONV_OUT_OF_MEMORY;
    if (host_is_little_endian()) {
        base64_encode((const uint8_t *)t->data, bytes, *text + reserve);
        return CONV_OK;
    }
    uint8_t *raw = malloc(bytes ? bytes : 1);
    if (!raw) {
        free(*text);
        *text = NULL;
        return CONV_OUT_OF_MEMORY;
    }
    store_le_floats(t->data, numel, raw);
    base64_encode(raw, bytes, *text + reserve);
    free(raw);
    return CONV_OK;
}

conv_status json_tensor_write_b64(const conv_tensor *t, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    char *text;
    size_t chars;
    /* the base64 goes after room for the shape, which is then moved up against it */
    conv_status st = encode_b64(t, SHAPE_TEXT_MAX, &text, &chars);
    if (st != CONV_OK) return st;
    char head[SHAPE_TEXT_MAX];
    size_t head_len = write_shape(t, head);
    memcpy(head + head_len, ",\"b64\":\"", 8);
    head_len += 8;
    char *start = text + SHAPE_TEXT_MAX - head_len;
    memcpy(start, head, head_len);
    memcpy(text + SHAPE_TEXT_MAX + chars, "\"}", 3);
    size_t used = head_len + chars + 2;
    memmove(text, start, used + 1);
    *out = text;
    *len = used;
    return CONV_OK;
}

static json_t *shape_to_json(const conv_tensor *t)
{
    json_t *shape = json_array();
    for (int i = 0; shape && i < t->rank; i++) {
        if (json_array_append_new(shape, json_integer((json_int_t)t->dims[i])) != 0) {
            json_decref(shape);
            return NULL;
        }
    }
    return shape;
}

static json_t *float_to_json(float v)
{
    if (isnan(v)) return json_string("NaN");
    if (isinf(v)) return json_string(v > 0 ? "Infinity" : "-Infinity");
    return json_real((double)v);
}

json_t *json_tensor_to_json(const conv_tensor *t, json_tensor_encoding encoding)
{
    if (encoding != JSON_TENSOR_LIST && encoding != JSON_TENSOR_B64) return NULL;
    json_t *object = json_object();
    json_t *shape = shape_to_json(t);
    if (!object || !shape || json_object_set_new(object, "shape", shape) != 0) {
        json_decref(object);
        return NULL;
    }
    size_t numel = conv_tensor_numel(t);
    if (encoding == JSON_TENSOR_LIST) {
        json_t *data = json_array();
        if (!data || json_object_set_new(object, "data", data) != 0) {
            json_decref(object);
            return NULL;
        }
        for (size_t i = 0; i < numel; i++) {
            if (json_array_append_new(data, float_to_json(t->data[i])) != 0) {
                json_decref(object);
                return NULL;
            }
        }
        return object;
    }
    char *text;
    size_t chars;
    if (encode_b64(t, 0, &text, &chars) != CONV_OK) {
        json_decref(object);
        return NULL;
    }
    json_t *b64 = json_stringn_nocheck(text, chars);
    free(text);
    if (!b64 || json_object_set_new(object, "b64", b64) != 0) {
        json_decref(object);
        return NULL;
    }
    return object;
}

/* ------------------------------------------------------------ parser */

typedef struct parse_context {
    const char *path;
    conv_error *err;
} parse_context;

/* JSON keys are untrusted: quoted in messages with non-printables replaced
 * and cut, so a message stays one short line. */
static void excerpt(const char *text, char *out, size_t out_size)
{
    size_t n = 0, i = 0;
    for (; text[i] && n + 4 < out_size; i++) {
        unsigned char c = (unsigned char)text[i];
        out[n++] = (c >= 0x20 && c < 0x7f && c != '"') ? (char)c : '?';
    }
    if (text[i]) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
}

static conv_status parse_shape(const parse_context *ctx, const json_t *shape, int64_t dims[CONV_MAX_RANK],
                               int *rank)
{
    if (!json_is_array(shape))
        return conv_fail(ctx->err, CONV_INVALID_SHAPE, "%s.shape: must be a list of 1 to %d positive integers",
                         ctx->path, CONV_MAX_RANK);
    size_t n = json_array_size(shape);
    if (n < 1 || n > CONV_MAX_RANK)
        return conv_fail(ctx->err, CONV_INVALID_SHAPE, "%s.shape: has %zu dims, rank must be 1 to %d", ctx->path, n,
                         CONV_MAX_RANK);
    for (size_t i = 0; i < n; i++) {
        const json_t *dim = json_array_get(shape, i);
        if (!json_is_integer(dim) || json_integer_value(dim) <= 0)
            return conv_fail(ctx->err, CONV_INVALID_SHAPE, "%s.shape[%zu]: must be a positive integer", ctx->path, i);
        dims[i] = (int64_t)json_integer_value(dim);
    }
    *rank = (int)n;
    return CONV_OK;
}

/* element i of "data" read as a real: refused beyond float32's range */
static conv_status store_real(const parse_context *ctx, size_t i, double d, float *out)
{
    *out = (float)d;
    if (isinf(*out))
        return conv_fail(ctx->err, CONV_INVALID_PARAMETER,
                         "%s.data[%zu]: %g is outside the float32 range (use \"Infinity\" for infinity)", ctx->path, i,
                         d);
    return CONV_OK;
}

/* JSON cannot spell the non-finite floats; these strings stand for them */
static bool non_finite_from_string(const char *s, float *out)
{
    if (strcmp(s, "NaN") == 0)
        *out = NAN;
    else if (strcmp(s, "Infinity") == 0)
        *out = INFINITY;
    else if (strcmp(s, "-Infinity") == 0)
        *out = -INFINITY;
    else
        return false;
    return true;
}

static conv_status parse_list(const parse_context *ctx, const json_t *data, float *out, size_t numel)
{
    for (size_t i = 0; i < numel; i++) {
        const json_t *item = json_array_get(data, i);
        json_fast_numbers nested;
        /* a nested json_fast number list is an array, whatever jansson calls it */
        json_type type = json_fast_numbers_view(item, &nested) ? JSON_ARRAY : json_typeof(item);
        switch (type) {
        case JSON_INTEGER:
            out[i] = (float)json_integer_value(item);
            break;
        case JSON_REAL:
            if (store_real(ctx, i, json_real_value(item), &out[i])) return CONV_INVALID_PARAMETER;
            break;
        case JSON_STRING:
            if (non_finite_from_string(json_string_value(item), &out[i])) break;
            return conv_fail(ctx->err, CONV_INVALID_PARAMETER,
                             "%s.data[%zu]: must be a number (or \"NaN\", \"Infinity\", \"-Infinity\")", ctx->path,
                             i);
        default:
            return conv_fail(ctx->err, CONV_INVALID_PARAMETER, "%s.data[%zu]: must be a number", ctx->path, i);
        }
    }
    return CONV_OK;
}

/* The same values and messages as parse_list, from a json_fast number list
 * (integers there are exact in a double, so the float rounding is the same) */
static conv_status parse_number_list(const parse_context *ctx, const json_fast_numbers *list, float *out,
                                     size_t numel)
{
    for (size_t i = 0; i < numel; i++) {
        double d = json_fast_numbers_value(list, i);
        switch (json_fast_numbers_kind(list, i)) {
        case JSON_FAST_INTEGER:
            out[i] = (float)d;
            break;
        case JSON_FAST_REAL:
            if (store_real(ctx, i, d, &out[i])) return CONV_INVALID_PARAMETER;
            break;
        case JSON_FAST_NAN:
            out[i] = NAN;
            break;
        case JSON_FAST_INFINITY:
            out[i] = INFINITY;
            break;
        default:
            out[i] = -INFINITY;
            break;
        }
    }
    return CONV_OK;
}

static conv_status parse_b64(const parse_context *ctx, const json_t *b64, float *out, size_t bytes)
{
    const char *text = json_string_value(b64);
    size_t len = json_string_length(b64), bad;
    if (!base64_decode(text, len, (uint8_t *)out, &bad))
        return conv_fail(ctx->err, CONV_INVALID_PARAMETER, "%s.b64: invalid base64 at offset %zu", ctx->path, bad);
    if (!host_is_little_endian()) {
        uint8_t *p = (uint8_t *)out;
        for (size_t i = 0; i + 4 <= bytes; i += 4) {
            uint8_t a = p[i], b = p[i + 1];
            p[i] = p[i + 3];
            p[i + 1] = p[i + 2];
            p[i + 2] = b;
            p[i + 3] = a;
        }
    }
    return CONV_OK;
}

conv_status json_tensor_parse(const json_t *value, const char *path, const int64_t *expected_shape,
                              int expected_rank, const json_tensor_limits *limits, conv_tensor *out,
                              json_tensor_encoding *encoding, conv_error *err)
{
    memset(out, 0, sizeof *out);
    parse_context ctx = {path ? path : "tensor", err};
    if (!json_is_object(value))
        return conv_fail(err, CONV_INVALID_PARAMETER,
                         "%s: must be an object with \"shape\" and one of \"data\", \"b64\" or \"init\"", ctx.path);

    const json_t *shape = NULL, *data = NULL, *b64 = NULL, *init = NULL, *seed = NULL;
    const char *key;
    json_t *member;
    json_object_foreach((json_t *)value, key, member) {
        if (strcmp(key, "shape") == 0)
            shape = member;
        else if (strcmp(key, "data") == 0)
            data = member;
        else if (strcmp(key, "b64") == 0)
            b64 = member;
        else if (strcmp(key, "init") == 0)
            init = member;
        else if (strcmp(key, "seed") == 0)
            seed = member;
        else {
            char quoted[KEY_EXCERPT_MAX];
            excerpt(key, quoted, sizeof quoted);
            return conv_fail(err, CONV_INVALID_PARAMETER,
                             "%s: unknown key \"%s\" (allowed: shape, data, b64, init, seed)", ctx.path, quoted);
        }
    }
    if ((data != NULL) + (b64 != NULL) + (init != NULL) != 1)
        return conv_fail(err, CONV_INVALID_PARAMETER, "%s: exactly one of \"data\", \"b64\" or \"init\" is required",
                         ctx.path);
    if (seed && !init)
        return conv_fail(err, CONV_INVALID_PARAMETER, "%s.seed: only allowed with \"init\"", ctx.path);

    int64_t dims[CONV_MAX_RANK];
    int rank = 0;
    char shape_text[SHAPE_TEXT_MAX], expected_text[SHAPE_TEXT_MAX];
    if (shape) {
        conv_status st = parse_shape(&ctx, shape, dims, &rank);
        if (st != CONV_OK) return st;
        if (expected_shape &&
            (rank != expected_rank || memcmp(dims, expected_shape, (size_t)rank * sizeof dims[0]) != 0)) {
            conv_shape_format(dims, rank, shape_text, sizeof shape_text);
            conv_shape_format(expected_shape, expected_rank, expected_text, sizeof expected_text);
            return conv_fail(err, CONV_INVALID_SHAPE, "%s.shape: %s does not match the expected %s", ctx.path,
                             shape_text, expected_text);
        }
    } else if (expected_shape && expected_rank >= 1 && expected_rank <= CONV_MAX_RANK) {
        rank = expected_rank;
        memcpy(dims, expected_shape, (size_t)rank * sizeof dims[0]);
    } else {
        return conv_fail(err, CONV_INVALID_PARAMETER, "%s.shape: is required", ctx.path);
    }
    conv_shape_format(dims, rank, shape_text, sizeof shape_text);

    /* everything below is sized from the shape, so the limit comes first */
    size_t numel, bytes;
    if (!conv_dims_product(dims, rank, &numel) || !conv_size_mul(numel, sizeof(float), &bytes))
        return conv_fail(err, CONV_LIMIT_EXCEEDED, "%s.shape: %s has too many elements", ctx.path, shape_text);
    if (limits && numel > limits->max_elements)
        return conv_fail(err, CONV_LIMIT_EXCEEDED, "%s.shape: %s has %zu elements, more than the limit of %zu",
                         ctx.path, shape_text, numel, limits->max_elements);

    uint64_t seed_value = 0;
    json_fast_numbers number_list;
    bool is_number_list = data && json_fast_numbers_view(data, &number_list);
    if (data) {
        if (!json_is_array(data) && !is_number_list)
            return conv_fail(err, CONV_INVALID_PARAMETER, "%s.data: must be a list of numbers", ctx.path);
        size_t count = is_number_list ? number_list.count : json_array_size(data);
        if (count != numel)
            return conv_fail(err, CONV_INVALID_SHAPE, "%s.data: has %zu numbers, shape %s needs %zu", ctx.path, count,
                             shape_text, numel);
    } else if (b64) {
        if (!json_is_string(b64))
            return conv_fail(err, CONV_INVALID_PARAMETER, "%s.b64: must be a base64 string", ctx.path);
        size_t decoded, bad;
        if (!base64_decoded_size(json_string_value(b64), json_string_length(b64), &decoded, &bad))
            return conv_fail(err, CONV_INVALID_PARAMETER, "%s.b64: invalid base64 at offset %zu", ctx.path, bad);
        if (decoded != bytes)
            return conv_fail(err, CONV_INVALID_SHAPE, "%s.b64: decodes to %zu bytes, shape %s needs %zu (4 per float32)",
                             ctx.path, decoded, shape_text, bytes);
    } else {
        if (!json_is_string(init) || strcmp(json_string_value(init), "random") != 0)
            return conv_fail(err, CONV_INVALID_PARAMETER, "%s.init: must be \"random\"", ctx.path);
        if (seed) {
            if (!json_is_integer(seed) || json_integer_value(seed) < 0)
                return conv_fail(err, CONV_INVALID_PARAMETER, "%s.seed: must be a non-negative integer", ctx.path);
            seed_value = (uint64_t)json_integer_value(seed);
        }
    }

    float *values = conv_aligned_alloc(bytes);
    if (!values)
        return conv_fail(err, CONV_OUT_OF_MEMORY, "%s: out of memory allocating %zu bytes", ctx.path, bytes);
    conv_status st = CONV_OK;
    json_tensor_encoding used;
    if (data) {
        st = is_number_list ? parse_number_list(&ctx, &number_list, values, numel)
                            : parse_list(&ctx, data, values, numel);
        used = JSON_TENSOR_LIST;
    } else if (b64) {
        st = parse_b64(&ctx, b64, values, bytes);
        used = JSON_TENSOR_B64;
    } else {
        random_init_fill(seed_value, values, numel);
        used = JSON_TENSOR_RANDOM;
    }
    if (st != CONV_OK) {
        conv_aligned_free(values);
        return st;
    }
    out->rank = rank;
    memcpy(out->dims, dims, (size_t)rank * sizeof dims[0]);
    out->data = values;
    out->owns_data = true;
    if (encoding) *encoding = used;
    return CONV_OK;
}
