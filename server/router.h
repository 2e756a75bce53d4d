/* router.h — maps a method and path to a route. Patterns are fixed strings
 * with at most one {name} segment; a known path with another method gives
 * 405 and the Allow list, an unknown path 404. Pure functions, no state. */
#ifndef CONVD_SERVER_ROUTER_H
#define CONVD_SERVER_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

typedef enum route_id {
    ROUTE_NOT_FOUND = 0,
    ROUTE_HEALTHZ,
    ROUTE_READYZ,
    ROUTE_METRICS,
    ROUTE_OPENAPI,
    ROUTE_MODELS_LIST,
    ROUTE_MODEL_GET,
    ROUTE_MODEL_PUT,
    ROUTE_MODEL_DELETE,
    ROUTE_MODEL_INFER,
    ROUTE_CONV2D,
    ROUTE_INFER,
    ROUTE_ANALYZE,
    /* Open Inference Protocol (v2.c) */
    ROUTE_V2_SERVER_META,
    ROUTE_V2_LIVE,
    ROUTE_V2_READY,
    ROUTE_V2_STATS_ALL,
    ROUTE_V2_MODEL_META,
    ROUTE_V2_MODEL_READY,
    ROUTE_V2_MODEL_INFER,
    ROUTE_V2_MODEL_CONFIG,
    ROUTE_V2_MODEL_STATS,
    ROUTE_V2_REPO_INDEX,
    ROUTE_V2_REPO_LOAD,
    ROUTE_V2_REPO_UNLOAD,
} route_id;

#define ROUTER_MAX_NAME 64

typedef struct route_match {
    route_id id;
    const char *pattern; /* static; the metrics label ("/v1/models/{name}/infer"), "unmatched" for 404 */
    int status;          /* 0 matched, 404 no such path, 405 wrong method */
    const char *allow;   /* for 405: "GET, PUT, DELETE" */
    bool has_name;
    bool name_valid;               /* [A-Za-z0-9._-]{1,64}, not "." or ".." */
    char name[ROUTER_MAX_NAME + 1]; /* the {name} segment when valid */
    /* /v2/models/{name}/versions/{v}/...: the path is matched without the
     * versions segment, whose value (up to 64 bytes) lands here */
    bool has_version;
    char version[ROUTER_MAX_NAME + 1];
} route_match;

void router_match(const char *method, const char *path, route_match *out);
bool router_valid_model_name(const char *name, size_t len);

#endif
