#include "dispatch.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "offsets.h"

uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000;
}

/* The broker's own topics are not for clients to write, create or delete:
 * a produce there would corrupt committed offsets, a delete lose them all. */
int dispatch_may_write(const char *topic, sl_err_t *err)
{
    if (strcmp(topic, OFFSETS_TOPIC) == 0)
        return sl_err_set(err, SL_ERR_INVALID_TOPIC, "%s is an internal topic of the broker",
                          topic);
    return SL_OK;
}

void dispatch_reply(conn_t *c, const sl_request_t *req, int code, const char *msg,
                    const ProtobufCMessage *body)
{
    slot_t *s = conn_slot(c);
    if (!s) {
        conn_close(c, "out of memory");
        return;
    }
    met_request(&c->w->m, req->hdr->api, code);
    conn_respond(c, s, req->hdr->api, req->hdr->correlation_id, code, msg, body, NULL);
}

int dispatch_partition(conn_t *c, const char *topic, int32_t id, int auto_create, partition_t **out,
                       sl_err_t *err)
{
    store_t *s = c->w->b->store;
    int rc = store_validate_topic_name(topic, err);
    if (rc != SL_OK) return rc;
    if (auto_create && (rc = dispatch_may_write(topic, err)) != SL_OK) return rc;
    rc = store_partition(s, topic, id, out, err);
    if (rc == SL_ERR_UNKNOWN_TOPIC_OR_PARTITION && auto_create &&
        c->w->b->conf.auto_create_topics &&
        store_topic_info(s, topic, NULL, NULL, NULL, NULL) != SL_OK) {
        int crc =
            store_topic_create(s, topic, (int32_t)c->w->b->conf.num_partitions, NULL, NULL, 0, err);
        if (crc == SL_OK)
            log_info("topics", "auto-created topic %s with %lld partitions", topic,
                     (long long)c->w->b->conf.num_partitions);
        if (crc != SL_OK && crc != SL_ERR_TOPIC_ALREADY_EXISTS) return crc;
        rc = store_partition(s, topic, id, out, err);
    }
    return rc;
}

static void h_hello(conn_t *c, const sl_request_t *req)
{
    DISPATCH_DECODE(Sluice__HelloRequest, m, sluice__hello_request__descriptor);
    if (m->min_version > SL_PROTOCOL_VERSION || (m->max_version && m->max_version < 1)) {
        char msg[128];
        snprintf(msg, sizeof msg, "client speaks versions %u..%u, broker %d..%d", m->min_version,
                 m->max_version, 1, SL_PROTOCOL_VERSION);
        dispatch_reply(c, req, SL_ERR_INVALID_REQUEST, msg, NULL);
        return;
    }
    Sluice__HelloResponse r = SLUICE__HELLO_RESPONSE__INIT;
    r.version = SL_PROTOCOL_VERSION;
    r.broker_version = (char *)"sluiced " SLUICE_VERSION_STRING;
    r.max_request_size = (uint32_t)c->w->b->conf.max_request_size;
    if (m->client_id && *m->client_id)
        log_debug("conn", "#%" PRIu64 " %s is client \"%.64s\"", c->id, c->peer, m->client_id);
    dispatch_reply(c, req, SL_OK, NULL, &r.base);
}

