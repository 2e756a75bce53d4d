/* mhd_hello.c — a bare libmicrohttpd hello-world, the ceiling for the request
 * rate of `convd serve` on the same machine (bench/RESULTS.md, "Service overhead").
 *
 * Build and run (not part of the Makefile):
 *   cc -O2 -o /tmp/mhd_hello bench/mhd_hello.c -lmicrohttpd
 *   /tmp/mhd_hello 18300 [epoll|pool N] &     # MEM=bytes sets the connection pool
 *   wrk -t2 -c32 -d6s http://127.0.0.1:18300/
 * Same daemon flags as convd serve's default (one internal thread, epoll). */
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char body[] = "{\"status\": \"ok\"}";

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    (void)upload_data;
    if (!*con_cls) { /* first call: headers only */
        *con_cls = conn;
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(sizeof body - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

int main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 18300;
    const char *mode = argc > 2 ? argv[2] : "epoll";
    unsigned pool = !strcmp(mode, "pool") && argc > 3 ? (unsigned)atoi(argv[3]) : 1;
    size_t mem = getenv("MEM") ? (size_t)atol(getenv("MEM")) : 32 * 1024;
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    struct MHD_OptionItem threads[2] = {{MHD_OPTION_END, 0, NULL}, {MHD_OPTION_END, 0, NULL}};
    if (pool > 1) threads[0] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, pool, NULL};
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG,
                                            (uint16_t)port, NULL, NULL, on_request, NULL,
                                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, mem, MHD_OPTION_ARRAY, threads,
                                            MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "mhd_hello: cannot listen on port %d\n", port);
        return 1;
    }
    int sig;
    sigwait(&stop, &sig);
    MHD_stop_daemon(d);
    return 0;
}
