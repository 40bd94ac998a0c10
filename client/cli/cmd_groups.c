/* cmd_groups.c — `sluice groups list|describe` over the admin API. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char help[] =
    "Usage: sluice groups SUBCOMMAND [OPTIONS]\n"
    "\n"
    "Subcommands:\n"
    "  list            every group: NAME<TAB>STATE<TAB>MEMBERS\n"
    "  describe GROUP  state, members and their assignment, committed offsets\n"
    "                  and lag per partition\n"
    "\n";

static const char list_help[] =
    "Usage: sluice groups list\n"
    "\n"
    "Prints one line per consumer group the broker knows:\n"
    "NAME<TAB>STATE<TAB>MEMBERS. Groups with only committed offsets are Empty.\n";

static const char describe_help[] =
    "Usage: sluice groups describe GROUP\n"
    "\n"
    "Prints the group's state, generation and assignor, each member with its\n"
    "assigned partitions, and per partition the committed offset, the log end\n"
    "offset and the lag (log end - committed). An unknown group exits 1.\n";

static void print_assignment(const sluice_tp_list_t *l)
{
    if (!l || l->cnt == 0) {
        printf("    (no partitions)\n");
        return;
    }
    for (size_t i = 0; i < l->cnt;) {
        printf("    %s [", l->elems[i].topic);
        size_t j = i;
        for (; j < l->cnt && strcmp(l->elems[j].topic, l->elems[i].topic) == 0; j++)
            printf("%s%" PRId32, j > i ? "," : "", l->elems[j].partition);
        printf("]\n");
        i = j;
    }
}

static int do_describe(cli_common_t *c, sluice_admin_t *a, const char *group)
{
    char err[512];
    sluice_group_info_t *g;
    int e = sluice_admin_describe_group(a, group, &g, err, sizeof err);
    if (e != SLUICE_OK) {
        if (e == SLUICE_ERR_GROUP_ID_NOT_FOUND)
            cli_err(c, "group \"%s\": no such group", group);
        else
            cli_err(c, "%s (%s)", err, sluice_err2str(e));
        return CLI_FAILED;
    }
    printf("Group: %s\n", g->group_id);
    printf("State: %s\tGeneration: %" PRId32 "\tAssignor: %s\n", g->state, g->generation,
           *g->assignor ? g->assignor : "-");
    printf("Members: %zu\n", g->member_count);
    for (size_t i = 0; i < g->member_count; i++) {
        const sluice_group_member_t *m = &g->members[i];
        printf("  %s\tclient-id=%s\thost=%s\n", m->member_id, m->client_id, m->host);
        print_assignment(m->assignment);
    }
    printf("\nTOPIC\tPARTITION\tCOMMITTED\tLOG-END\tLAG\n");
    for (size_t i = 0; i < g->committed->cnt; i++) {
        const sluice_topic_partition_t *tp = &g->committed->elems[i];
        int64_t end = g->log_end[i];
        printf("%s\t%" PRId32 "\t", tp->topic, tp->partition);
        if (tp->offset >= 0)
            printf("%" PRId64, tp->offset);
        else
            printf("-");
        if (end >= 0)
            printf("\t%" PRId64, end);
        else
            printf("\t-");
        /* The log can have been truncated below the commit by retention or
         * re-created: never print a negative lag. */
        if (tp->offset >= 0 && end >= 0)
            printf("\t%" PRId64, end > tp->offset ? end - tp->offset : 0);
        else
            printf("\t-");
        if (tp->err) printf("\t%s", sluice_err2str(tp->err));
        printf("\n");
    }
    sluice_group_infos_destroy(g, 1);
    return CLI_OK;
}

int cmd_groups(int argc, char **argv)
{
    cli_common_t c;
    cli_common_init(&c, "groups");
    if (argc < 2) return cli_usage_err(&c, "a subcommand is required (list, describe)");
    const char *sub = argv[1];
    if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0) {
        fputs(help, stdout);
        fputs(cli_common_help, stdout);
        return CLI_OK;
    }
    int is_list = strcmp(sub, "list") == 0;
    if (!is_list && strcmp(sub, "describe") != 0)
        return cli_usage_err(&c, "unknown subcommand \"%s\" (list, describe)", sub);
    char name[32];
    snprintf(name, sizeof name, "groups %s", sub);
    c.cmd = name;

    static const struct option longopts[] = {CLI_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
    int rc = CLI_USAGE, opt;
    argc--, argv++;
    cli_getopt_reset();
    while ((opt = getopt_long(argc, argv, ":b:X:h", longopts, NULL)) != -1) {
        int cr = cli_common_opt(&c, opt, optarg);
        if (cr < 0) goto out;
        if (cr > 0) continue;
        if (opt == 'h') {
            fputs(is_list ? list_help : describe_help, stdout);
            fputs(cli_common_help, stdout);
            rc = CLI_OK;
            goto out;
        }
        if (opt == ':')
            cli_usage_err(&c, "option %s needs a value", argv[optind - 1]);
        else
            cli_usage_err(&c, "unknown option %s", argv[optind - 1]);
        goto out;
    }
    const char *group = NULL;
    if (is_list) {
        if (optind < argc) {
            cli_usage_err(&c, "unexpected argument \"%s\"", argv[optind]);
            goto out;
        }
    } else {
        if (optind >= argc || !*argv[optind]) {
            cli_usage_err(&c, "GROUP is required");
            goto out;
        }
        if (optind + 1 < argc) {
            cli_usage_err(&c, "unexpected argument \"%s\"", argv[optind + 1]);
            goto out;
        }
        group = argv[optind];
    }
    sluice_admin_t *a = cli_admin(&c, &rc);
    if (!a) goto out;
    if (is_list) {
        char err[512];
        sluice_group_info_t *gs;
        size_t n;
        int e = sluice_admin_list_groups(a, &gs, &n, err, sizeof err);
        if (e != SLUICE_OK) {
            cli_err(&c, "%s (%s)", err, sluice_err2str(e));
            rc = CLI_FAILED;
        } else {
            for (size_t i = 0; i < n; i++)
                printf("%s\t%s\t%zu\n", gs[i].group_id, gs[i].state, gs[i].member_count);
            sluice_group_infos_destroy(gs, n);
            rc = CLI_OK;
        }
    } else {
        rc = do_describe(&c, a, group);
    }
    sluice_admin_destroy(a);
out:
    cli_common_free(&c);
    return rc;
}
