/* cmd_produce.c — `sluice produce`: one message per stdin line.
 *
 * Success means every line was acknowledged: each message carries its
 * line number as msg_opaque, delivery reports count acks and failures, and
 * the command flushes before it decides the exit code. */
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "clock.h"

static const char help[] =
    "Usage: sluice produce -t TOPIC [OPTIONS] < lines\n"
    "\n"
    "Sends each line of stdin as one message (without its newline; an empty\n"
    "line is an empty message). Exits 0 only when every line was acknowledged\n"
    "by the broker; otherwise prints the failures and exits 1.\n"
    "\n"
    "Options:\n"
    "  -t, --topic TOPIC       topic to produce to (required)\n"
    "  -p, --partition N       partition (default: by key, murmur2 like Kafka;\n"
    "                          lines without a key stick to one partition)\n"
    "  -K, --key-delimiter SEP the part of a line before the first SEP is the\n"
    "                          key, the rest the value (a line without SEP has\n"
    "                          no key)\n"
    "      --acks 0|1|all      durability (default all: after fsync)\n"
    "      --linger-ms N       how long a batch waits for more messages (default 5)\n"
    "  -z, --compression CODEC none or lz4\n";

#define MAX_REPORTED_FAILURES 10

typedef struct pstate {
    const cli_common_t *c;
    uint64_t acked, failed;
} pstate_t;

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void dr_cb(sluice_producer_t *p, const sluice_message_t *m, void *opaque)
{
    (void)p;
    pstate_t *st = opaque;
    if (m->err == SLUICE_OK) {
        st->acked++;
        return;
    }
    /* Print a few; a broker that is down fails every line the same way and
     * thousands of identical lines would hide the summary. */
    if (st->failed++ < MAX_REPORTED_FAILURES)
        cli_err(st->c, "line %" PRIuPTR " not delivered: %s", (uintptr_t)m->opaque,
                sluice_err2str(m->err));
}

static int progress_shown;

static void progress(const pstate_t *st, uint64_t lines, int final)
{
    progress_shown = 1;
    fprintf(stderr, "\r%" PRIu64 " read, %" PRIu64 " acknowledged, %" PRIu64 " failed%s", lines,
            st->acked, st->failed, final ? "\n" : "");
}

