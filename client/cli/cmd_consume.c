/* cmd_consume.c — `sluice consume`: messages of one topic to stdout, as
 * plain lines or one JSON object per line.
 *
 * Without -g the command assigns the partitions itself (all of them, or
 * -p); with -g it joins the group and commits its positions synchronously
 * before it exits, so `sluice groups describe` shows them at once. The
 * topic is looked up first with an admin Metadata call: that makes an
 * unreachable broker or a missing topic an immediate, clear failure instead
 * of a consumer that retries forever. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char help[] =
    "Usage: sluice consume -t TOPIC [OPTIONS]\n"
    "\n"
    "Prints the messages of TOPIC to stdout, one per line. Runs until\n"
    "interrupted (SIGINT/SIGTERM end it cleanly, exit 0), or until -e / -c\n"
    "say it is done.\n"
    "\n"
    "Options:\n"
    "  -t, --topic TOPIC       topic to consume (required)\n"
    "  -g, --group GROUP       consume as a member of GROUP (partitions are\n"
    "                          assigned by the broker; positions are committed\n"
    "                          on exit)\n"
    "  -p, --partition N       only partition N (not with -g)\n"
    "  -o, --offset WHERE      beginning (default), end, or an offset (not with\n"
    "                          -g); with -g, where to start when the group has\n"
    "                          no committed offset (beginning or end)\n"
    "  -e, --exit-at-end       exit when the end of the log has been reached on\n"
    "                          every partition\n"
    "  -c, --count N           exit after N messages\n"
    "  -K, --key-delimiter SEP plain format: print KEY SEP VALUE\n"
    "      --format FMT        plain (default): values, one per line;\n"
    "                          json: one object per line with topic, partition,\n"
    "                          offset, timestamp, key, value, headers\n";

typedef struct cstate {
    int json;
    const char *keysep;
    int32_t nparts;
    int8_t *eof;  /* per partition: end reached and nothing consumed since */
    int8_t *mine; /* assign mode: partitions consumed */
} cstate_t;

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0 when the
 * bytes there are not one (overlong forms, surrogates and code points
 * above U+10FFFF are invalid, as RFC 3629 says). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t cp, min;
    if (c < 0x80) return 1;
    if ((c & 0xe0) == 0xc0)
        len = 2, cp = c & 0x1f, min = 0x80;
    else if ((c & 0xf0) == 0xe0)
        len = 3, cp = c & 0x0f, min = 0x800;
    else if ((c & 0xf8) == 0xf0)
        len = 4, cp = c & 0x07, min = 0x10000;
    else
        return 0;
    if (len > n) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return len;
}

/* A JSON string, or null for NULL. Bytes that are not UTF-8 become
 * \u00XX (the byte's value), so any payload yields valid JSON. */
static void json_str(FILE *out, const void *data, size_t n)
{
    if (!data) {
        fputs("null", out);
        return;
    }
    const unsigned char *s = data;
    fputc('"', out);
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        if (c == '"' || c == '\\') {
            fputc('\\', out);
            fputc(c, out);
            i++;
        } else if (c == '\n') {
            fputs("\\n", out), i++;
        } else if (c == '\r') {
            fputs("\\r", out), i++;
        } else if (c == '\t') {
            fputs("\\t", out), i++;
        } else if (c < 0x20 || c == 0x7f) {
            fprintf(out, "\\u%04x", c), i++;
        } else {
            size_t l = utf8_len(s + i, n - i);
            if (l == 0) {
                fprintf(out, "\\u%04x", c);
                i++;
            } else {
                fwrite(s + i, 1, l, out);
                i += l;
            }
        }
    }
    fputc('"', out);
}

