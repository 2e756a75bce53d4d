/* server_harness.c — the live-server helpers test_server, test_batching and
 * test_faults share (see server_harness.h). Nothing here may assert from a
 * client thread: http_try, http_request, get_status and post_status report
 * failures in their results instead. */
#include "tests/unit/server_harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

const char *const json_ct[] = {"Content-Type: application/json", NULL};
const char *http_cainfo;

double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

const char *convd_bin(void)
{
    const char *b = getenv("CONVD_BIN");
    return b && *b ? b : "build/convd";
}

const char *examples_dir(void)
{
    const char *d = getenv("CONVD_EXAMPLES");
    return d && *d ? d : "examples";
}

double timeout_scale(void)
{
    const char *v = getenv("CONVD_TIMEOUT_SCALE");
    double scale = v && *v ? atof(v) : 1.0;
    return scale >= 1.0 ? scale : 1.0;
}

int slow_layers(int layers)
{
    return timeout_scale() > 1 ? (layers + 7) / 8 : layers;
}

/* ------------------------------------------------------------ the server process */

/* Servers started and not yet stopped: a failed assertion leaves its test
 * early, so at exit these are killed rather than left running. */
enum { MAX_LIVE = 64 };
static pid_t live_pids[MAX_LIVE];
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;

static void kill_leftover_servers(void)
{
    pthread_mutex_lock(&live_lock);
    for (int i = 0; i < MAX_LIVE; i++)
        if (live_pids[i] > 0) {
            kill(live_pids[i], SIGKILL);
            waitpid(live_pids[i], NULL, 0);
            live_pids[i] = 0;
        }
    pthread_mutex_unlock(&live_lock);
}

static void track_server(pid_t pid, bool live)
{
    static bool registered;
    pthread_mutex_lock(&live_lock);
    if (!registered) registered = atexit(kill_leftover_servers) == 0;
    for (int i = 0; i < MAX_LIVE; i++)
        if (live ? live_pids[i] == 0 : live_pids[i] == pid) {
            live_pids[i] = live ? pid : 0;
            break;
        }
    pthread_mutex_unlock(&live_lock);
}

static void *drain_output(void *arg)
{
    server_proc *s = arg;
    char buf[4096];
    ssize_t n;
    while ((n = read(s->out_fd, buf, sizeof buf)) > 0) {
        pthread_mutex_lock(&s->lock);
        char *p = realloc(s->log, s->log_len + (size_t)n + 1);
        if (p) {
            memcpy(p + s->log_len, buf, (size_t)n);
            s->log = p;
            s->log_len += (size_t)n;
            s->log[s->log_len] = 0;
        }
        pthread_mutex_unlock(&s->lock);
    }
    return NULL;
}

bool log_contains(server_proc *s, const char *text)
{
    pthread_mutex_lock(&s->lock);
    bool found = s->log && strstr(s->log, text);
    pthread_mutex_unlock(&s->lock);
    return found;
}

bool log_wait_for(server_proc *s, const char *text, double timeout_s)
{
    double end = now_s() + timeout_s * timeout_scale();
    for (;;) {
        bool found = log_contains(s, text);
        if (found || now_s() > end) return found;
        sleep_ms(5);
    }
}

server_proc *server_start(const char *first, ...)
{
    const char *argv[40] = {convd_bin(), "serve", "--port", "0"};
    int argc = 4;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && argc < 38; a = va_arg(ap, const char *)) argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    server_proc *s = calloc(1, sizeof *s);
    assert_non_null(s);
    pthread_mutex_init(&s->lock, NULL);
    s->pid = fork();
    assert_true(s->pid >= 0);
    if (s->pid == 0) {
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    track_server(s->pid, true);
    s->out_fd = fds[0];
    assert_int_equal(pthread_create(&s->reader, NULL, drain_output, s), 0);
    double end = now_s() + 20 * timeout_scale();
    while (!s->port && now_s() < end) {
        pthread_mutex_lock(&s->lock);
        const char *p = s->log ? strstr(s->log, "listening on http") : NULL;
        const char *colon = p ? strchr(p + strlen("listening on https://"), ':') : NULL;
        if (colon && strchr(colon, '\n')) s->port = atoi(colon + 1);
        pthread_mutex_unlock(&s->lock);
        int status;
        if (!s->port && waitpid(s->pid, &status, WNOHANG) == s->pid) {
            fprintf(stderr, "server exited early: %s\n", s->log ? s->log : "");
            track_server(s->pid, false);
            fail();
        }
        if (!s->port) sleep_ms(10);
    }
    assert_true(s->port > 0);
    snprintf(s->base, sizeof s->base, "%s://127.0.0.1:%d", log_contains(s, "listening on https") ? "https" : "http",
             s->port);
    return s;
}