int cmd_produce(int argc, char **argv)
{
    cli_common_t c;
    cli_common_init(&c, "produce");
    const char *topic = NULL, *keysep = NULL, *acks = NULL, *linger = NULL, *codec = NULL;
    int32_t partition = SLUICE_PARTITION_UA;
    static const struct option longopts[] = {{"topic", required_argument, NULL, 't'},
                                             {"partition", required_argument, NULL, 'p'},
                                             {"key-delimiter", required_argument, NULL, 'K'},
                                             {"acks", required_argument, NULL, 'a'},
                                             {"linger-ms", required_argument, NULL, 'l'},
                                             {"compression", required_argument, NULL, 'z'},
                                             CLI_COMMON_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    int rc = CLI_USAGE, opt;
    cli_getopt_reset();
    while ((opt = getopt_long(argc, argv, ":t:p:K:z:b:X:h", longopts, NULL)) != -1) {
        int64_t v;
        int cr = cli_common_opt(&c, opt, optarg);
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
        case 'p':
            if (cli_parse_int(optarg, 0, INT32_MAX, &v) != 0) {
                cli_usage_err(&c, "-p expects a partition number, got \"%s\"", optarg);
                goto out;
            }
            partition = (int32_t)v;
            break;
        case 'K':
            if (!*optarg) {
                cli_usage_err(&c, "-K needs a non-empty separator");
                goto out;
            }
            keysep = optarg;
            break;
        case 'a':
            acks = optarg;
            break;
        case 'l':
            linger = optarg;
            break;
        case 'z':
            codec = optarg;
            break;
        case ':':
            cli_usage_err(&c, "option %s needs a value", argv[optind - 1]);
            goto out;
        default:
            cli_usage_err(&c, "unknown option %s", argv[optind - 1]);
            goto out;
        }
    }
    if (optind < argc) {
        cli_usage_err(&c, "unexpected argument \"%s\"", argv[optind]);
        goto out;
    }
    if (!topic || !*topic) {
        cli_usage_err(&c, "-t TOPIC is required");
        goto out;
    }

    const char *extra[8];
    size_t ne = 0;
    if (acks) extra[ne++] = "acks", extra[ne++] = acks;
    if (linger) extra[ne++] = "linger.ms", extra[ne++] = linger;
    if (codec) extra[ne++] = "compression.type", extra[ne++] = codec;
    extra[ne] = NULL;
    int usage;
    sluice_conf_t *conf = cli_conf(&c, extra, &usage);
    if (!conf) {
        rc = usage ? CLI_USAGE : CLI_FAILED;
        goto out;
    }
    /* Connect once up front: an unreachable broker is then one clear
     * message and exit 1 at once, instead of max.block.ms of retries. */
    sluice_admin_t *probe = cli_admin(&c, &rc);
    if (!probe) {
        sluice_conf_destroy(conf);
        goto out;
    }
    sluice_admin_destroy(probe);
    pstate_t st = {.c = &c};
    sluice_conf_set_dr_cb(conf, dr_cb);
    sluice_conf_set_opaque(conf, &st);
    char err[512];
    sluice_producer_t *p = sluice_producer_new(conf, err, sizeof err);
    if (!p) {
        cli_err(&c, "%s", err);
        sluice_conf_destroy(conf);
        rc = CLI_FAILED;
        goto out;
    }

    /* SIGINT stops reading; what was read is still flushed and reported. */
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int tty = isatty(STDERR_FILENO);
    int64_t next_progress = sl_mono_ms() + 1000;
    size_t seplen = keysep ? strlen(keysep) : 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    uint64_t lines = 0;
    int aborted = 0;
    while (!stop_flag && (len = getline(&line, &cap, stdin)) >= 0) {
        if (len > 0 && line[len - 1] == '\n') len--;
        lines++;
        const char *key = NULL, *val = line;
        size_t klen = 0, vlen = (size_t)len;
        if (keysep) {
            /* memmem, not strstr: a line may contain NUL bytes. */
            const char *sep = memmem(line, (size_t)len, keysep, seplen);
            if (sep) {
                key = line;
                klen = (size_t)(sep - line);
                val = sep + seplen;
                vlen = (size_t)len - klen - seplen;
            }
        }
        int e = sluice_produce(p, topic, partition, key, klen, val, vlen, NULL, 0, 0,
                               (void *)(uintptr_t)lines);
        if (e != SLUICE_OK) {
            /* Immediate errors (no metadata within max.block.ms, unknown
             * partition, invalid topic) would repeat for every later line:
             * stop reading and report. */
            cli_err(&c, "line %" PRIu64 ": %s%s", lines, sluice_err2str(e),
                    e == SLUICE_ERR__TIMED_OUT
                        ? " (no answer from the broker within max.block.ms; is it reachable?)"
                        : "");
            st.failed++;
            aborted = 1;
            break;
        }
        sluice_producer_poll(p, 0);
        if (tty && sl_mono_ms() >= next_progress) {
            progress(&st, lines, 0);
            next_progress = sl_mono_ms() + 500;
        }
    }
    free(line);
    if (ferror(stdin)) {
        cli_err(&c, "reading stdin failed");
        aborted = 1;
    }
    /* Every report arrives within delivery.timeout.ms, so this ends. */
    while (sluice_producer_flush(p, 500) != SLUICE_OK)
        if (tty && sl_mono_ms() >= next_progress) progress(&st, lines, 0);
    if (progress_shown) progress(&st, lines, 1); /* ends the \r line */
    sluice_producer_destroy(p);
    if (st.failed > MAX_REPORTED_FAILURES)
        cli_err(&c, "%" PRIu64 " further failures not shown", st.failed - MAX_REPORTED_FAILURES);
    if (st.failed || aborted) {
        cli_err(&c, "%" PRIu64 " of %" PRIu64 " lines not acknowledged", lines - st.acked, lines);
        rc = CLI_FAILED;
    } else {
        rc = CLI_OK;
    }
out:
    cli_common_free(&c);
    return rc;
}
