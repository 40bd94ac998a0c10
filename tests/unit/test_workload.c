/* test_workload.c — sluice-bench workload flags: valid command lines checked
 * through their JSON rendering, invalid ones through their exact message. */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "workload.h"

/* Splits `line` at spaces into argv[1..] (argv[0] = "sluice-bench"). */
static int split(const char *line, char *store, size_t cap, char **argv, int max)
{
    int argc = 0;
    argv[argc++] = "sluice-bench";
    snprintf(store, cap, "%s", line);
    for (char *tok = strtok(store, " "); tok && argc < max; tok = strtok(NULL, " "))
        argv[argc++] = tok;
    return argc;
}

#define DEFAULT_TAIL                                                                               \
    "\"acks\":\"1\",\"batch_size\":16384,\"linger_ms\":5,\"compression\":\"none\","                \
    "\"duration_s\":10,\"messages\":null,\"warmup_s\":2,\"rate\":0,\"mode\":\"closed-loop\","      \
    "\"quick\":false,\"topic_config\":{}}"

static const struct {
    const char *args;
    const char *json;
} valid[] = {
    {"",
     "{\"system\":\"sluice\",\"bootstrap\":\"127.0.0.1:9292\",\"message_size\":100,\"producers\":1,"
     "\"consumers\":1,\"partitions\":1," DEFAULT_TAIL},
    {"--system kafka --producers 4 --consumers 0 --partitions 12",
     "{\"system\":\"kafka\",\"bootstrap\":\"127.0.0.1:19092\",\"message_size\":100,\"producers\":4,"
     "\"consumers\":0,\"partitions\":12," DEFAULT_TAIL},
    {"--system=rabbitmq --message-size=1K",
     "{\"system\":\"rabbitmq\",\"bootstrap\":\"127.0.0.1:15673\",\"message_size\":1024,"
     "\"producers\":1,\"consumers\":1,\"partitions\":1," DEFAULT_TAIL},
    {"--system sluice-kafka --bootstrap localhost:19092 --message-size 24",
     "{\"system\":\"sluice-kafka\",\"bootstrap\":\"localhost:19092\",\"message_size\":24,"
     "\"producers\":1,\"consumers\":1,\"partitions\":1," DEFAULT_TAIL},
    {"--acks all --batch-size 1m --linger-ms 0 --compression lz4 --messages 1000000 --warmup 0 "
     "--rate 50000 --json --bootstrap [::1]:9092 --message-size 16M",
     "{\"system\":\"sluice\",\"bootstrap\":\"[::1]:9092\",\"message_size\":16777216,\"producers\":"
     "1,"
     "\"consumers\":1,\"partitions\":1,\"acks\":\"all\",\"batch_size\":1048576,\"linger_ms\":0,"
     "\"compression\":\"lz4\",\"duration_s\":null,\"messages\":1000000,\"warmup_s\":0,"
     "\"rate\":50000,\"mode\":\"open-loop\",\"quick\":false,\"topic_config\":{}}"},
    {"--acks -1 --batch-size 0g --duration 60 --acks=0 --compression none",
     "{\"system\":\"sluice\",\"bootstrap\":\"127.0.0.1:9292\",\"message_size\":100,\"producers\":1,"
     "\"consumers\":1,\"partitions\":1,\"acks\":\"0\",\"batch_size\":0,\"linger_ms\":5,"
     "\"compression\":\"none\",\"duration_s\":60,\"messages\":null,\"warmup_s\":2,\"rate\":0,"
     "\"mode\":\"closed-loop\",\"quick\":false,\"topic_config\":{}}"},
    /* --quick shortens the run, but given values win, in any order. */
    {"--quick",
     "{\"system\":\"sluice\",\"bootstrap\":\"127.0.0.1:9292\",\"message_size\":100,\"producers\":1,"
     "\"consumers\":1,\"partitions\":1,\"acks\":\"1\",\"batch_size\":16384,\"linger_ms\":5,"
     "\"compression\":\"none\",\"duration_s\":3,\"messages\":null,\"warmup_s\":1,\"rate\":0,"
     "\"mode\":\"closed-loop\",\"quick\":true,\"topic_config\":{}}"},
    {"--duration 20 --quick --warmup 5",
     "{\"system\":\"sluice\",\"bootstrap\":\"127.0.0.1:9292\",\"message_size\":100,\"producers\":1,"
     "\"consumers\":1,\"partitions\":1,\"acks\":\"1\",\"batch_size\":16384,\"linger_ms\":5,"
     "\"compression\":\"none\",\"duration_s\":20,\"messages\":null,\"warmup_s\":5,\"rate\":0,"
     "\"mode\":\"closed-loop\",\"quick\":true,\"topic_config\":{}}"},
    {"--json --quick --messages 10 --batch-size 256M --producers 1024 --consumers 1024 "
     "--partitions 10000 --linger-ms 60000 --rate 1000000000 --warmup 3600",
     "{\"system\":\"sluice\",\"bootstrap\":\"127.0.0.1:9292\",\"message_size\":100,"
     "\"producers\":1024,\"consumers\":1024,\"partitions\":10000,\"acks\":\"1\","
     "\"batch_size\":268435456,\"linger_ms\":60000,\"compression\":\"none\",\"duration_s\":null,"
     "\"messages\":10,\"warmup_s\":3600,\"rate\":1000000000,\"mode\":\"open-loop\","
     "\"quick\":true,\"topic_config\":{}}"},
    /* Topic configs go to Kafka's CreateTopics; a repeated key keeps the
     * last value, in the position of its first use. */
    {"--system kafka --topic-config flush.messages=1 --topic-config=retention.ms=60000 "
     "--topic-config flush.messages=2",
     "{\"system\":\"kafka\",\"bootstrap\":\"127.0.0.1:19092\",\"message_size\":100,\"producers\":1,"
     "\"consumers\":1,\"partitions\":1,\"acks\":\"1\",\"batch_size\":16384,\"linger_ms\":5,"
     "\"compression\":\"none\",\"duration_s\":10,\"messages\":null,\"warmup_s\":2,\"rate\":0,"
     "\"mode\":\"closed-loop\",\"quick\":false,\"topic_config\":{\"flush.messages\":\"2\","
     "\"retention.ms\":\"60000\"}}"},
    {"--topic-config cleanup.policy=delete --system sluice-kafka",
     "{\"system\":\"sluice-kafka\",\"bootstrap\":\"127.0.0.1:9092\",\"message_size\":100,"
     "\"producers\":1,\"consumers\":1,\"partitions\":1,\"acks\":\"1\",\"batch_size\":16384,"
     "\"linger_ms\":5,\"compression\":\"none\",\"duration_s\":10,\"messages\":null,"
     "\"warmup_s\":2,\"rate\":0,\"mode\":\"closed-loop\",\"quick\":false,"
     "\"topic_config\":{\"cleanup.policy\":\"delete\"}}"},
};

