/* cmd_topics.c — `sluice topics create|list|describe|delete` over the
 * admin API. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char help[] =
    "Usage: sluice topics SUBCOMMAND [OPTIONS]\n"
    "\n"
    "Subcommands:\n"
    "  create TOPIC [-P N] [-c KEY=VALUE ...]  create a topic\n"
    "  list                                    topic names and partition counts\n"
    "  describe TOPIC                          partitions and log end offsets\n"
    "  delete TOPIC                            delete a topic and its data\n"
    "\n"
    "'sluice topics SUBCOMMAND --help' describes each.\n"
    "\n";

static const char create_help[] =
    "Usage: sluice topics create TOPIC [-P PARTITIONS] [-c KEY=VALUE ...]\n"
    "\n"
    "Creates TOPIC. Fails (exit 1) if it exists.\n"
    "\n"
    "Options:\n"
    "  -P, --partitions N     partitions (default: the broker's num.partitions)\n"
    "  -c, --config KEY=VALUE topic setting (docs/storage.md: retention.ms,\n"
    "                         segment.bytes, ...), repeatable\n";

static const char list_help[] = "Usage: sluice topics list\n"
                                "\n"
                                "Prints one line per topic: NAME<TAB>PARTITIONS.\n";

static const char describe_help[] =
    "Usage: sluice topics describe TOPIC\n"
    "\n"
    "Prints the topic's partitions with their log end offsets. Describing a\n"
    "topic never creates it; an unknown topic exits 1.\n";

static const char delete_help[] = "Usage: sluice topics delete TOPIC\n"
                                  "\n"
                                  "Deletes TOPIC and all its data. An unknown topic exits 1.\n";

/* Parses a subcommand's options. -c is only meaningful for create; the
 * other subcommands get a table without it. Returns -1 to go on, else an
 * exit code. */
