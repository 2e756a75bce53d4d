/* cli.h — the subcommands of build/convd and the helpers they share. Each
 * command returns the process exit status: 0 success, 1 error, 2 usage. */
#ifndef CONVD_SERVER_CLI_H
#define CONVD_SERVER_CLI_H

#include <stdbool.h>
#include <stdint.h>

enum { EXIT_OK = 0, EXIT_ERROR = 1, EXIT_USAGE = 2 };

int cli_run(int argc, char **argv);
int cli_analyze(int argc, char **argv);
int cli_bench(int argc, char **argv);
int cli_serve(int argc, char **argv);
int cli_healthcheck(int argc, char **argv);
int cli_load(int argc, char **argv);

/* "N,C,H,W" (also "NxCxHxW") into four positive dims; false if malformed */
bool cli_parse_shape(const char *text, int64_t shape[4]);
/* a positive int in [min, max]; false if malformed */
bool cli_parse_int(const char *text, long min, long max, long *out);
/* prints "convd <cmd>: <message>" to stderr and returns status */
int cli_fail(const char *cmd, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
