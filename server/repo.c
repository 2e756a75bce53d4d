/* repo.c — reference-counted model repository (see repo.h for the design). */
#include "server/repo.h"

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct repo {
    pthread_mutex_t lock;
    repo_model **models;
    size_t n, cap;
};

repo *repo_create(void)
{
    repo *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    pthread_mutex_init(&r->lock, NULL);
    return r;
}

void repo_destroy(repo *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n; i++) repo_model_release(r->models[i]);
    free(r->models);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

void repo_model_retain(repo_model *m)
{
    atomic_fetch_add(&m->refs, 1);
}

void repo_model_release(repo_model *m)
{
    if (!m || atomic_fetch_sub(&m->refs, 1) != 1) return;
    model_dir_free(&m->md);
    free(m);
}

/* index of name, or r->n; caller holds the lock */
static size_t find(const repo *r, const char *name)
{
    size_t i = 0;
    while (i < r->n && strcmp(r->models[i]->name, name)) i++;
    return i;
}

repo_model *repo_put(repo *r, const char *name, model_dir *md, bool *replaced)
{
    repo_model *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    snprintf(m->name, sizeof m->name, "%s", name);
    atomic_init(&m->refs, 2); /* the table's and the caller's */
    atomic_init(&m->warmed, !md->spec.has_input_shape);
    pthread_mutex_lock(&r->lock);
    size_t i = find(r, name);
    repo_model *old = NULL;
    if (i < r->n) {
        old = r->models[i];
    } else if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        repo_model **p = realloc(r->models, cap * sizeof *p);
        if (!p) {
            pthread_mutex_unlock(&r->lock);
            free(m);
            return NULL;
        }
        r->models = p;
        r->cap = cap;
    }
    m->md = *md;
    memset(md, 0, sizeof *md);
    r->models[i] = m;
    if (i == r->n) r->n++;
    pthread_mutex_unlock(&r->lock);
    if (replaced) *replaced = old != NULL;
    repo_model_release(old); /* requests still running on it keep it alive */
    return m;
}

bool repo_delete(repo *r, const char *name)
{
    pthread_mutex_lock(&r->lock);
    size_t i = find(r, name);
    repo_model *old = NULL;
    if (i < r->n) {
        old = r->models[i];
        r->models[i] = r->models[--r->n];
    }
    pthread_mutex_unlock(&r->lock);
    repo_model_release(old);
    return old != NULL;
}

repo_model *repo_get(repo *r, const char *name)
{
    pthread_mutex_lock(&r->lock);
    size_t i = find(r, name);
    repo_model *m = i < r->n ? r->models[i] : NULL;
    if (m) repo_model_retain(m);
    pthread_mutex_unlock(&r->lock);
    return m;
}

static int by_name(const void *a, const void *b)
{
    return strcmp((*(repo_model *const *)a)->name, (*(repo_model *const *)b)->name);
}

int repo_list(repo *r, repo_model ***out)
{
    pthread_mutex_lock(&r->lock);
    repo_model **list = malloc((r->n ? r->n : 1) * sizeof *list);
    if (!list) {
        pthread_mutex_unlock(&r->lock);
        return -1;
    }
    for (size_t i = 0; i < r->n; i++) {
        list[i] = r->models[i];
        repo_model_retain(list[i]);
    }
    int n = (int)r->n;
    pthread_mutex_unlock(&r->lock);
    qsort(list, (size_t)n, sizeof *list, by_name);
    *out = list;
    return n;
}

void repo_release_all(repo_model **models, int n)
{
    for (int i = 0; i < n; i++) repo_model_release(models[i]);
    free(models);
}

bool repo_all_warmed(repo *r)
{
    bool all = true;
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->n; i++) all = all && atomic_load(&r->models[i]->warmed);
    pthread_mutex_unlock(&r->lock);
    return all;
}

static int by_string(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int repo_load_dir(repo *r, const char *dir, const conv_model_options *opts, log_format lf)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    /* sorted, so start-up logs and failures are reproducible */
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            size_t c = cap ? cap * 2 : 16;
            char **p = realloc(names, c * sizeof *p);
            if (!p) break;
            names = p;
            cap = c;
        }
        if (!(names[n] = strdup(e->d_name))) break;
        n++;
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, by_string);
    int loaded = 0;
    for (size_t i = 0; i < n; i++) {
        char path[4096], json_path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        snprintf(json_path, sizeof json_path, "%s/model.json", path);
        struct stat st;
        if (stat(json_path, &st) || !S_ISREG(st.st_mode)) continue;
        if (!router_valid_model_name(names[i], strlen(names[i]))) {
            log_message(lf, "warn", "skipping %s: the folder name is not a valid model name ([A-Za-z0-9._-]{1,64})",
                        path);
            continue;
        }
        model_dir md;
        conv_error err;
        if (model_dir_load(path, opts, &md, &err)) {
            log_message(lf, "warn", "skipping %s: %s", path, err.message);
            continue;
        }
        repo_model *m = repo_put(r, names[i], &md, NULL);
        if (!m) {
            model_dir_free(&md);
            log_message(lf, "warn", "skipping %s: out of memory", path);
            continue;
        }
        log_message(lf, "info", "loaded model %s (%zu layers) from %s", names[i], m->md.spec.n_layers, path);
        repo_model_release(m);
        loaded++;
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return loaded;
}
