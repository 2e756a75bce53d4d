/* base64.h — RFC 4648 base64 (standard alphabet) for binary tensor payloads
 * carried inside JSON strings. */
#ifndef CONVD_PROTO_BASE64_H
#define CONVD_PROTO_BASE64_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Characters base64_encode writes for n input bytes (always padded to a
 * multiple of 4); false if that overflows size_t. */
bool base64_encoded_size(size_t n, size_t *out);

/* Writes exactly base64_encoded_size(n) characters to out, with '='
 * padding and no terminating NUL. */
void base64_encode(const uint8_t *in, size_t n, char *out);

/* Exact number of bytes text of length len will decode to, from its length
 * and trailing '=' alone, so a caller can compare it with what it expects
 * before allocating; the characters are checked by base64_decode. Both the
 * padded form and the unpadded form (length % 4 of 2 or 3) are accepted.
 * False when no base64 has this length (length % 4 == 1); *bad_offset is
 * then the first character outside the alphabet, else the last one. */
bool base64_decoded_size(const char *text, size_t len, size_t *out, size_t *bad_offset);

/* Decodes text into out, which must hold base64_decoded_size bytes. Every
 * character must be in the alphabet ('=' only as trailing padding;
 * whitespace is not skipped). Bits below the last full byte are ignored, as
 * most decoders do. On failure returns false with *bad_offset at the first
 * invalid character; out may then be partly written. */
bool base64_decode(const char *text, size_t len, uint8_t *out, size_t *bad_offset);

#endif
