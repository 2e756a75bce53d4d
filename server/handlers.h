/* handlers.h — the endpoints of `convd serve`: request parsing (HTTP thread),
 * the inference jobs they build (computed on a worker, answered from the
 * loop thread) and the shared server state.
 *
 * Design: handlers_dispatch runs on the MHD thread. It answers cheap routes
 * (health, metrics, model listing, analyze) at once, and for inference
 * parses and validates everything — JSON, .npy, multipart, the spec, the
 * FLOP, tensor and workspace limits — before returning a job, so a worker
 * only computes and serialises. An inference job holds a reference to its
 * repository model (or owns its inline model) until the request completes. */
#ifndef CONVD_SERVER_HANDLERS_H
#define CONVD_SERVER_HANDLERS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "server/config.h"
#include "server/http.h"
#include "server/metrics.h"
#include "server/repo.h"
#include "server/workers.h"

struct server {
    const serve_config *cfg;
    repo *repo;
    workers *workers;
    metrics *metrics;
    char *api_key; /* NULL: PUT/DELETE need no key */
    size_t max_body_bytes;
    size_t max_elements;        /* per tensor, and in all of a request's weights */
    size_t max_workspace_bytes; /* scratch one run may use */
    atomic_bool shutting_down;
};

/* NULL when req->reply was filled; otherwise a job to suspend and submit. */
job *handlers_dispatch(request *req);

/* Submits one run per repository model with a declared input shape; a
 * model is "warmed" (for /readyz) when its run completes. */
void handlers_warm_up(server *srv);
/* The same for one model just published (PUT, v2 repository load). */
void handlers_warm_up_model(server *srv, repo_model *m);

/* the OpenAPI 3.0 document served at /openapi.json (openapi.c) */
extern const char openapi_json[];

#endif