static const struct {
    const char *args;
    int rc;
    const char *msg;
} invalid[] = {
    {"--system", WORKLOAD_INVALID,
     "--system: missing value (expected one of sluice, sluice-kafka, kafka, rabbitmq)"},
    {"--system redis", WORKLOAD_INVALID,
     "--system: \"redis\" is not one of sluice, sluice-kafka, kafka, rabbitmq"},
    {"--system Kafka", WORKLOAD_INVALID,
     "--system: \"Kafka\" is not one of sluice, sluice-kafka, kafka, rabbitmq"},
    {"--message-size 23", WORKLOAD_INVALID,
     "--message-size: \"23\" is not a size in 24..16M bytes (suffix K, M or G allowed)"},
    {"--message-size 17M", WORKLOAD_INVALID,
     "--message-size: \"17M\" is not a size in 24..16M bytes (suffix K, M or G allowed)"},
    {"--message-size 1KB", WORKLOAD_INVALID,
     "--message-size: \"1KB\" is not a size in 24..16M bytes (suffix K, M or G allowed)"},
    {"--message-size 1T", WORKLOAD_INVALID,
     "--message-size: \"1T\" is not a size in 24..16M bytes (suffix K, M or G allowed)"},
    {"--message-size K", WORKLOAD_INVALID,
     "--message-size: \"K\" is not a size in 24..16M bytes (suffix K, M or G allowed)"},
    {"--message-size -100", WORKLOAD_INVALID,
     "--message-size: \"-100\" is not a size in 24..16M bytes (suffix K, M or G allowed)"},
    {"--batch-size 99999999999999999999", WORKLOAD_INVALID,
     "--batch-size: \"99999999999999999999\" is not a size in 0..256M bytes (suffix K, M or G "
     "allowed)"},
    {"--batch-size 17179869184G", WORKLOAD_INVALID, /* 2^34 G overflows 64 bits */
     "--batch-size: \"17179869184G\" is not a size in 0..256M bytes (suffix K, M or G allowed)"},
    {"--producers 0", WORKLOAD_INVALID, "--producers: \"0\" is not an integer in 1..1024"},
    {"--producers 1025", WORKLOAD_INVALID, "--producers: \"1025\" is not an integer in 1..1024"},
    {"--producers 4k", WORKLOAD_INVALID, "--producers: \"4k\" is not an integer in 1..1024"},
    {"--producers +4", WORKLOAD_INVALID, "--producers: \"+4\" is not an integer in 1..1024"},
    {"--producers= ", WORKLOAD_INVALID, "--producers: \"\" is not an integer in 1..1024"},
    {"--producers --json", WORKLOAD_INVALID,
     "--producers: \"--json\" is not an integer in 1..1024"},
    {"--consumers 2000", WORKLOAD_INVALID, "--consumers: \"2000\" is not an integer in 0..1024"},
    {"--partitions 0", WORKLOAD_INVALID, "--partitions: \"0\" is not an integer in 1..10000"},
    {"--acks 2", WORKLOAD_INVALID, "--acks: \"2\" is not one of 0, 1, all"},
    {"--acks ALL", WORKLOAD_INVALID, "--acks: \"ALL\" is not one of 0, 1, all"},
    {"--linger-ms 60001", WORKLOAD_INVALID, "--linger-ms: \"60001\" is not an integer in 0..60000"},
    {"--linger-ms 1.5", WORKLOAD_INVALID, "--linger-ms: \"1.5\" is not an integer in 0..60000"},
    {"--compression zstd", WORKLOAD_INVALID, "--compression: \"zstd\" is not one of none, lz4"},
    {"--duration 0", WORKLOAD_INVALID, "--duration: \"0\" is not an integer in 1..86400"},
    {"--duration 10s", WORKLOAD_INVALID, "--duration: \"10s\" is not an integer in 1..86400"},
    {"--messages 0", WORKLOAD_INVALID, "--messages: \"0\" is not an integer in 1..1000000000000"},
    {"--messages 10M", WORKLOAD_INVALID,
     "--messages: \"10M\" is not an integer in 1..1000000000000"},
    {"--warmup 3601", WORKLOAD_INVALID, "--warmup: \"3601\" is not an integer in 0..3600"},
    {"--rate 1000000001", WORKLOAD_INVALID,
     "--rate: \"1000000001\" is not an integer in 0..1000000000"},
    {"--rate", WORKLOAD_INVALID, "--rate: missing value (expected an integer in 0..1000000000)"},
    {"--json=yes", WORKLOAD_INVALID, "--json: takes no value (got \"yes\")"},
    {"--quick=", WORKLOAD_INVALID, "--quick: takes no value (got \"\")"},
    {"--bootstrap localhost", WORKLOAD_INVALID,
     "--bootstrap: \"localhost\" is not HOST:PORT or [IPV6]:PORT with PORT in 1..65535"},
    {"--bootstrap localhost:0", WORKLOAD_INVALID,
     "--bootstrap: \"localhost:0\" is not HOST:PORT or [IPV6]:PORT with PORT in 1..65535"},
    {"--bootstrap host:65536", WORKLOAD_INVALID,
     "--bootstrap: \"host:65536\" is not HOST:PORT or [IPV6]:PORT with PORT in 1..65535"},
    {"--bootstrap :9092", WORKLOAD_INVALID,
     "--bootstrap: \":9092\" is not HOST:PORT or [IPV6]:PORT with PORT in 1..65535"},
    {"--bootstrap ::1:9092", WORKLOAD_INVALID,
     "--bootstrap: \"::1:9092\" is not HOST:PORT or [IPV6]:PORT with PORT in 1..65535"},
    {"--bootstrap [::1:9092", WORKLOAD_INVALID,
     "--bootstrap: \"[::1:9092\" is not HOST:PORT or [IPV6]:PORT with PORT in 1..65535"},
    {"--bootstrap a\"b:1", WORKLOAD_INVALID,
     "--bootstrap: \"a\"b:1\" is not HOST:PORT or [IPV6]:PORT with PORT in 1..65535"},
    {"--duration 5 --messages 100", WORKLOAD_INVALID,
     "--duration and --messages are exclusive (got --duration 5 and --messages 100)"},
    {"--messages 100 --quick --duration 10", WORKLOAD_INVALID,
     "--duration and --messages are exclusive (got --duration 10 and --messages 100)"},
    {"--compression lz4 --system rabbitmq", WORKLOAD_INVALID,
     "--compression: \"lz4\" is not supported with --system rabbitmq (AMQP has no batch "
     "compression); expected none"},
    {"--topic-config flush.messages=1", WORKLOAD_INVALID,
     "--topic-config: only with --system kafka or sluice-kafka (it is sent in Kafka's "
     "CreateTopics), not with --system sluice"},
    {"--system rabbitmq --topic-config flush.messages=1", WORKLOAD_INVALID,
     "--topic-config: only with --system kafka or sluice-kafka (it is sent in Kafka's "
     "CreateTopics), not with --system rabbitmq"},
    {"--system kafka --topic-config flush.messages", WORKLOAD_INVALID,
     "--topic-config: \"flush.messages\" is not KEY=VALUE with KEY in [a-z0-9._-], VALUE "
     "printable, each < 128 bytes, at most 8 keys"},
    {"--system kafka --topic-config =1", WORKLOAD_INVALID,
     "--topic-config: \"=1\" is not KEY=VALUE with KEY in [a-z0-9._-], VALUE printable, each < 128 "
     "bytes, at most 8 keys"},
    {"--system kafka --topic-config Flush.messages=1", WORKLOAD_INVALID,
     "--topic-config: \"Flush.messages=1\" is not KEY=VALUE with KEY in [a-z0-9._-], VALUE "
     "printable, each < 128 bytes, at most 8 keys"},
    {"--system kafka --topic-config flush.messages=", WORKLOAD_INVALID,
     "--topic-config: \"flush.messages=\" is not KEY=VALUE with KEY in [a-z0-9._-], VALUE "
     "printable, each < 128 bytes, at most 8 keys"},
    {"--system kafka --topic-config a=\"", WORKLOAD_INVALID,
     "--topic-config: \"a=\"\" is not KEY=VALUE with KEY in [a-z0-9._-], VALUE printable, each < "
     "128 bytes, at most 8 keys"},
    {"--system kafka --topic-config a=1 --topic-config b=1 --topic-config c=1 --topic-config d=1 "
     "--topic-config e=1 --topic-config f=1 --topic-config g=1 --topic-config h=1 "
     "--topic-config i=1",
     WORKLOAD_INVALID,
     "--topic-config: \"i=1\" is not KEY=VALUE with KEY in [a-z0-9._-], VALUE printable, each < "
     "128 bytes, at most 8 keys"},
    {"--topic bench", WORKLOAD_UNKNOWN, "unknown option \"--topic\""},
    {"--topic=bench", WORKLOAD_UNKNOWN, "unknown option \"--topic\""},
    {"-p 4", WORKLOAD_INVALID, "unexpected argument \"-p\" (workload options start with --)"},
    {"kafka", WORKLOAD_INVALID, "unexpected argument \"kafka\" (workload options start with --)"},
    {"--producers 2 --producers x", WORKLOAD_INVALID,
     "--producers: \"x\" is not an integer in 1..1024"},
};

