/* repo.h — the model repository: named, immutable, reference-counted models.
 *
 * Design: a mutex guards the name -> model table; a model's reference count
 * is atomic. repo_get hands out a reference that the request keeps until its
 * reply is built, so repo_put (replace) and repo_delete only drop the table's
 * reference and a model in use is freed by the last request holding it.
 * Models are immutable once published, so holders need no lock to run them. */
#ifndef CONVD_SERVER_REPO_H
#define CONVD_SERVER_REPO_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/conv.h"
#include "proto/model_dir.h"
#include "server/log.h"
#include "server/router.h"

/* Per-model counters for the v2 statistics extension (v2.c), in Triton's
 * terms; zero when the model is (re)loaded. Durations in nanoseconds. */
typedef struct repo_model_stats {
    atomic_uint_fast64_t success_count, success_ns, fail_count, fail_ns;
    atomic_uint_fast64_t queue_ns, compute_input_ns, compute_infer_ns, compute_output_ns;
    atomic_uint_fast64_t inference_count, execution_count, last_inference_ms;
} repo_model_stats;

typedef struct repo_model {
    atomic_int refs;
    atomic_bool warmed; /* one run has completed (or there is no declared shape to warm up with) */
    repo_model_stats stats; /* zeroed by calloc in repo_put */
    char name[ROUTER_MAX_NAME + 1];
    model_dir md;
} repo_model;

typedef struct repo repo;

repo *repo_create(void); /* NULL when out of memory */
void repo_destroy(repo *r);

/* Loads every sub-folder of dir that holds a model.json and whose name is a
 * valid model name, with opts (NULL: the defaults); folders that fail to
 * load are logged and skipped.
 * Returns the number of models loaded, or -1 if dir cannot be read. */
int repo_load_dir(repo *r, const char *dir, const conv_model_options *opts, log_format lf);

/* A new reference to the model called name, or NULL. */
repo_model *repo_get(repo *r, const char *name);
void repo_model_retain(repo_model *m);
void repo_model_release(repo_model *m);

/* Publishes md (moved into the repository; *md is emptied) under name,
 * replacing any model of that name. Returns the new entry with one extra
 * reference for the caller, or NULL when out of memory (md untouched).
 * *replaced tells whether a model of that name existed. */
repo_model *repo_put(repo *r, const char *name, model_dir *md, bool *replaced);
bool repo_delete(repo *r, const char *name);

/* References to every model, sorted by name; *out is malloc'ed. Release
 * each with repo_release_all. Returns the count, or -1 when out of memory. */
int repo_list(repo *r, repo_model ***out);
void repo_release_all(repo_model **models, int n);

/* true when every model has warmed up */
bool repo_all_warmed(repo *r);

#endif