int server_stop(server_proc *s, int sig)
{
    if (sig) kill(s->pid, sig);
    int status = 0;
    waitpid(s->pid, &status, 0);
    track_server(s->pid, false);
    pthread_join(s->reader, NULL);
    close(s->out_fd);
    if (!WIFEXITED(status) || WEXITSTATUS(status)) fprintf(stderr, "server log:\n%s\n", s->log ? s->log : "");
    free(s->log);
    pthread_mutex_destroy(&s->lock);
    free(s);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ------------------------------------------------------------ HTTP with libcurl */

typedef struct sink {
    char **buf;
    size_t *len;
} sink;

static size_t collect(char *data, size_t size, size_t n, void *userp)
{
    sink *k = userp;
    size_t add = size * n;
    char *p = realloc(*k->buf, *k->len + add + 1);
    if (!p) return 0;
    memcpy(p + *k->len, data, add);
    *k->len += add;
    p[*k->len] = 0;
    *k->buf = p;
    return add;
}

CURLcode http_try(const char *method, const char *url, const char *const *headers, const void *body, size_t len,
                  const part_spec *parts, http_reply *out)
{
    http_reply r = {0};
    CURL *c = curl_easy_init();
    if (!c) {
        r.rc = CURLE_FAILED_INIT;
        r.body = calloc(1, 1);
        r.headers = calloc(1, 1);
        *out = r;
        return r.rc;
    }
    struct curl_slist *hl = curl_slist_append(NULL, "Expect:");
    for (const char *const *h = headers; h && *h; h++) hl = curl_slist_append(hl, *h);
    curl_mime *mime = NULL;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (parts) {
        mime = curl_mime_init(c);
        for (const part_spec *p = parts; p->name; p++) {
            curl_mimepart *mp = curl_mime_addpart(mime);
            curl_mime_name(mp, p->name);
            curl_mime_data(mp, p->data, p->len);
            curl_mime_filename(mp, p->name);
        }
        curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
    } else if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    sink bs = {&r.body, &r.len}, hs = {&r.headers, &r.headers_len};
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &bs);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &hs);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)(60 * timeout_scale()));
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (http_cainfo) curl_easy_setopt(c, CURLOPT_CAINFO, http_cainfo);
    r.rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    /* A body refused early (413 from Content-Length) is answered and the
     * connection closed while curl may still be sending: when the reply
     * arrived, it counts and the send error does not. */
    if (r.rc == CURLE_SEND_ERROR && r.status >= 400) r.rc = CURLE_OK;
    if (r.rc != CURLE_OK) fprintf(stderr, "curl %s %.200s: %s\n", method, url, curl_easy_strerror(r.rc));
    curl_mime_free(mime);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    if (!r.body) r.body = calloc(1, 1);
    if (!r.headers) r.headers = calloc(1, 1);
    *out = r;
    return r.rc;
}

http_reply http_request(const server_proc *s, const char *method, const char *path, const char *const *headers,
                        const void *body, size_t len)
{
    http_reply r = {0};
    size_t url_len = strlen(s->base) + strlen(path) + 1;
    char *url = malloc(url_len);
    if (!url) {
        r.rc = CURLE_OUT_OF_MEMORY;
        r.body = calloc(1, 1);
        r.headers = calloc(1, 1);
        return r;
    }
    snprintf(url, url_len, "%s%s", s->base, path);
    http_try(method, url, headers, body, len, NULL, &r);
    free(url);
    return r;
}