static void test_valid(void)
{
    char store[512], *argv[64], json[1024], err[256];
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        workload_t w;
        int argc = split(valid[i].args, store, sizeof store, argv, 64);
        err[0] = '\0';
        int rc = workload_parse(&w, argc, argv, err, sizeof err);
        CHECK_MSG(rc == WORKLOAD_OK, "\"%s\": rc %d: %s", valid[i].args, rc, err);
        size_t n = workload_to_json(&w, json, sizeof json);
        CHECK_MSG(n == strlen(json) && strcmp(json, valid[i].json) == 0,
                  "\"%s\":\n got  %s\n want %s", valid[i].args, json, valid[i].json);
    }
}

static void test_invalid(void)
{
    char store[512], *argv[64], err[256];
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        workload_t w;
        /* " " in args means an empty value after "=" (strtok drops it). */
        int argc = split(invalid[i].args, store, sizeof store, argv, 64);
        for (int a = 1; a < argc; a++)
            if (argv[a][strlen(argv[a]) - 1] == '=') argv[a][strlen(argv[a])] = '\0';
        strcpy(err, "untouched");
        int rc = workload_parse(&w, argc, argv, err, sizeof err);
        CHECK_MSG(rc == invalid[i].rc && strcmp(err, invalid[i].msg) == 0,
                  "\"%s\": rc %d (want %d)\n got  %s\n want %s", invalid[i].args, rc, invalid[i].rc,
                  err, invalid[i].msg);
    }
}

