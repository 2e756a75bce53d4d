/* fuzz_multipart.c — libFuzzer harness for proto/multipart.c. The input's
 * first line (up to 200 bytes) is the Content-Type header, the rest the
 * body; every accepted part must lie inside the body and carry a
 * NUL-terminated, unique, non-empty name. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/multipart.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size < 200 ? size : 200);
    if (!nl) return 0;
    size_t ct_len = (size_t)(nl - data);
    char content_type[201];
    memcpy(content_type, data, ct_len);
    content_type[ct_len] = 0;
    /* the body in its own allocation, so ASan sees reads past its end */
    size_t len = size - ct_len - 1;
    uint8_t *body = malloc(len ? len : 1);
    if (!body) return 0;
    memcpy(body, nl + 1, len);
    multipart_body mb;
    conv_error err;
    if (multipart_parse(content_type, body, len, 32, &mb, &err) == CONV_OK) {
        for (size_t i = 0; i < mb.count; i++) {
            const multipart_part *p = &mb.parts[i];
            if (p->data < body || p->len > len || (size_t)(p->data - body) > len - p->len) abort();
            if (!memchr(p->name, 0, sizeof p->name) || !p->name[0]) abort();
            if (!memchr(p->filename, 0, sizeof p->filename) || !memchr(p->content_type, 0, sizeof p->content_type))
                abort();
            if (multipart_find(&mb, p->name) != p) abort();
        }
        multipart_free(&mb);
    } else if (mb.count || mb.parts) {
        abort();
    }
    free(body);
    return 0;
}