http_reply http(const char *method, const char *url, const char *const *headers, const void *body, size_t len,
                const part_spec *parts)
{
    http_reply r;
    assert_int_equal(http_try(method, url, headers, body, len, parts, &r), CURLE_OK);
    return r;
}

void reply_free(http_reply *r)
{
    free(r->body);
    free(r->headers);
    r->body = r->headers = NULL;
}

const char *url_of(const server_proc *s, const char *path)
{
    static __thread char buf[512];
    snprintf(buf, sizeof buf, "%s%s", s->base, path);
    return buf;
}

http_reply get(const server_proc *s, const char *path)
{
    return http("GET", url_of(s, path), NULL, NULL, 0, NULL);
}

http_reply post_json(const server_proc *s, const char *path, const char *json)
{
    return http("POST", url_of(s, path), json_ct, json, strlen(json), NULL);
}

long get_status(const server_proc *s, const char *path)
{
    http_reply r = http_request(s, "GET", path, NULL, NULL, 0);
    reply_free(&r);
    return r.status;
}

long post_status(const server_proc *s, const char *path, const char *json)
{
    http_reply r = http_request(s, "POST", path, json_ct, json, strlen(json));
    reply_free(&r);
    return r.status;
}

/* ------------------------------------------------------------ metrics and readiness */

double metric(const server_proc *s, const char *sample)
{
    http_reply r = get(s, "/metrics");
    assert_int_equal(r.status, 200);
    double v = -1;
    size_t n = strlen(sample);
    for (char *line = r.body; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (!strncmp(line, sample, n) && line[n] == ' ') v = atof(line + n + 1);
    reply_free(&r);
    return v;
}

void wait_metric_at_least(const server_proc *s, const char *sample, double value, double timeout_s)
{
    double end = now_s() + timeout_s * timeout_scale();
    while (metric(s, sample) < value) {
        if (now_s() > end) {
            fprintf(stderr, "timed out waiting for %s >= %g\n", sample, value);
            fail();
        }
        sleep_ms(5);
    }
}

void wait_ready(const server_proc *s, double timeout_s)
{
    double end = now_s() + timeout_s * timeout_scale();
    while (get_status(s, "/readyz") != 200) {
        if (now_s() > end) {
            fprintf(stderr, "timed out waiting for /readyz 200\n");
            fail();
        }
        sleep_ms(20);
    }
}

/* ------------------------------------------------------------ request bodies */

char *slow_model_request(int layers, int hw, const char *algorithm)
{
    size_t cap = 4096 + (size_t)layers * 256 + (algorithm ? (size_t)layers * (strlen(algorithm) + 20) : 0);
    char *b = malloc(cap);
    assert_non_null(b);
    size_t n = (size_t)snprintf(b, cap, "{\"model\": {\"layers\": [");
    for (int i = 0; i < layers; i++)
        n += (size_t)snprintf(b + n, cap - n,
                              "%s{\"type\": \"Conv2d\", \"in_channels\": 32, \"out_channels\": 32, \"kernel_size\": 3, "
                              "\"padding\": 1%s%s%s}",
                              i ? ", " : "", algorithm ? ", \"algorithm\": \"" : "", algorithm ? algorithm : "",
                              algorithm ? "\"" : "");
    n += (size_t)snprintf(b + n, cap - n, "]}, \"weights\": {");
    for (int i = 0; i < layers; i++)
        n += (size_t)snprintf(b + n, cap - n, "%s\"%d.weight\": {\"init\": \"random\"}, \"%d.bias\": {\"init\": \"random\"}",
                              i ? ", " : "", i, i);
    snprintf(b + n, cap - n, "}, \"input\": {\"shape\": [1, 32, %d, %d], \"init\": \"random\"}}", hw, hw);
    return b;
}

/* ------------------------------------------------------------ raw sockets */

int raw_connect_from(const server_proc *s, const char *source_ip)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    if (source_ip) {
        struct sockaddr_in src = {.sin_family = AF_INET};
        if (inet_pton(AF_INET, source_ip, &src.sin_addr) != 1 || bind(fd, (struct sockaddr *)&src, sizeof src)) {
            close(fd);
            return -1;
        }
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa)) {
        close(fd);
        return -1;
    }
    return fd;
}
