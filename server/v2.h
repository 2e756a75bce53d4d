/* v2.h — the Open Inference Protocol (KServe v2 / Triton HTTP) endpoints of
 * `convd serve`, over the same repository, job queue and workers as v1.
 *
 * Design: v2_dispatch runs on the MHD thread like handlers_dispatch. Cheap
 * routes (health, metadata, config, statistics, repository) are answered at
 * once; an inference is decoded (gzip/deflate, binary framing, datatype
 * conversion: proto/v2_json.h), checked against the model and the limits,
 * and returned as a job whose worker computes and writes the whole reply.
 * Every error is {"error": "..."} (application/json); health and readiness
 * answer by status code alone. Per-model statistics live in the repository
 * entry (repo_model.stats), updated with atomics from the loop thread. */
#ifndef CONVD_SERVER_V2_H
#define CONVD_SERVER_V2_H

#include <stdbool.h>

#include "server/http.h"
#include "server/workers.h"

/* true for "/v2" and paths under "/v2/" */
bool v2_owns_path(const char *path);

/* NULL when req->reply was filled; otherwise a job to suspend and submit. */
job *v2_dispatch(request *req);

#endif