static void print_msg(const cstate_t *st, const sluice_message_t *m)
{
    FILE *out = stdout;
    if (st->json) {
        fputs("{\"topic\":", out);
        json_str(out, m->topic, m->topic ? strlen(m->topic) : 0);
        fprintf(out, ",\"partition\":%" PRId32 ",\"offset\":%" PRId64 ",\"timestamp\":%" PRId64,
                m->partition, m->offset, m->timestamp);
        fputs(",\"key\":", out);
        json_str(out, m->key, m->key_len);
        fputs(",\"value\":", out);
        json_str(out, m->value, m->value_len);
        fputs(",\"headers\":[", out);
        for (size_t i = 0; i < m->header_count; i++) {
            const sluice_header_t *h = &m->headers[i];
            fputs(i ? ",{\"key\":" : "{\"key\":", out);
            json_str(out, h->key, h->key ? strlen(h->key) : 0);
            fputs(",\"value\":", out);
            json_str(out, h->value, h->value_len);
            fputc('}', out);
        }
        fputs("]}\n", out);
        return;
    }
    if (st->keysep) {
        if (m->key) fwrite(m->key, 1, m->key_len, out);
        fputs(st->keysep, out);
    }
    if (m->value) fwrite(m->value, 1, m->value_len, out);
    fputc('\n', out);
}

/* Errors after which waiting longer cannot help. */
static int is_fatal(int err)
{
    switch (err) {
    case SLUICE_ERR_UNKNOWN_TOPIC_OR_PARTITION:
    case SLUICE_ERR__UNKNOWN_TOPIC:
    case SLUICE_ERR__UNKNOWN_PARTITION:
    case SLUICE_ERR_OFFSET_OUT_OF_RANGE:
    case SLUICE_ERR_INVALID_TOPIC:
    case SLUICE_ERR__INVALID_ARG:
    case 24: /* INVALID_GROUP_ID (not named in sluice.h) */
        return 1;
    default:
        return 0;
    }
}

/* 1 when every partition we consume has reported its end since its last
 * message. With a group that is the current assignment, which a rebalance
 * may change (an empty assignment is never "done": partitions may come). */
static int all_at_end(sluice_consumer_t *c, const cstate_t *st, int group)
{
    if (!group) {
        for (int32_t p = 0; p < st->nparts; p++)
            if (st->mine[p] && !st->eof[p]) return 0;
        return 1;
    }
    sluice_tp_list_t *a = NULL;
    if (sluice_consumer_assignment(c, &a) != SLUICE_OK || !a) return 0;
    int done = a->cnt > 0;
    for (size_t i = 0; i < a->cnt && done; i++) {
        int32_t p = a->elems[i].partition;
        if (p < 0 || p >= st->nparts || !st->eof[p]) done = 0;
    }
    sluice_tp_list_destroy(a);
    return done;
}