static int parse(cli_common_t *c, int argc, char **argv, const char *sub_help, int is_create,
                 int64_t *partitions, const char ***configs, size_t *nconfigs)
{
    static const struct option plain_opts[] = {CLI_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
    /* create's -c is a topic config while -X/--config is the client's, so
     * -c's long name is --topic-config. */
    static const struct option create_long[] = {{"partitions", required_argument, NULL, 'P'},
                                                {"topic-config", required_argument, NULL, 'c'},
                                                CLI_COMMON_LONGOPTS,
                                                {NULL, 0, NULL, 0}};
    int opt;
    cli_getopt_reset();
    while ((opt = getopt_long(argc, argv, is_create ? ":P:c:b:X:h" : ":b:X:h",
                              is_create ? create_long : plain_opts, NULL)) != -1) {
        int cr = cli_common_opt(c, opt, optarg);
        if (cr < 0) return CLI_USAGE;
        if (cr > 0) continue;
        switch (opt) {
        case 'h':
            fputs(sub_help, stdout);
            fputs(cli_common_help, stdout);
            return CLI_OK;
        case 'P':
            if (cli_parse_int(optarg, 1, 10000, partitions) != 0)
                return cli_usage_err(c, "-P expects a partition count 1..10000, got \"%s\"",
                                     optarg);
            break;
        case 'c': {
            if (!strchr(optarg, '=') || optarg[0] == '=')
                return cli_usage_err(c, "-c expects KEY=VALUE, got \"%s\"", optarg);
            const char **n = realloc(*configs, (*nconfigs + 1) * sizeof *n);
            if (!n) {
                cli_err(c, "out of memory");
                return CLI_FAILED;
            }
            *configs = n;
            n[(*nconfigs)++] = optarg;
            break;
        }
        case ':':
            return cli_usage_err(c, "option %s needs a value", argv[optind - 1]);
        default:
            return cli_usage_err(c, "unknown option %s", argv[optind - 1]);
        }
    }
    return -1;
}

static int need_topic(cli_common_t *c, int argc, char **argv, const char **topic)
{
    if (optind >= argc) return cli_usage_err(c, "TOPIC is required");
    if (optind + 1 < argc) return cli_usage_err(c, "unexpected argument \"%s\"", argv[optind + 1]);
    *topic = argv[optind];
    if (!**topic) return cli_usage_err(c, "TOPIC must not be empty");
    return -1;
}

static int do_list(cli_common_t *c, sluice_admin_t *a)
{
    char err[512];
    sluice_tp_list_t *l;
    int e = sluice_admin_describe_topics(a, NULL, 0, &l, err, sizeof err);
    if (e != SLUICE_OK) {
        cli_err(c, "%s (%s)", err, sluice_err2str(e));
        return CLI_FAILED;
    }
    /* Partitions of a topic come together: count each run. */
    for (size_t i = 0; i < l->cnt;) {
        size_t j = i;
        while (j < l->cnt && strcmp(l->elems[j].topic, l->elems[i].topic) == 0) j++;
        if (l->elems[i].err)
            printf("%s\t-\t%s\n", l->elems[i].topic, sluice_err2str(l->elems[i].err));
        else
            printf("%s\t%zu\n", l->elems[i].topic, j - i);
        i = j;
    }
    sluice_tp_list_destroy(l);
    return CLI_OK;
}

static int do_describe(cli_common_t *c, sluice_admin_t *a, const char *topic)
{
    char err[512];
    sluice_tp_list_t *l;
    int e = sluice_admin_describe_topics(a, &topic, 1, &l, err, sizeof err);
    if (e != SLUICE_OK) {
        cli_err(c, "%s (%s)", err, sluice_err2str(e));
        return CLI_FAILED;
    }
    int rc = CLI_OK;
    if (l->cnt == 0 || l->elems[0].err) {
        int te = l->cnt ? l->elems[0].err : SLUICE_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        cli_err(c, "topic \"%s\": %s", topic,
                te == SLUICE_ERR_UNKNOWN_TOPIC_OR_PARTITION ? "no such topic" : sluice_err2str(te));
        rc = CLI_FAILED;
    } else {
        printf("Topic: %s\tPartitions: %zu\n", topic, l->cnt);
        printf("PARTITION\tLOG-END-OFFSET\n");
        for (size_t i = 0; i < l->cnt; i++)
            printf("%" PRId32 "\t%" PRId64 "\n", l->elems[i].partition, l->elems[i].offset);
    }
    sluice_tp_list_destroy(l);
    return rc;
}

int cmd_topics(int argc, char **argv)
{
    cli_common_t c;
    cli_common_init(&c, "topics");
    if (argc < 2) {
        cli_usage_err(&c, "a subcommand is required (create, list, describe, delete)");
        return CLI_USAGE;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0) {
        fputs(help, stdout);
        fputs(cli_common_help, stdout);
        return CLI_OK;
    }
    const char *sub_help;
    char name[32];
    if (strcmp(sub, "create") == 0)
        sub_help = create_help;
    else if (strcmp(sub, "list") == 0)
        sub_help = list_help;
    else if (strcmp(sub, "describe") == 0)
        sub_help = describe_help;
    else if (strcmp(sub, "delete") == 0)
        sub_help = delete_help;
    else
        return cli_usage_err(&c, "unknown subcommand \"%s\" (create, list, describe, delete)", sub);
    snprintf(name, sizeof name, "topics %s", sub);
    c.cmd = name;

    int64_t partitions = 0;
    const char **configs = NULL;
    size_t nconfigs = 0;
    const char *topic = NULL;
    int is_create = strcmp(sub, "create") == 0;
    int rc = parse(&c, argc - 1, argv + 1, sub_help, is_create, &partitions, &configs, &nconfigs);
    if (rc >= 0) goto out;
    if (strcmp(sub, "list") == 0) {
        if (optind < argc - 1) {
            rc = cli_usage_err(&c, "unexpected argument \"%s\"", argv[1 + optind]);
            goto out;
        }
    } else if ((rc = need_topic(&c, argc - 1, argv + 1, &topic)) >= 0) {
        goto out;
    }
    sluice_admin_t *a = cli_admin(&c, &rc);
    if (!a) goto out;
    char err[512];
    int e;
    if (is_create) {
        e = sluice_admin_create_topic(a, topic, (int32_t)partitions, configs, nconfigs, err,
                                      sizeof err);
        if (e == SLUICE_OK) printf("Created topic \"%s\".\n", topic);
    } else if (strcmp(sub, "delete") == 0) {
        e = sluice_admin_delete_topic(a, topic, err, sizeof err);
        if (e == SLUICE_OK) printf("Deleted topic \"%s\".\n", topic);
    } else if (strcmp(sub, "list") == 0) {
        rc = do_list(&c, a);
        goto done;
    } else {
        rc = do_describe(&c, a, topic);
        goto done;
    }
    if (e != SLUICE_OK) {
        cli_err(&c, "%s (%s)", err, sluice_err2str(e));
        rc = CLI_FAILED;
    } else {
        rc = CLI_OK;
    }
done:
    sluice_admin_destroy(a);
out:
    free(configs);
    cli_common_free(&c);
    return rc;
}
