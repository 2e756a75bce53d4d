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
    {"GET", "/v2", NULL, "/v2", ROUTE_V2_SERVER_META},
    {"GET", "/v2/health/live", NULL, "/v2/health/live", ROUTE_V2_LIVE},
    {"GET", "/v2/health/ready", NULL, "/v2/health/ready", ROUTE_V2_READY},
    {"GET", "/v2/models/stats", NULL, "/v2/models/stats", ROUTE_V2_STATS_ALL},
    {"GET", "/v2/models/", "", "/v2/models/{name}", ROUTE_V2_MODEL_META},
    {"GET", "/v2/models/", "/ready", "/v2/models/{name}/ready", ROUTE_V2_MODEL_READY},
    {"POST", "/v2/models/", "/infer", "/v2/models/{name}/infer", ROUTE_V2_MODEL_INFER},
    {"GET", "/v2/models/", "/config", "/v2/models/{name}/config", ROUTE_V2_MODEL_CONFIG},
    {"GET", "/v2/models/", "/stats", "/v2/models/{name}/stats", ROUTE_V2_MODEL_STATS},
    {"POST", "/v2/repository/index", NULL, "/v2/repository/index", ROUTE_V2_REPO_INDEX},
    {"POST", "/v2/repository/models/", "/load", "/v2/repository/models/{name}/load", ROUTE_V2_REPO_LOAD},
    {"POST", "/v2/repository/models/", "/unload", "/v2/repository/models/{name}/unload", ROUTE_V2_REPO_UNLOAD},
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

/* /v2/models/{name}/versions/{v}[/rest] -> /v2/models/{name}[/rest] in buf,
 * the version into out; path itself otherwise. */
static const char *strip_version(const char *path, char *buf, size_t cap, route_match *out)
{
    static const char prefix[] = "/v2/models/";
    if (strncmp(path, prefix, sizeof prefix - 1)) return path;
    const char *name_end = strchr(path + sizeof prefix - 1, '/');
    if (!name_end || strncmp(name_end, "/versions/", 10)) return path;
    const char *v = name_end + 10, *v_end = strchr(v, '/');
    size_t vlen = v_end ? (size_t)(v_end - v) : strlen(v);
    size_t head = (size_t)(name_end - path), tail = v_end ? strlen(v_end) : 0;
    if (vlen < 1 || vlen > ROUTER_MAX_NAME || head + tail >= cap) return path;
    memcpy(out->version, v, vlen);
    out->version[vlen] = 0;
    out->has_version = true;
    memcpy(buf, path, head);
    memcpy(buf + head, v_end ? v_end : "", tail + 1);
    return buf;
}

void router_match(const char *method, const char *path, route_match *out)
{
    memset(out, 0, sizeof *out);
    char unversioned[256];
    path = strip_version(path, unversioned, sizeof unversioned, out);
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
    else if (!strncmp(out->pattern, "/v2/repository/", 15) || !strcmp(out->pattern, "/v2/models/{name}/infer"))
        allow = "POST";
    else allow = "GET";
    out->status = 405;
    out->allow = allow;
}