static void h_metadata(conn_t *c, const sl_request_t *req)
{
    DISPATCH_DECODE(Sluice__MetadataRequest, m, sluice__metadata_request__descriptor);
    broker_t *b = c->w->b;
    char **names = NULL;
    size_t n = 0;
    int all = m->n_topics == 0;
    if (all) {
        if (store_topic_list(b->store, &names, &n, &err) != SL_OK) {
            dispatch_reply(c, req, err.code, err.msg, NULL);
            return;
        }
    } else {
        n = m->n_topics;
    }
    Sluice__MetadataResponse r = SLUICE__METADATA_RESPONSE__INIT;
    r.host = b->host;
    r.port = (uint32_t)b->port;
    r.n_topics = n;
    r.topics = sl_arena_alloc(c->arena, n * sizeof *r.topics + 1);
    Sluice__TopicMetadata *tm = sl_arena_alloc(c->arena, n * sizeof *tm + 1);
    if (!r.topics || !tm) {
        store_names_free(names, all ? n : 0);
        dispatch_reply(c, req, SL_ERR_INVALID_REQUEST, "metadata response too large", NULL);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const char *name = all ? names[i] : m->topics[i];
        sluice__topic_metadata__init(&tm[i]);
        r.topics[i] = &tm[i];
        tm[i].name = (char *)name;
        tm[i].error_message = (char *)"";
        int32_t np = 0;
        sl_err_t e2;
        int rc = store_validate_topic_name(name, &e2);
        if (rc == SL_OK) rc = store_topic_info(b->store, name, &np, NULL, NULL, &e2);
        if (rc == SL_ERR_UNKNOWN_TOPIC_OR_PARTITION && b->conf.auto_create_topics) {
            partition_t *p;
            rc = dispatch_partition(c, name, 0, 1, &p, &e2);
            if (rc == SL_OK) {
                partition_unref(p);
                rc = store_topic_info(b->store, name, &np, NULL, NULL, &e2);
            }
        }
        if (rc != SL_OK) {
            tm[i].error_code = (Sluice__ErrorCode)sl_code_to_wire(rc);
            char *msg = sl_arena_alloc(c->arena, strlen(e2.msg) + 1);
            if (msg) {
                strcpy(msg, e2.msg);
                tm[i].error_message = msg;
            }
            continue;
        }
        tm[i].n_partitions = (size_t)np;
        tm[i].partitions = sl_arena_alloc(c->arena, (size_t)np * sizeof *tm[i].partitions);
        Sluice__PartitionMetadata *pm = sl_arena_alloc(c->arena, (size_t)np * sizeof *pm);
        if (!tm[i].partitions || !pm) {
            tm[i].n_partitions = 0;
            tm[i].error_code = SLUICE__ERROR_CODE__INVALID_REQUEST;
            tm[i].error_message = (char *)"metadata response too large";
            continue;
        }
        for (int32_t k = 0; k < np; k++) {
            sluice__partition_metadata__init(&pm[k]);
            tm[i].partitions[k] = &pm[k];
            pm[k].partition = k;
            partition_t *p;
            if (store_partition(b->store, name, k, &p, NULL) == SL_OK) {
                pm[k].log_start_offset = partition_log_start(p);
                pm[k].log_end_offset = partition_log_end(p);
                partition_unref(p);
            }
        }
    }
    dispatch_reply(c, req, SL_OK, NULL, &r.base);
    store_names_free(names, all ? n : 0);
}

static void h_create_topic(conn_t *c, const sl_request_t *req)
{
    DISPATCH_DECODE(Sluice__CreateTopicRequest, m, sluice__create_topic_request__descriptor);
    int32_t np = m->partitions ? m->partitions : (int32_t)c->w->b->conf.num_partitions;
    const char **keys = sl_arena_alloc(c->arena, (m->n_configs + 1) * sizeof *keys);
    const char **vals = sl_arena_alloc(c->arena, (m->n_configs + 1) * sizeof *vals);
    if (!keys || !vals) {
        dispatch_reply(c, req, SL_ERR_INVALID_REQUEST, "too many configs", NULL);
        return;
    }
    for (size_t i = 0; i < m->n_configs; i++) {
        keys[i] = m->configs[i]->key ? m->configs[i]->key : "";
        vals[i] = m->configs[i]->value ? m->configs[i]->value : "";
    }
    int rc = dispatch_may_write(m->name, &err);
    if (rc == SL_OK)
        rc = store_topic_create(c->w->b->store, m->name, np, keys, vals, m->n_configs, &err);
    if (rc != SL_OK) {
        dispatch_reply(c, req, rc, err.msg, NULL);
        return;
    }
    log_info("topics", "created topic %s with %d partitions (#%" PRIu64 " %s)", m->name, np, c->id,
             c->peer);
    Sluice__CreateTopicResponse r = SLUICE__CREATE_TOPIC_RESPONSE__INIT;
    r.partitions = np;
    dispatch_reply(c, req, SL_OK, NULL, &r.base);
}