static void test_set(void)
{
    workload_t w, before;
    char err[64];
    workload_defaults(&w);
    before = w;
    /* A failed set leaves the workload as it was; errbuf is truncated. */
    CHECK_EQ_INT(workload_set(&w, "--producers", "0", err, sizeof err), WORKLOAD_INVALID);
    CHECK(memcmp(&w, &before, sizeof w) == 0);
    CHECK_EQ_INT(workload_set(&w, "--bootstrap", "nope", err, 8), WORKLOAD_INVALID);
    CHECK(strcmp(err, "--boots") == 0);
    CHECK(memcmp(&w, &before, sizeof w) == 0);
    CHECK_EQ_INT(workload_set(&w, "--json", NULL, NULL, 0), WORKLOAD_OK);
    CHECK(w.json);
    CHECK_EQ_INT(workload_set(&w, "--nope", NULL, NULL, 0), WORKLOAD_UNKNOWN);

    /* A 300-byte value is quoted shortened, and the line still ends. */
    char big[301], line[256];
    memset(big, '9', 300);
    big[300] = '\0';
    CHECK_EQ_INT(workload_set(&w, "--rate", big, line, sizeof line), WORKLOAD_INVALID);
    CHECK(strstr(line, "...\" is not an integer in 0..1000000000") != NULL);

    CHECK(strcmp(workload_system_name(WORKLOAD_SLUICE_KAFKA), "sluice-kafka") == 0);
    CHECK(strcmp(workload_system_name((workload_system_t)9), "?") == 0);
}

