/* test_broker_conf.c — broker configuration: parsing, errors with
 * suggestions and file:line, and docs/broker.md kept true to the table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "conf.h"

static void test_docs(void)
{
    char *doc = check_slurp(SLUICE_SOURCE_DIR "/docs/broker.md");
    size_t n;
    const conf_def_t *t = broker_conf_table(&n);
    for (size_t i = 0; i < n; i++) {
        char row[256];
        snprintf(row, sizeof row, "| `%s` | %s |", t[i].name, t[i].def);
        CHECK_MSG(strstr(doc, row) != NULL, "docs/broker.md lacks the row \"%s\"", row);
    }
    free(doc);
}

/* Topic defaults (log.segment.bytes, ...) are storage/logconf.c's keys under
 * a broker name: every topic key has one, with the same bounds and default. */
static void test_topic_defaults(void)
{
    size_t n, nt;
    const conf_def_t *t = broker_conf_table(&n);
    const sl_log_conf_def_t *lt = sl_log_conf_table(&nt);
    broker_conf_t c;
    broker_conf_defaults(&c);
    for (size_t k = 0; k < nt; k++) {
        size_t off = offsetof(broker_conf_t, topic) + lt[k].offset;
        const conf_def_t *d = NULL;
        for (size_t i = 0; i < n; i++)
            if (t[i].type == CONF_INT && t[i].offset == off) d = &t[i];
        CHECK_MSG(d != NULL, "topic key %s has no broker default", lt[k].name);
        if (!d) continue;
        char def[32];
        snprintf(def, sizeof def, "%lld", (long long)lt[k].def);
        CHECK_MSG(strcmp(d->def, def) == 0, "%s: default %s, %s says %s", d->name, d->def,
                  lt[k].name, def);
        CHECK_MSG(d->min == lt[k].min && d->max == lt[k].max, "%s: bounds differ from %s", d->name,
                  lt[k].name);
        CHECK_EQ_INT(sl_log_conf_value(&c.topic, &lt[k]), lt[k].def);
    }
    sl_err_t err;
    CHECK_EQ_INT(broker_conf_set(&c, "log.segment.bytes", "4095", &err), SL_ERR_INVALID_CONFIG);
    CHECK_MSG(strstr(err.msg, "log.segment.bytes") && strstr(err.msg, "4096..2147483647"), "%s",
              err.msg);
}

static void test_set(void)
{
    broker_conf_t c;
    broker_conf_defaults(&c);
    CHECK_EQ_INT(c.reactor_edge, 1);
    CHECK_EQ_INT(c.topic.segment_bytes, 1073741824);
    CHECK(strcmp(c.listeners, "127.0.0.1:9292") == 0);
    sl_err_t err;
    CHECK_EQ_INT(broker_conf_set(&c, "reactor.mode", "level", &err), SL_OK);
    CHECK_EQ_INT(c.reactor_edge, 0);
    CHECK_EQ_INT(broker_conf_set(&c, "log.segment.bytes", "65536", &err), SL_OK);
    CHECK_EQ_INT(c.topic.segment_bytes, 65536);
    CHECK_EQ_INT(broker_conf_set(&c, "auto.create.topics.enable", "false", &err), SL_OK);
    CHECK_EQ_INT(c.auto_create_topics, 0);

    CHECK_EQ_INT(broker_conf_set(&c, "log.segment.byte", "1", &err), SL_ERR_INVALID_CONFIG);
    CHECK_MSG(strstr(err.msg, "did you mean \"log.segment.bytes\"") != NULL, "%s", err.msg);
    CHECK_EQ_INT(broker_conf_set(&c, "num.reactors", "abc", &err), SL_ERR_INVALID_CONFIG);
    CHECK_MSG(strstr(err.msg, "num.reactors") && strstr(err.msg, "abc"), "%s", err.msg);
    CHECK_EQ_INT(broker_conf_set(&c, "num.reactors", "64", &err), SL_OK);
    CHECK_EQ_INT(broker_conf_set(&c, "num.reactors", "65", &err), SL_ERR_INVALID_CONFIG);
    CHECK_MSG(strstr(err.msg, "num.reactors") && strstr(err.msg, "0..64"), "%s", err.msg);
    CHECK_EQ_INT(broker_conf_set(&c, "num.reactors", "999", &err), SL_ERR_INVALID_CONFIG);
    CHECK_EQ_INT(broker_conf_set(&c, "reactor.mode", "sideways", &err), SL_ERR_INVALID_CONFIG);
    CHECK_MSG(strstr(err.msg, "level|edge") != NULL, "%s", err.msg);
    CHECK_EQ_INT(broker_conf_set(&c, "auto.create.topics.enable", "yes", &err),
                 SL_ERR_INVALID_CONFIG);
    CHECK_EQ_INT(broker_conf_set(&c, "totally.unrelated.key.name", "1", &err),
                 SL_ERR_INVALID_CONFIG);
    CHECK(strstr(err.msg, "did you mean") == NULL);

    broker_conf_defaults(&c);
    CHECK_EQ_INT(broker_conf_check(&c, &err), SL_OK);
    broker_conf_set(&c, "listeners", "nohostport", &err);
    CHECK_EQ_INT(broker_conf_check(&c, &err), SL_ERR_INVALID_CONFIG);
    CHECK_MSG(strstr(err.msg, "listeners") != NULL, "%s", err.msg);
    broker_conf_defaults(&c);
    broker_conf_set(&c, "max.request.size", "1048576", &err); /* < message.max.bytes + 1 KiB */
    CHECK_EQ_INT(broker_conf_check(&c, &err), SL_ERR_INVALID_CONFIG);
    CHECK_MSG(strstr(err.msg, "max.request.size") != NULL, "%s", err.msg);
}