static void h_delete_topic(conn_t *c, const sl_request_t *req)
{
    DISPATCH_DECODE(Sluice__DeleteTopicRequest, m, sluice__delete_topic_request__descriptor);
    int rc = store_validate_topic_name(m->name, &err);
    if (rc == SL_OK) rc = dispatch_may_write(m->name, &err);
    if (rc == SL_OK) rc = store_topic_delete(c->w->b->store, m->name, &err);
    if (rc != SL_OK) {
        dispatch_reply(c, req, rc, err.msg, NULL);
        return;
    }
    log_info("topics", "deleted topic %s (#%" PRIu64 " %s)", m->name, c->id, c->peer);
    Sluice__DeleteTopicResponse r = SLUICE__DELETE_TOPIC_RESPONSE__INIT;
    dispatch_reply(c, req, SL_OK, NULL, &r.base);
}

static void h_list_offsets(conn_t *c, const sl_request_t *req)
{
    DISPATCH_DECODE(Sluice__ListOffsetsRequest, m, sluice__list_offsets_request__descriptor);
    partition_t *p;
    int rc = dispatch_partition(c, m->topic, m->partition, 0, &p, &err);
    if (rc != SL_OK) {
        dispatch_reply(c, req, rc, err.msg, NULL);
        return;
    }
    Sluice__ListOffsetsResponse r = SLUICE__LIST_OFFSETS_RESPONSE__INIT;
    r.log_start_offset = partition_log_start(p);
    r.log_end_offset = partition_log_end(p);
    if (m->timestamp == -1)
        r.offset = r.log_end_offset;
    else if (m->timestamp == -2)
        r.offset = r.log_start_offset;
    else if (m->timestamp < 0)
        rc = sl_err_set(&err, SL_ERR_INVALID_REQUEST, "timestamp %" PRId64 " is not -1, -2 or >= 0",
                        m->timestamp);
    else
        rc = partition_offset_for_time(p, m->timestamp, &r.offset, &err);
    partition_unref(p);
    if (rc != SL_OK)
        dispatch_reply(c, req, rc, err.msg, NULL);
    else
        dispatch_reply(c, req, SL_OK, NULL, &r.base);
}

void dispatch_frame(conn_t *c, uint8_t *frame, uint32_t total)
{
    uint64_t t0 = now_us();
    sl_arena_reset(c->arena);
    sl_request_t req;
    sl_err_t err;
    if (sl_request_decode(frame, total, c->arena, &req, &err) != SL_OK) {
        slot_t *s = conn_slot(c);
        if (!s)
            conn_close(c, "out of memory");
        else
            conn_fail(c, s, 0, 0, SL_ERR_INVALID_REQUEST, err.msg);
        return;
    }
    switch (req.hdr->api) {
    case SLUICE__API_KEY__HELLO:
        h_hello(c, &req);
        break;
    case SLUICE__API_KEY__METADATA:
        h_metadata(c, &req);
        break;
    case SLUICE__API_KEY__CREATE_TOPIC:
        h_create_topic(c, &req);
        break;
    case SLUICE__API_KEY__DELETE_TOPIC:
        h_delete_topic(c, &req);
        break;
    case SLUICE__API_KEY__PRODUCE:
        h_produce(c, &req, t0);
        break;
    case SLUICE__API_KEY__FETCH:
        h_fetch(c, &req, t0);
        break;
    case SLUICE__API_KEY__LIST_OFFSETS:
        h_list_offsets(c, &req);
        break;
    case SLUICE__API_KEY__JOIN_GROUP:
    case SLUICE__API_KEY__SYNC_GROUP:
    case SLUICE__API_KEY__HEARTBEAT:
    case SLUICE__API_KEY__LEAVE_GROUP:
    case SLUICE__API_KEY__OFFSET_COMMIT:
    case SLUICE__API_KEY__OFFSET_FETCH:
    case SLUICE__API_KEY__LIST_GROUPS:
    case SLUICE__API_KEY__DESCRIBE_GROUP:
        h_groups(c, &req);
        break;
    case SLUICE__API_KEY__SUBSCRIBE:
    case SLUICE__API_KEY__CREDIT:
    case SLUICE__API_KEY__UNSUBSCRIBE:
        h_subscribe(c, &req);
        break;
    default: {
        char msg[64];
        snprintf(msg, sizeof msg, "unknown request type %d", (int)req.hdr->api);
        dispatch_reply(c, &req, SL_ERR_INVALID_REQUEST, msg, NULL);
    }
    }
}
