/* json_fast.h — a strict JSON parser that builds the same jansson DOM as
 * json_loadb, except that long lists of numbers under a "data" key are kept
 * as packed doubles instead of one json_t per number. */
#ifndef CONVD_PROTO_JSON_FAST_H
#define CONVD_PROTO_JSON_FAST_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include <jansson.h>

/* Lists shorter than this stay ordinary jansson arrays. */
#define JSON_FAST_MIN_NUMBERS 64

/* Parses text[0..len) exactly as json_loadb(text, len, flags, error) would:
 * the same documents are accepted, the same errors (text, line, column,
 * position) reported, and the DOM is the same except for "number lists".
 * A number list replaces an array that
 *   - is the value of an object member named "data", or an element of an
 *     array that is itself in such a place (nested v2 data), and
 *   - has at least JSON_FAST_MIN_NUMBERS elements, each of them an integer of
 *     magnitude <= 2^53, a real (any that json_loadb accepts), or one of the
 *     strings "NaN", "Infinity", "-Infinity" spelled without escapes.
 * Any other array is an ordinary jansson array. A number list is a jansson
 * string that no JSON text can produce (it starts with a NUL byte, and the
 * parser refuses \u0000), so code unaware of it sees a string where it
 * expects an array and refuses it; it owns its values, so it lives and is
 * freed like any json_t. Read it with json_fast_numbers_view.
 * flags: 0, JSON_REJECT_DUPLICATES and JSON_DECODE_ANY are supported; with
 * any other flag this is plain json_loadb. */
json_t *json_fast_loadb(const char *text, size_t len, size_t flags, json_error_t *error);

/* What an element of a number list was in the text. */
typedef enum json_fast_kind {
    JSON_FAST_INTEGER = 1,  /* value is the integer, exactly (-0 reads as +0, as in jansson) */
    JSON_FAST_REAL,         /* value is what json_real_value would give */
    JSON_FAST_NAN,          /* the string "NaN"; value is NaN */
    JSON_FAST_INFINITY,     /* the string "Infinity"; value is +inf */
    JSON_FAST_NEG_INFINITY, /* the string "-Infinity"; value is -inf */
} json_fast_kind;

/* A read-only view of a number list, valid while the json_t lives. */
typedef struct json_fast_numbers {
    size_t count;
    const unsigned char *values; /* count doubles, native byte order, maybe unaligned */
    const unsigned char *kinds;  /* count json_fast_kind bytes */
} json_fast_numbers;

/* True (and *out filled) when value is a number list; false for anything
 * else, including NULL. */
bool json_fast_numbers_view(const json_t *value, json_fast_numbers *out);

static inline double json_fast_numbers_value(const json_fast_numbers *n, size_t i)
{
    double d;
    memcpy(&d, n->values + i * sizeof d, sizeof d);
    return d;
}

static inline json_fast_kind json_fast_numbers_kind(const json_fast_numbers *n, size_t i)
{
    return (json_fast_kind)n->kinds[i];
}

/* An ordinary jansson array equal to what json_loadb would have built for
 * the number list value (new reference); NULL when out of memory or when
 * value is not a number list. */
json_t *json_fast_numbers_to_array(const json_t *value);

/* Replaces every number list inside root (in objects and arrays, at any
 * depth) by its ordinary array, so the DOM equals json_loadb's. Returns 0,
 * or -1 when out of memory (root is then partly expanded, still valid). */
int json_fast_expand(json_t *root);

/* For tests and fuzzing: the parser with its knobs exposed. */
typedef struct json_fast_options {
    size_t min_numbers; /* JSON_FAST_MIN_NUMBERS in json_fast_loadb; 0 counts as 1 */
    bool no_fallback;   /* on a parse failure return NULL with a generic error
                           instead of asking json_loadb for its error (and
                           result), so a disagreement between the two shows */
} json_fast_options;

json_t *json_fast_loadb_opts(const char *text, size_t len, size_t flags, const json_fast_options *options,
                             json_error_t *error);

#endif