static void test_file_and_args(void)
{
    char *dir = check_tmpdir("bconf");
    char path[512];
    snprintf(path, sizeof path, "%s/sluice.conf", dir);
    FILE *f = fopen(path, "w");
    fputs("# comment\n\nnum.partitions = 3\nlog.level=debug\n", f);
    fclose(f);
    broker_conf_t c;
    broker_conf_defaults(&c);
    sl_err_t err;
    char *argv[] = {"sluiced", "--num.partitions=5", "--config", path, NULL};
    int action;
    CHECK_EQ_INT(broker_conf_from_args(&c, 4, argv, &action, &err), SL_OK);
    CHECK_EQ_INT(c.num_partitions, 5); /* flags win over the file */
    CHECK_EQ_INT(c.log_level, 3);
    f = fopen(path, "w");
    fputs("num.partitions=3\nbogus line\n", f);
    fclose(f);
    broker_conf_defaults(&c);
    CHECK_EQ_INT(broker_conf_load_file(&c, path, &err), SL_ERR_INVALID_CONFIG);
    CHECK_MSG(strstr(err.msg, "sluice.conf:2") != NULL, "%s", err.msg);
    f = fopen(path, "w");
    fputs("num.partitions=0\n", f);
    fclose(f);
    CHECK_EQ_INT(broker_conf_load_file(&c, path, &err), SL_ERR_INVALID_CONFIG);
    CHECK_MSG(strstr(err.msg, ":1: num.partitions") != NULL, "%s", err.msg);
    CHECK_EQ_INT(broker_conf_load_file(&c, "/nonexistent/x.conf", &err), SL_ERR_INVALID_CONFIG);
    char *argv2[] = {"sluiced", "stray", NULL};
    CHECK_EQ_INT(broker_conf_from_args(&c, 2, argv2, &action, &err), SL_ERR_INVALID_CONFIG);
    char *argv3[] = {"sluiced", "--help", NULL};
    CHECK_EQ_INT(broker_conf_from_args(&c, 2, argv3, &action, &err), SL_OK);
    CHECK_EQ_INT(action, 1);
    char *argv4[] = {"sluiced", "--version", NULL};
    CHECK_EQ_INT(broker_conf_from_args(&c, 2, argv4, &action, &err), SL_OK);
    CHECK_EQ_INT(action, 3);
    char host[64];
    int port;
    CHECK_EQ_INT(conf_parse_hostport("127.0.0.1:0", host, sizeof host, &port, &err), SL_OK);
    CHECK(strcmp(host, "127.0.0.1") == 0 && port == 0);
    CHECK_EQ_INT(conf_parse_hostport("127.0.0.1:70000", host, sizeof host, &port, &err),
                 SL_ERR_INVALID_CONFIG);
    check_rmtree(dir);
    free(dir);
}

/* Values that --dump-config could not write back faithfully, and a file
 * line too long for the reader, are refused (found by fuzz_conf). */
static void test_unrepresentable(void)
{
    broker_conf_t c;
    broker_conf_defaults(&c);
    sl_err_t err;
    CHECK_EQ_INT(broker_conf_set(&c, "metrics.listener", "127.0.0.1:9293\nlog.dirs=/x", &err),
                 SL_ERR_INVALID_CONFIG);
    CHECK(strstr(err.msg, "control character 0x0a") != NULL);
    CHECK_EQ_INT(broker_conf_set(&c, "log.dirs", " /var/lib/sluice", &err), SL_ERR_INVALID_CONFIG);
    CHECK(strstr(err.msg, "blanks") != NULL);
    CHECK_EQ_INT(broker_conf_set(&c, "log.dirs", "/var/lib/with space", &err), SL_OK);
    char path[] = "/tmp/sluice-conf-long-XXXXXX";
    int fd = mkstemp(path);
    CHECK_FATAL(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputc('#', f);
    for (int i = 0; i < 4094; i++) fputc('a', f);
    fputs("log.dirs=/tmp/from-a-comment\n", f);
    fclose(f);
    broker_conf_defaults(&c);
    CHECK_EQ_INT(broker_conf_load_file(&c, path, &err), SL_ERR_INVALID_CONFIG);
    CHECK(strstr(err.msg, ":1: line longer than 4095 bytes") != NULL);
    CHECK(strcmp(c.log_dirs, "/tmp/from-a-comment") != 0);
    f = fopen(path, "w");
    CHECK_FATAL(f != NULL);
    fwrite("#\0hidden\nlog.dirs=/tmp/x\n", 1, 25, f);
    fclose(f);
    CHECK_EQ_INT(broker_conf_load_file(&c, path, &err), SL_ERR_INVALID_CONFIG);
    CHECK(strstr(err.msg, ":1: NUL byte") != NULL);
    unlink(path);
}

int main(void)
{
    test_docs();
    test_topic_defaults();
    test_unrepresentable();
    test_set();
    test_file_and_args();
    return check_exit();
}