int cmd_consume(int argc, char **argv)
{
    cli_common_t cc;
    cli_common_init(&cc, "consume");
    const char *topic = NULL, *group = NULL, *where = NULL, *keysep = NULL, *format = "plain";
    int64_t partition = -1, count = -1, offset = SLUICE_OFFSET_BEGINNING;
    int exit_at_end = 0;
    static const struct option longopts[] = {{"topic", required_argument, NULL, 't'},
                                             {"group", required_argument, NULL, 'g'},
                                             {"partition", required_argument, NULL, 'p'},
                                             {"offset", required_argument, NULL, 'o'},
                                             {"exit-at-end", no_argument, NULL, 'e'},
                                             {"count", required_argument, NULL, 'c'},
                                             {"key-delimiter", required_argument, NULL, 'K'},
                                             {"format", required_argument, NULL, 'f'},
                                             CLI_COMMON_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    int rc = CLI_USAGE, opt;
    cli_getopt_reset();
    while ((opt = getopt_long(argc, argv, ":t:g:p:o:ec:K:b:X:h", longopts, NULL)) != -1) {
        int cr = cli_common_opt(&cc, opt, optarg);
        if (cr < 0) goto out;
        if (cr > 0) continue;
        switch (opt) {
        case 'h':
            fputs(help, stdout);
            fputs(cli_common_help, stdout);
            rc = CLI_OK;
            goto out;
        case 't':
            topic = optarg;
            break;
        case 'g':
            group = optarg;
            break;
        case 'p':
            if (cli_parse_int(optarg, 0, INT32_MAX, &partition) != 0) {
                cli_usage_err(&cc, "-p expects a partition number, got \"%s\"", optarg);
                goto out;
            }
            break;
        case 'o':
            where = optarg;
            break;
        case 'e':
            exit_at_end = 1;
            break;
        case 'c':
            if (cli_parse_int(optarg, 1, INT64_MAX, &count) != 0) {
                cli_usage_err(&cc, "-c expects a positive count, got \"%s\"", optarg);
                goto out;
            }
            break;
        case 'K':
            keysep = optarg;
            break;
        case 'f':
            format = optarg;
            break;
        case ':':
            cli_usage_err(&cc, "option %s needs a value", argv[optind - 1]);
            goto out;
        default:
            cli_usage_err(&cc, "unknown option %s", argv[optind - 1]);
            goto out;
        }
    }
    if (optind < argc) {
        cli_usage_err(&cc, "unexpected argument \"%s\"", argv[optind]);
        goto out;
    }
    if (!topic || !*topic) {
        cli_usage_err(&cc, "-t TOPIC is required");
        goto out;
    }
    if (strcmp(format, "plain") != 0 && strcmp(format, "json") != 0) {
        cli_usage_err(&cc, "--format expects plain or json, got \"%s\"", format);
        goto out;
    }
    if (group && partition >= 0) {
        cli_usage_err(&cc, "-p cannot be used with -g (the group assigns partitions)");
        goto out;
    }
    if (where) {
        if (strcmp(where, "beginning") == 0)
            offset = SLUICE_OFFSET_BEGINNING;
        else if (strcmp(where, "end") == 0)
            offset = SLUICE_OFFSET_END;
        else if (group) {
            cli_usage_err(&cc, "with -g, -o expects beginning or end, got \"%s\"", where);
            goto out;
        } else if (cli_parse_int(where, 0, INT64_MAX, &offset) != 0) {
            cli_usage_err(&cc, "-o expects beginning, end or an offset, got \"%s\"", where);
            goto out;
        }
    }

    /* The topic must exist; its partition count bounds -p and -e. */
    cstate_t st = {.json = strcmp(format, "json") == 0, .keysep = keysep};
    sluice_admin_t *adm = cli_admin(&cc, &rc);
    if (!adm) goto out;
    char err[512];
    sluice_tp_list_t *md = NULL;
    int e = sluice_admin_describe_topics(adm, &topic, 1, &md, err, sizeof err);
    sluice_admin_destroy(adm);
    if (e != SLUICE_OK) {
        cli_err(&cc, "%s (%s)", err, sluice_err2str(e));
        rc = CLI_FAILED;
        goto out;
    }
    if (md->cnt == 0 || md->elems[0].err) {
        int te = md->cnt ? md->elems[0].err : SLUICE_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        cli_err(&cc, "topic \"%s\": %s", topic,
                te == SLUICE_ERR_UNKNOWN_TOPIC_OR_PARTITION ? "no such topic" : sluice_err2str(te));
        sluice_tp_list_destroy(md);
        rc = CLI_FAILED;
        goto out;
    }
    st.nparts = 0;
    for (size_t i = 0; i < md->cnt; i++)
        if (md->elems[i].partition >= st.nparts) st.nparts = md->elems[i].partition + 1;
    sluice_tp_list_destroy(md);
    if (partition >= st.nparts) {
        cli_err(&cc, "topic \"%s\" has no partition %" PRId64 " (it has %" PRId32 ")", topic,
                partition, st.nparts);
        rc = CLI_FAILED;
        goto out;
    }
    st.eof = calloc((size_t)st.nparts, 1);
    st.mine = calloc((size_t)st.nparts, 1);
    if (!st.eof || !st.mine) {
        cli_err(&cc, "out of memory");
        rc = CLI_FAILED;
        goto free_state;
    }

    const char *extra[8];
    size_t ne = 0;
    if (exit_at_end) extra[ne++] = "enable.partition.eof", extra[ne++] = "true";
    if (group) {
        extra[ne++] = "group.id", extra[ne++] = group;
        extra[ne++] = "auto.offset.reset";
        extra[ne++] = offset == SLUICE_OFFSET_END ? "latest" : "earliest";
    }
    extra[ne] = NULL;
    int usage;
    sluice_conf_t *conf = cli_conf(&cc, extra, &usage);
    if (!conf) {
        rc = usage ? CLI_USAGE : CLI_FAILED;
        goto free_state;
    }
    sluice_consumer_t *c = sluice_consumer_new(conf, err, sizeof err);
    if (!c) {
        cli_err(&cc, "%s", err);
        sluice_conf_destroy(conf);
        rc = CLI_FAILED;
        goto free_state;
    }
    if (group) {
        e = sluice_consumer_subscribe(c, &topic, 1);
    } else {
        sluice_tp_list_t *as = sluice_tp_list_new((size_t)st.nparts);
        e = as ? SLUICE_OK : SLUICE_ERR__NO_MEMORY;
        for (int32_t p = 0; p < st.nparts && e == SLUICE_OK; p++) {
            if (partition >= 0 && p != partition) continue;
            sluice_topic_partition_t *tp = sluice_tp_list_add(as, topic, p);
            if (!tp) {
                e = SLUICE_ERR__NO_MEMORY;
                break;
            }
            tp->offset = offset;
            st.mine[p] = 1;
        }
        if (e == SLUICE_OK) e = sluice_consumer_assign(c, as);
        sluice_tp_list_destroy(as);
    }
    if (e != SLUICE_OK) {
        cli_err(&cc, "cannot %s \"%s\": %s", group ? "subscribe to" : "assign", topic,
                sluice_err2str(e));
        rc = CLI_FAILED;
        goto close;
    }

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int64_t consumed = 0;
    rc = CLI_OK;
    while (!stop_flag && (count < 0 || consumed < count)) {
        /* Ask without waiting first: while messages flow stdout stays
         * block-buffered; when none are ready, flush before blocking so a
         * reader of a live stream sees every message promptly. */
        sluice_message_t *m = sluice_consumer_poll(c, 0);
        if (!m) {
            if (fflush(stdout) != 0) break;
            m = sluice_consumer_poll(c, 200);
            if (!m) continue;
        }
        int32_t p = m->partition;
        int inrange = p >= 0 && p < st.nparts;
        if (m->err == SLUICE_ERR__PARTITION_EOF) {
            if (inrange) st.eof[p] = 1;
            sluice_message_destroy(m);
            if (exit_at_end && all_at_end(c, &st, group != NULL)) break;
            continue;
        }
        if (m->err) {
            cli_err(&cc, "%s [%" PRId32 "]: %s", m->topic ? m->topic : topic, p,
                    sluice_err2str(m->err));
            int fatal = is_fatal(m->err);
            sluice_message_destroy(m);
            if (fatal) {
                rc = CLI_FAILED;
                break;
            }
            continue;
        }
        if (inrange) st.eof[p] = 0;
        print_msg(&st, m);
        sluice_message_destroy(m);
        consumed++;
        if (ferror(stdout)) break;
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        /* A reader that went away (`| head`) is a normal way to stop. */
        if (errno != EPIPE) {
            cli_err(&cc, "writing to stdout failed: %s", strerror(errno));
            rc = CLI_FAILED;
        }
    }
    if (group && consumed > 0) {
        e = sluice_consumer_commit(c, NULL, 0);
        if (e != SLUICE_OK) {
            cli_err(&cc, "committing offsets of group \"%s\" failed: %s", group, sluice_err2str(e));
            rc = CLI_FAILED;
        }
    }
close:
    sluice_consumer_close(c);
    sluice_consumer_destroy(c);
free_state:
    free(st.eof);
    free(st.mine);
out:
    cli_common_free(&cc);
    return rc;
}
