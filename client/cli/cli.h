/* cli.h — what the sluice CLI's command files share: exit codes, the
 * common flags (-b, -X), and small helpers. See docs/cli.md. */
#ifndef SLUICE_CLI_H
#define SLUICE_CLI_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/sluice.h"

/* Exit codes scripts can rely on (docs/cli.md). */
enum {
    CLI_OK = 0,     /* the operation succeeded */
    CLI_FAILED = 1, /* the operation failed (broker error, unreachable, undelivered) */
    CLI_USAGE = 2,  /* bad command line: nothing was attempted */
};

#define CLI_DEFAULT_BOOTSTRAP "127.0.0.1:9292"

/* The flags every command takes. -X pairs are kept in command-line order
 * and applied after -b, so -X bootstrap.servers=... wins over -b. */
typedef struct cli_common {
    const char *bootstrap;
    const char **xs; /* "key=value" */
    size_t nx;
    const char *cmd; /* "produce", "topics create", ... for messages */
} cli_common_t;

/* Long options shared by every command, to splice into a getopt table. */
#define CLI_COMMON_LONGOPTS                                                                        \
    {"bootstrap", required_argument, NULL, 'b'}, {"config", required_argument, NULL, 'X'},         \
    {                                                                                              \
        "help", no_argument, NULL, 'h'                                                             \
    }

void cli_common_init(cli_common_t *c, const char *cmd);
void cli_common_free(cli_common_t *c);

/* Handles -b/-X (and records the value); 1 if opt was one of them, 0 if
 * not, -1 on a malformed -X (message printed). */
int cli_common_opt(cli_common_t *c, int opt, const char *arg);

/* A configuration from -b and -X, plus the pairs in extra (NULL-ended
 * list of key, value, key, value...; applied last). NULL with the reason
 * printed; *usage is set when it is the user's mistake (a bad key/value). */
sluice_conf_t *cli_conf(const cli_common_t *c, const char *const *extra, int *usage);

/* An admin connection, or NULL with a message printed. */
sluice_admin_t *cli_admin(const cli_common_t *c, int *exit_code);

/* Prints "sluice CMD: " + message + "\n" to stderr. */
void cli_err(const cli_common_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same followed by "Try 'sluice CMD --help'."; returns CLI_USAGE. */
int cli_usage_err(const cli_common_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Parses a whole decimal integer in [min, max]; 0 ok, -1 otherwise. */
int cli_parse_int(const char *s, int64_t min, int64_t max, int64_t *out);

/* Getopt state is global: every command resets it before parsing. */
void cli_getopt_reset(void);

/* The common-flag paragraph of every --help. */
extern const char cli_common_help[];

int cmd_produce(int argc, char **argv);
int cmd_consume(int argc, char **argv);
int cmd_topics(int argc, char **argv);
int cmd_groups(int argc, char **argv);

#endif