static void test_render(void)
{
    workload_t w;
    char buf[512], small[16];
    workload_defaults(&w);
    size_t n = workload_summary(&w, buf, sizeof buf);
    CHECK(n == strlen(buf));
    CHECK_MSG(strcmp(buf, "sluice @127.0.0.1:9292: 1 producer -> 1 partition -> 1 consumer, 100 B "
                          "messages, acks=1, batch 16 KiB, linger 5 ms, compression none, 10 s "
                          "after 2 s warm-up, closed loop") == 0,
              "%s", buf);

    char *argv[] = {"x",    "--system",     "rabbitmq", "--producers",  "3",    "--consumers",
                    "0",    "--partitions", "2",        "--acks",       "all",  "--messages",
                    "5000", "--rate",       "2000",     "--batch-size", "1000", "--message-size",
                    "2M"};
    CHECK_FATAL(workload_parse(&w, (int)(sizeof argv / sizeof argv[0]), argv, NULL, 0) ==
                WORKLOAD_OK);
    workload_summary(&w, buf, sizeof buf);
    CHECK_MSG(strcmp(buf,
                     "rabbitmq @127.0.0.1:15673: 3 producers -> 2 queues -> no consumer, 2 MiB "
                     "messages, acks=all, batch 1000 B, linger 5 ms, compression none, 5000 "
                     "messages after 2 s warm-up, open loop at 2000 msg/s") == 0,
              "%s", buf);

    /* snprintf-style: the needed length comes back, the output is cut and
     * NUL-terminated. */
    size_t need = workload_to_json(&w, buf, sizeof buf);
    CHECK(need == strlen(buf));
    CHECK_EQ_INT(workload_to_json(&w, small, sizeof small), need);
    CHECK(strlen(small) == sizeof small - 1 && strncmp(small, buf, sizeof small - 1) == 0);
    CHECK_EQ_INT(workload_summary(&w, small, sizeof small),
                 strlen("rabbitmq @127.0.0.1:15673: 3 producers -> 2 queues -> no consumer, 2 MiB "
                        "messages, acks=all, batch 1000 B, linger 5 ms, compression none, 5000 "
                        "messages after 2 s warm-up, open loop at 2000 msg/s"));
    CHECK_EQ_INT(workload_to_json(&w, NULL, 0), need);

    /* A hand-filled bootstrap is escaped in JSON. */
    snprintf(w.bootstrap, sizeof w.bootstrap, "a\"b\\c\n");
    workload_to_json(&w, buf, sizeof buf);
    CHECK(strstr(buf, "\"bootstrap\":\"a\\\"b\\\\c\\u000a\"") != NULL);
}

int main(void)
{
    test_valid();
    test_invalid();
    test_set();
    test_render();
    return check_exit();
}
