/* cli_healthcheck.c — `convd healthcheck`: GET /healthz of a local server and
 * exit 0 on 200, so container HEALTHCHECKs need no curl in the image. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/cli.h"

static const char healthcheck_usage[] =
    "usage: convd healthcheck [--url URL] [--timeout-ms MS]\n"
    "\n"
    "GETs URL (default http://127.0.0.1:$CONVD_PORT/healthz, port 8080 when\n"
    "CONVD_PORT is unset) and exits 0 when it answers 200, 1 otherwise.\n";

static size_t discard(char *data, size_t size, size_t n, void *user)
{
    (void)data, (void)user;
    return size * n;
}

int cli_healthcheck(int argc, char **argv)
{
    char url[512];
    const char *port = getenv("CONVD_PORT");
    long port_number = 8080, timeout_ms = 2000;
    if (port && !cli_parse_int(port, 1, 65535, &port_number))
        return cli_fail("healthcheck", EXIT_USAGE, "CONVD_PORT must be a port number, got \"%s\"", port);
    snprintf(url, sizeof url, "http://127.0.0.1:%ld/healthz", port_number);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(healthcheck_usage, stdout);
            return EXIT_OK;
        } else if (!strcmp(argv[i], "--url") && i + 1 < argc) {
            snprintf(url, sizeof url, "%s", argv[++i]);
        } else if (!strcmp(argv[i], "--timeout-ms") && i + 1 < argc) {
            if (!cli_parse_int(argv[++i], 1, 600000, &timeout_ms))
                return cli_fail("healthcheck", EXIT_USAGE, "--timeout-ms needs an integer in 1..600000");
        } else {
            return cli_fail("healthcheck", EXIT_USAGE, "unknown argument %s (see convd healthcheck --help)", argv[i]);
        }
    }
    CURL *curl = curl_easy_init();
    if (!curl) return cli_fail("healthcheck", EXIT_ERROR, "cannot initialise libcurl");
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(curl);
    long status = 0;
    if (rc == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(curl);
    if (rc != CURLE_OK) return cli_fail("healthcheck", EXIT_ERROR, "%s: %s", url, curl_easy_strerror(rc));
    if (status != 200) return cli_fail("healthcheck", EXIT_ERROR, "%s answered %ld", url, status);
    return EXIT_OK;
}
