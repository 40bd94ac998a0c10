/* sluice.c — the sluice CLI's entry point: dispatches to a command and
 * holds the helpers every command shares (common flags, configuration,
 * messages). Commands live in cmd_*.c. Exit codes: cli.h, docs/cli.md. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

const char cli_common_help[] =
    "Common options:\n"
    "  -b, --bootstrap HOST:PORT  broker to connect to (default " CLI_DEFAULT_BOOTSTRAP ";\n"
    "                             a comma-separated list is tried in turn)\n"
    "  -X, --config KEY=VALUE     any client setting (docs/client.md), repeatable;\n"
    "                             e.g. -X request.timeout.ms=5000\n"
    "  -h, --help                 this help\n"
    "\n"
    "Exit status: 0 success, 1 the operation failed, 2 usage error.\n";

static const char main_help[] = "Usage: sluice COMMAND [OPTIONS]\n"
                                "\n"
                                "Command-line client of the Sluice message broker.\n"
                                "\n"
                                "Commands:\n"
                                "  produce  -t TOPIC        send stdin's lines as messages\n"
                                "  consume  -t TOPIC        print messages to stdout\n"
                                "  topics   create|list|describe|delete\n"
                                "  groups   list|describe\n"
                                "  version                  print the library version\n"
                                "\n"
                                "'sluice COMMAND --help' describes each command.\n"
                                "\n";

void cli_common_init(cli_common_t *c, const char *cmd)
{
    memset(c, 0, sizeof *c);
    c->bootstrap = CLI_DEFAULT_BOOTSTRAP;
    c->cmd = cmd;
}

void cli_common_free(cli_common_t *c)
{
    free(c->xs);
    c->xs = NULL;
    c->nx = 0;
}

void cli_err(const cli_common_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "sluice %s: ", c->cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int cli_usage_err(const cli_common_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "sluice %s: ", c->cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry 'sluice %s --help'.\n", c->cmd);
    va_end(ap);
    return CLI_USAGE;
}

int cli_common_opt(cli_common_t *c, int opt, const char *arg)
{
    if (opt == 'b') {
        if (!*arg) return cli_usage_err(c, "-b needs HOST:PORT"), -1;
        c->bootstrap = arg;
        return 1;
    }
    if (opt != 'X') return 0;
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg) {
        cli_usage_err(c, "-X expects KEY=VALUE, got \"%s\"", arg);
        return -1;
    }
    const char **nx = realloc(c->xs, (c->nx + 1) * sizeof *nx);
    if (!nx) {
        cli_err(c, "out of memory");
        return -1;
    }
    c->xs = nx;
    c->xs[c->nx++] = arg;
    return 1;
}

static int set1(const cli_common_t *c, sluice_conf_t *conf, const char *k, const char *v,
                int *usage)
{
    char err[512];
    if (sluice_conf_set(conf, k, v, err, sizeof err) != SLUICE_CONF_OK) {
        cli_err(c, "%s", err);
        fprintf(stderr, "Try 'sluice %s --help'.\n", c->cmd);
        *usage = 1;
        return -1;
    }
    return 0;
}

sluice_conf_t *cli_conf(const cli_common_t *c, const char *const *extra, int *usage)
{
    *usage = 0;
    sluice_conf_t *conf = sluice_conf_new();
    if (!conf) {
        cli_err(c, "out of memory");
        return NULL;
    }
    if (set1(c, conf, "bootstrap.servers", c->bootstrap, usage) != 0) goto fail;
    for (size_t i = 0; i < c->nx; i++) {
        const char *eq = strchr(c->xs[i], '=');
        char key[256];
        size_t kl = (size_t)(eq - c->xs[i]);
        if (kl >= sizeof key) {
            cli_usage_err(c, "-X key too long: %.40s...", c->xs[i]);
            *usage = 1;
            goto fail;
        }
        memcpy(key, c->xs[i], kl);
        key[kl] = '\0';
        if (set1(c, conf, key, eq + 1, usage) != 0) goto fail;
    }
    for (size_t i = 0; extra && extra[i]; i += 2)
        if (set1(c, conf, extra[i], extra[i + 1], usage) != 0) goto fail;
    return conf;
fail:
    sluice_conf_destroy(conf);
    return NULL;
}

sluice_admin_t *cli_admin(const cli_common_t *c, int *exit_code)
{
    int usage;
    sluice_conf_t *conf = cli_conf(c, NULL, &usage);
    if (!conf) {
        *exit_code = usage ? CLI_USAGE : CLI_FAILED;
        return NULL;
    }
    char err[512];
    sluice_admin_t *a = sluice_admin_new(conf, err, sizeof err);
    if (!a) {
        cli_err(c, "%s", err);
        sluice_conf_destroy(conf);
        *exit_code = CLI_FAILED;
    }
    return a;
}

int cli_parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max) return -1;
    *out = v;
    return 0;
}

void cli_getopt_reset(void)
{
    optind = 0; /* glibc: 0 re-initializes getopt completely */
    opterr = 0; /* commands print their own messages, with the hint */
}

int main(int argc, char **argv)
{
    /* A closed stdout (`| head`) must end output with an error we can
     * handle, not kill the process before it cleans up. */
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) {
        fputs(main_help, stderr);
        fputs(cli_common_help, stderr);
        return CLI_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        fputs(main_help, stdout);
        fputs(cli_common_help, stdout);
        return CLI_OK;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("sluice %s\n", sluice_version_str());
        return CLI_OK;
    }
    /* Each command sees argv[0] = its own name, as a program would. */
    if (strcmp(cmd, "produce") == 0) return cmd_produce(argc - 1, argv + 1);
    if (strcmp(cmd, "consume") == 0) return cmd_consume(argc - 1, argv + 1);
    if (strcmp(cmd, "topics") == 0) return cmd_topics(argc - 1, argv + 1);
    if (strcmp(cmd, "groups") == 0) return cmd_groups(argc - 1, argv + 1);
    fprintf(stderr, "sluice: unknown command \"%s\"\nTry 'sluice --help'.\n", cmd);
    return CLI_USAGE;
}
