/* server_harness.h — what the end-to-end tests share to drive a live `convd
 * serve`: starting and stopping the process, its captured log, libcurl
 * requests, Prometheus samples and readiness waits. */
#ifndef CONVD_TESTS_SERVER_HARNESS_H
#define CONVD_TESTS_SERVER_HARNESS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <curl/curl.h>

/* A `convd serve` child; log holds everything it wrote to stdout/stderr. */
typedef struct server_proc {
    pid_t pid;
    int port;
    char base[64]; /* "http://127.0.0.1:PORT" (https with TLS) */
    int out_fd;
    pthread_t reader;
    pthread_mutex_t lock;
    char *log;
    size_t log_len;
} server_proc;

double now_s(void);
void sleep_ms(int ms);

/* CONVD_BIN (default build/convd) and CONVD_EXAMPLES (default examples) */
const char *convd_bin(void);
const char *examples_dir(void);

/* How much longer than usual the server may take: CONVD_TIMEOUT_SCALE
 * (default 1), for a server run under valgrind. Every wait below uses it. */
double timeout_scale(void);

/* A slow request's layer count for this run: under valgrind (scale > 1) an
 * eighth of them (at least one) holds a worker as long as all of them do
 * natively, and keeps the suite's run time bounded. */
int slow_layers(int layers);

/* Starts `convd serve --port 0 <args...>` (NULL-terminated) and waits for its
 * "listening on" line. */
server_proc *server_start(const char *first, ...);
/* Sends sig (0: none, the server is already stopping) and waits; the exit
 * status, -1 if killed. A non-zero status prints the log. Frees s. */
int server_stop(server_proc *s, int sig);
/* whether the log holds text now */
bool log_contains(server_proc *s, const char *text);
/* whether the log holds text within timeout_s (access lines trail replies) */
bool log_wait_for(server_proc *s, const char *text, double timeout_s);

typedef struct http_reply {
    long status; /* 0 when no reply arrived */
    CURLcode rc;
    char *body; /* NUL-terminated, never NULL */
    size_t len;
    char *headers;
    size_t headers_len;
} http_reply;

typedef struct part_spec {
    const char *name;
    const void *data;
    size_t len;
} part_spec;

extern const char *const json_ct[];
/* a CA file for https servers; NULL: the system's */
extern const char *http_cainfo;

/* One request; headers is a NULL-terminated list of "Name: value", parts
 * (NULL-terminated by name) makes it multipart/form-data. A transport
 * failure is returned, not asserted, so client threads (where cmocka's
 * assertions must not run) can use it. out is always filled. */
CURLcode http_try(const char *method, const char *url, const char *const *headers, const void *body, size_t len,
                  const part_spec *parts, http_reply *out);
/* http_try on s's base URL + path; a transport failure leaves status 0 and rc set */
http_reply http_request(const server_proc *s, const char *method, const char *path, const char *const *headers,
                        const void *body, size_t len);
/* http_try, asserting the transport worked (main thread only) */
http_reply http(const char *method, const char *url, const char *const *headers, const void *body, size_t len,
                const part_spec *parts);
void reply_free(http_reply *r);
/* s's base URL + path, in a per-thread buffer */
const char *url_of(const server_proc *s, const char *path);
http_reply get(const server_proc *s, const char *path);
http_reply post_json(const server_proc *s, const char *path, const char *json);
/* the status only (0: no reply); safe in client threads */
long get_status(const server_proc *s, const char *path);
long post_status(const server_proc *s, const char *path, const char *json);

/* a Prometheus sample's value ("name{labels}" or "name"); -1 if absent */
double metric(const server_proc *s, const char *sample);
void wait_metric_at_least(const server_proc *s, const char *sample, double value, double timeout_s);
/* Waits for /readyz to say 200: every model's warm-up run is over, so the
 * job gauges show client work only. */
void wait_ready(const server_proc *s, double timeout_s);

/* An inline /v1/infer request body: `layers` 3x3 Conv2d 32->32 (padding 1,
 * random weights) on a random 1x32xhwxhw input, each with "algorithm" when
 * not NULL; enough work to hold a worker a while. The caller frees it. */
char *slow_model_request(int layers, int hw, const char *algorithm);

/* a TCP connection to s from 127.0.0.1, or from source_ip when not NULL; -1 on failure */
int raw_connect_from(const server_proc *s, const char *source_ip);

#endif
