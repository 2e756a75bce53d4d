/* base64.c — table-driven RFC 4648 base64. The decoder works a quad at a time
 * and checks four table lookups with one OR, so the common, valid case costs
 * no per-character branch. */
#include "proto/base64.h"

static const char ENCODE[64] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* 0x80 marks a character outside the alphabet (including '=' and whitespace) */
#define X 0x80
static const uint8_t DECODE[256] = {
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  /* 0x00 */
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  /* 0x10 */
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  62, X,  X,  X,  63, /* 0x20 */
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, X,  X,  X,  X,  X,  X,  /* 0x30 */
    X,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, /* 0x40 */
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, X,  X,  X,  X,  X,  /* 0x50 */
    X,  26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, /* 0x60 */
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, X,  X,  X,  X,  X,  /* 0x70 */
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  /* 0x80 */
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  /* 0x90 */
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  /* 0xa0 */
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  /* 0xb0 */
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  /* 0xc0 */
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  /* 0xd0 */
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  /* 0xe0 */
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  /* 0xf0 */
};
#undef X

bool base64_encoded_size(size_t n, size_t *out)
{
    size_t quads = n / 3 + (n % 3 != 0);
    if (quads > SIZE_MAX / 4) return false;
    *out = quads * 4;
    return true;
}

void base64_encode(const uint8_t *in, size_t n, char *out)
{
    size_t i = 0;
    for (; i + 3 <= n; i += 3, out += 4) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[0] = ENCODE[v >> 18];
        out[1] = ENCODE[(v >> 12) & 63];
        out[2] = ENCODE[(v >> 6) & 63];
        out[3] = ENCODE[v & 63];
    }
    size_t rest = n - i;
    if (rest == 0) return;
    uint32_t v = (uint32_t)in[i] << 16 | (rest == 2 ? (uint32_t)in[i + 1] << 8 : 0);
    out[0] = ENCODE[v >> 18];
    out[1] = ENCODE[(v >> 12) & 63];
    out[2] = rest == 2 ? ENCODE[(v >> 6) & 63] : '=';
    out[3] = '=';
}

/* Characters that carry data, once trailing padding is set aside. */
static size_t data_length(const char *text, size_t len)
{
    if (len % 4 != 0 || len == 0) return len;
    size_t pad = 0;
    while (pad < 2 && text[len - 1 - pad] == '=') pad++;
    return len - pad;
}

static size_t first_invalid(const char *text, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        if (DECODE[(uint8_t)text[i]] & 0x80) return i;
    return to;
}

bool base64_decoded_size(const char *text, size_t len, size_t *out, size_t *bad_offset)
{
    if (len % 4 == 1) {
        /* one dangling character cannot complete a byte; a stray character
         * earlier (often whitespace) is the likelier cause, so name it first */
        *bad_offset = first_invalid(text, 0, len - 1);
        return false;
    }
    size_t chars = data_length(text, len);
    size_t rest = chars % 4;
    *out = chars / 4 * 3 + (rest == 0 ? 0 : rest - 1);
    return true;
}

bool base64_decode(const char *text, size_t len, uint8_t *out, size_t *bad_offset)
{
    if (len % 4 == 1) {
        *bad_offset = len - 1;
        return false;
    }
    size_t chars = data_length(text, len);
    const uint8_t *s = (const uint8_t *)text;
    size_t i = 0;
    for (; i + 4 <= chars; i += 4, out += 3) {
        uint32_t a = DECODE[s[i]], b = DECODE[s[i + 1]], c = DECODE[s[i + 2]], d = DECODE[s[i + 3]];
        if ((a | b | c | d) & 0x80) {
            *bad_offset = first_invalid(text, i, i + 4);
            return false;
        }
        uint32_t v = a << 18 | b << 12 | c << 6 | d;
        out[0] = (uint8_t)(v >> 16);
        out[1] = (uint8_t)(v >> 8);
        out[2] = (uint8_t)v;
    }
    size_t rest = chars - i;
    if (rest == 0) return true;
    size_t bad = first_invalid(text, i, chars);
    if (bad < chars) {
        *bad_offset = bad;
        return false;
    }
    uint32_t v = (uint32_t)DECODE[s[i]] << 18 | (uint32_t)DECODE[s[i + 1]] << 12 |
                 (rest == 3 ? (uint32_t)DECODE[s[i + 2]] << 6 : 0);
    out[0] = (uint8_t)(v >> 16);
    if (rest == 3) out[1] = (uint8_t)(v >> 8);
    return true;
}
