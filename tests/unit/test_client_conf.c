/* test_client_conf.c — libsluice's configuration: defaults, parsing,
 * errors that name key/value/expectation, closest-key suggestions, dup. */
#include <string.h>

#include "check.h"
#include "sluice/sluice.h"

int main(void)
{
    sluice_conf_t *c = sluice_conf_new();
    CHECK_FATAL(c);
    char buf[256], err[256];
    static const char *defaults[][2] = {{"bootstrap.servers", "127.0.0.1:9292"},
                                        {"acks", "all"},
                                        {"batch.size", "16384"},
                                        {"linger.ms", "5"},
                                        {"compression.type", "none"},
                                        {"max.in.flight", "5"},
                                        {"buffer.memory", "33554432"},
                                        {"max.block.ms", "60000"},
                                        {"retries", "2147483647"},
                                        {"retry.backoff.ms", "100"},
                                        {"request.timeout.ms", "30000"},
                                        {"delivery.timeout.ms", "120000"},
                                        {"client.id", "libsluice"}};
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) {
        CHECK_EQ_INT(sluice_conf_get(c, defaults[i][0], buf, sizeof buf), SLUICE_CONF_OK);
        CHECK_MSG(strcmp(buf, defaults[i][1]) == 0, "%s=%s", defaults[i][0], buf);
    }
    CHECK_EQ_INT(sluice_conf_set(c, "acks", "1", err, sizeof err), SLUICE_CONF_OK);
    CHECK_EQ_INT(sluice_conf_set(c, "acks", "-1", err, sizeof err), SLUICE_CONF_OK);
    sluice_conf_get(c, "acks", buf, sizeof buf);
    CHECK(strcmp(buf, "all") == 0);
    CHECK_EQ_INT(sluice_conf_set(c, "acks", "2", err, sizeof err), SLUICE_CONF_INVALID);
    CHECK(strstr(err, "acks") && strstr(err, "\"2\""));
    CHECK_EQ_INT(sluice_conf_set(c, "batch.size", "12x", err, sizeof err), SLUICE_CONF_INVALID);
    CHECK_MSG(strstr(err, "batch.size: \"12x\" is not an integer in"), "%s", err);
    CHECK_EQ_INT(sluice_conf_set(c, "batch.size", "0", err, sizeof err), SLUICE_CONF_INVALID);
    CHECK_EQ_INT(sluice_conf_set(c, "linger.ms", "250", err, sizeof err), SLUICE_CONF_OK);
    CHECK_EQ_INT(sluice_conf_set(c, "compression.type", "lz4", err, sizeof err), SLUICE_CONF_OK);
    CHECK_EQ_INT(sluice_conf_set(c, "compression.type", "zstd", err, sizeof err),
                 SLUICE_CONF_INVALID);
    CHECK(strstr(err, "none") && strstr(err, "lz4"));
    CHECK_EQ_INT(sluice_conf_set(c, "linger.msec", "1", err, sizeof err), SLUICE_CONF_UNKNOWN);
    CHECK_MSG(strstr(err, "did you mean linger.ms"), "%s", err);
    CHECK_EQ_INT(sluice_conf_set(c, "bach.size", "1", err, sizeof err), SLUICE_CONF_UNKNOWN);
    CHECK_MSG(strstr(err, "batch.size"), "%s", err);
    CHECK_EQ_INT(sluice_conf_set(c, "zzzzzzzzzzzzzzzzzzzzzzz", "1", err, sizeof err),
                 SLUICE_CONF_UNKNOWN);
    CHECK(!strstr(err, "did you mean"));
    CHECK_EQ_INT(sluice_conf_set(c, "max.in.flight.requests.per.connection", "3", err, sizeof err),
                 SLUICE_CONF_OK);
    sluice_conf_get(c, "max.in.flight", buf, sizeof buf);
    CHECK(strcmp(buf, "3") == 0);
    CHECK_EQ_INT(sluice_conf_get(c, "nope", buf, sizeof buf), SLUICE_CONF_UNKNOWN);
    CHECK_EQ_INT(sluice_conf_set(c, "bootstrap.servers", "localhost:1", err, sizeof err),
                 SLUICE_CONF_OK);
    sluice_conf_t *d = sluice_conf_dup(c);
    CHECK_FATAL(d);
    sluice_conf_destroy(c);
    sluice_conf_get(d, "bootstrap.servers", buf, sizeof buf);
    CHECK(strcmp(buf, "localhost:1") == 0);
    sluice_conf_get(d, "linger.ms", buf, sizeof buf);
    CHECK(strcmp(buf, "250") == 0);
    sluice_conf_get(d, "compression.type", buf, sizeof buf);
    CHECK(strcmp(buf, "lz4") == 0);
    sluice_conf_destroy(d);
    sluice_conf_destroy(NULL);
    return check_exit();
}
