/* fuzz_router.c — libFuzzer harness for server/router.c: "METHOD path" per
 * input. A matched {name} must pass router_valid_model_name and fit its
 * buffer; statuses and patterns must be consistent. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/router.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096) return 0;
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    char *sp = strchr(text, ' ');
    const char *method = "GET", *path = text;
    if (sp) {
        *sp = 0;
        method = text;
        path = sp + 1;
    }
    route_match m;
    router_match(method, path, &m);
    if (!m.pattern) abort();
    if (m.status != 0 && m.status != 404 && m.status != 405) abort();
    if ((m.status == 0) != (m.id != ROUTE_NOT_FOUND)) abort();
    if (m.status == 405 && !m.allow) abort();
    if (m.has_name && m.name_valid) {
        size_t n = strnlen(m.name, sizeof m.name);
        if (n == sizeof m.name || !router_valid_model_name(m.name, n)) abort();
    }
    if (m.has_version && strnlen(m.version, sizeof m.version) == sizeof m.version) abort();
    (void)router_valid_model_name(text, strlen(text));
    free(text);
    return 0;
}
