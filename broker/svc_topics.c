/* svc_topics.c — the topics service (svc_topics.h). */
#include "svc_topics.h"

#include <inttypes.h>
#include <string.h>

#include "log.h"
#include "offsets.h"

int topics_may_write(const char *topic, sl_err_t *err)
{
    /* A produce there would corrupt committed offsets, a delete lose them. */
    if (strcmp(topic, OFFSETS_TOPIC) == 0)
        return sl_err_set(err, SL_ERR_INVALID_TOPIC, "%s is an internal topic of the broker",
                          topic);
    return SL_OK;
}

/* Creates `topic` with num.partitions when auto-creation applies. SL_OK
 * also when someone else created it first. */
static int auto_create(broker_t *b, const char *topic, sl_err_t *err)
{
    int rc = topics_may_write(topic, err);
    if (rc != SL_OK) return rc;
    rc = store_topic_create(b->store, topic, (int32_t)b->conf.num_partitions, NULL, NULL, 0, err);
    if (rc == SL_OK)
        log_info("topics", "auto-created topic %s with %lld partitions", topic,
                 (long long)b->conf.num_partitions);
    return rc == SL_ERR_TOPIC_ALREADY_EXISTS ? SL_OK : rc;
}

int topics_partition(broker_t *b, const char *topic, int32_t id, int create, partition_t **out,
                     sl_err_t *err)
{
    int rc = store_validate_topic_name(topic, err);
    if (rc != SL_OK) return rc;
    if (create && (rc = topics_may_write(topic, err)) != SL_OK) return rc;
    rc = store_partition(b->store, topic, id, out, err);
    if (rc == SL_ERR_UNKNOWN_TOPIC_OR_PARTITION && create && b->conf.auto_create_topics &&
        store_topic_info(b->store, topic, NULL, NULL, NULL, NULL) != SL_OK) {
        if ((rc = auto_create(b, topic, err)) != SL_OK) return rc;
        rc = store_partition(b->store, topic, id, out, err);
    }
    return rc;
}

int topics_describe(broker_t *b, const char *topic, int create, int32_t *nparts, sl_err_t *err)
{
    int rc = store_validate_topic_name(topic, err);
    if (rc == SL_OK) rc = store_topic_info(b->store, topic, nparts, NULL, NULL, err);
    if (rc == SL_ERR_UNKNOWN_TOPIC_OR_PARTITION && create && b->conf.auto_create_topics &&
        (rc = auto_create(b, topic, err)) == SL_OK)
        rc = store_topic_info(b->store, topic, nparts, NULL, NULL, err);
    return rc;
}

int topics_create(broker_t *b, const char *name, int64_t partitions, int32_t replication_factor,
                  const char *const *keys, const char *const *vals, size_t nconf, int validate_only,
                  const char *who, sl_err_t *err)
{
    int rc = store_validate_topic_name(name, err);
    if (rc == SL_OK) rc = topics_may_write(name, err);
    if (rc != SL_OK) return rc;
    int64_t np = partitions == TOPICS_DEFAULT_PARTITIONS ? b->conf.num_partitions : partitions;
    if (np <= 0 || np > STORE_MAX_PARTITIONS)
        return sl_err_set(err, SL_ERR_INVALID_PARTITIONS, "%lld partitions is not in 1..%d",
                          (long long)np, STORE_MAX_PARTITIONS);
    if (replication_factor != -1 && replication_factor != 1)
        return sl_err_set(err, SL_ERR_INVALID_REPLICATION_FACTOR,
                          "replication factor %d: this cluster has 1 broker", replication_factor);
    for (size_t i = 0; i < nconf; i++)
        if (!keys[i] || !vals[i])
            return sl_err_set(err, SL_ERR_INVALID_CONFIG, "config %s: null value",
                              keys[i] ? keys[i] : "(null)");
    if (validate_only) {
        if (store_topic_info(b->store, name, NULL, NULL, NULL, NULL) == SL_OK)
            return sl_err_set(err, SL_ERR_TOPIC_ALREADY_EXISTS, "topic %s already exists", name);
        return SL_OK;
    }
    rc = store_topic_create(b->store, name, (int32_t)np, keys, vals, nconf, err);
    if (rc == SL_OK)
        log_info("topics", "created topic %s with %lld partitions (%s)", name, (long long)np, who);
    return rc;
}

int topics_delete(broker_t *b, const char *name, const char *who, sl_err_t *err)
{
    int rc = store_validate_topic_name(name, err);
    if (rc == SL_OK) rc = topics_may_write(name, err);
    if (rc == SL_OK) rc = store_topic_delete(b->store, name, err);
    if (rc == SL_OK) log_info("topics", "deleted topic %s (%s)", name, who);
    return rc;
}

int topics_offset_for(partition_t *p, int64_t timestamp, int64_t *offset, sl_err_t *err)
{
    if (timestamp == -1) {
        *offset = partition_log_end(p);
        return SL_OK;
    }
    if (timestamp == -2) {
        *offset = partition_log_start(p);
        return SL_OK;
    }
    if (timestamp < 0)
        return sl_err_set(err, SL_ERR_INVALID_REQUEST,
                          "timestamp %" PRId64 " is not -1, -2 or >= 0", timestamp);
    return partition_offset_for_time(p, timestamp, offset, err);
}
