/* router.c — the route table of `convd serve` (see router.h). */
#include "server/router.h"

#include <string.h>

typedef struct route_row {
    const char *method;
    const char *prefix; /* text before {name}, or the whole path */
    const char *suffix; /* text after {name}; NULL when the pattern has no {name} */
    const char *pattern;
    route_id id;
} route_row;

static const route_row table[] = {
    {"GET", "/healthz", NULL, "/healthz", ROUTE_HEALTHZ},
    {"GET", "/readyz", NULL, "/readyz", ROUTE_READYZ},
    {"GET", "/metrics", NULL, "/metrics", ROUTE_METRICS},
    {"GET", "/openapi.json", NULL, "/openapi.json", ROUTE_OPENAPI},
    {"GET", "/v1/models", NULL, "/v1/models", ROUTE_MODELS_LIST},
    {"GET", "/v1/models/", "", "/v1/models/{name}", ROUTE_MODEL_GET},
    {"PUT", "/v1/models/", "", "/v1/models/{name}", ROUTE_MODEL_PUT},
    {"DELETE", "/v1/models/", "", "/v1/models/{name}", ROUTE_MODEL_DELETE},
    {"POST", "/v1/models/", "/infer", "/v1/models/{name}/infer", ROUTE_MODEL_INFER},
    {"POST", "/v1/conv2d", NULL, "/v1/conv2d", ROUTE_CONV2D},
    {"POST", "/v1/infer", NULL, "/v1/infer", ROUTE_INFER},
    {"POST", "/v1/analyze", NULL, "/v1/analyze", ROUTE_ANALYZE},
};
#define N_ROUTES (sizeof table / sizeof table[0])

bool router_valid_model_name(const char *name, size_t len)
{
    if (len < 1 || len > ROUTER_MAX_NAME) return false;
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.')) return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                  c == '-';
        if (!ok) return false;
    }
    return true;
}

/* Does path fit the row's pattern? On success (*name, *name_len) is the {name} segment. */
static bool path_fits(const route_row *r, const char *path, const char **name, size_t *name_len)
{
    size_t plen = strlen(r->prefix), len = strlen(path);
    if (!r->suffix) return !strcmp(path, r->prefix);
    size_t slen = strlen(r->suffix);
    if (len <= plen + slen || strncmp(path, r->prefix, plen) || strcmp(path + len - slen, r->suffix)) return false;
    *name = path + plen;
    *name_len = len - plen - slen;
    return memchr(*name, '/', *name_len) == NULL; /* one segment only */
}

void router_match(const char *method, const char *path, route_match *out)
{
    memset(out, 0, sizeof *out);
    out->pattern = "unmatched";
    out->status = 404;
    bool path_known = false;
    const char *allow = NULL;
    for (size_t i = 0; i < N_ROUTES; i++) {
        const char *name = NULL;
        size_t name_len = 0;
        if (!path_fits(&table[i], path, &name, &name_len)) continue;
        if (!path_known) {
            path_known = true;
            out->pattern = table[i].pattern;
        }
        if (strcmp(table[i].method, method)) continue;
        out->id = table[i].id;
        out->pattern = table[i].pattern;
        out->status = 0;
        if (name) {
            out->has_name = true;
            out->name_valid = router_valid_model_name(name, name_len);
            if (out->name_valid) {
                memcpy(out->name, name, name_len);
                out->name[name_len] = 0;
            }
        }
        return;
    }
    if (!path_known) return;
    /* the methods each path accepts */
    if (!strcmp(out->pattern, "/v1/models/{name}")) allow = "GET, PUT, DELETE";
    else if (!strncmp(out->pattern, "/v1/", 4) && strcmp(out->pattern, "/v1/models")) allow = "POST";
    else allow = "GET";
    out->status = 405;
    out->allow = allow;
}
