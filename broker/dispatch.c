#include "dispatch.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "batch.h"
#include "clock.h"
#include "subscribe.h"
#include "svc_topics.h"

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
        int rc = topics_describe(b, name, 1, &np, &e2);
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
    char who[96];
    snprintf(who, sizeof who, "#%" PRIu64 " %s", c->id, c->peer);
    int64_t np = m->partitions ? m->partitions : TOPICS_DEFAULT_PARTITIONS;
    int rc = topics_create(c->w->b, m->name, np, -1, keys, vals, m->n_configs, 0, who, &err);
    if (np == TOPICS_DEFAULT_PARTITIONS) np = c->w->b->conf.num_partitions;
    if (rc != SL_OK) {
        dispatch_reply(c, req, rc, err.msg, NULL);
        return;
    }
    Sluice__CreateTopicResponse r = SLUICE__CREATE_TOPIC_RESPONSE__INIT;
    r.partitions = (int32_t)np;
    dispatch_reply(c, req, SL_OK, NULL, &r.base);
}

static void h_delete_topic(conn_t *c, const sl_request_t *req)
{
    DISPATCH_DECODE(Sluice__DeleteTopicRequest, m, sluice__delete_topic_request__descriptor);
    char who[96];
    snprintf(who, sizeof who, "#%" PRIu64 " %s", c->id, c->peer);
    int rc = topics_delete(c->w->b, m->name, who, &err);
    if (rc != SL_OK) {
        dispatch_reply(c, req, rc, err.msg, NULL);
        return;
    }
    Sluice__DeleteTopicResponse r = SLUICE__DELETE_TOPIC_RESPONSE__INIT;
    dispatch_reply(c, req, SL_OK, NULL, &r.base);
}

static void h_list_offsets(conn_t *c, const sl_request_t *req)
{
    DISPATCH_DECODE(Sluice__ListOffsetsRequest, m, sluice__list_offsets_request__descriptor);
    partition_t *p;
    int rc = topics_partition(c->w->b, m->topic, (int32_t)m->partition, 0, &p, &err);
    if (rc != SL_OK) {
        dispatch_reply(c, req, rc, err.msg, NULL);
        return;
    }
    Sluice__ListOffsetsResponse r = SLUICE__LIST_OFFSETS_RESPONSE__INIT;
    r.log_start_offset = partition_log_start(p);
    r.log_end_offset = partition_log_end(p);
    rc = topics_offset_for(p, m->timestamp, &r.offset, &err);
    partition_unref(p);
    if (rc != SL_OK)
        dispatch_reply(c, req, rc, err.msg, NULL);
    else
        dispatch_reply(c, req, SL_OK, NULL, &r.base);
}

/* One whole frame (mutable: produce assigns offsets in place). */
static void dispatch_frame(conn_t *c, uint8_t *frame, uint32_t total)
{
    uint64_t t0 = sl_mono_us();
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

/* ---- the listener registry's row (protocol.h) ---- */

/* u32 size | body; the size counts the body. */
static int frame_peek(conn_t *c, const uint8_t *buf, size_t len, uint32_t max, uint32_t *total)
{
    (void)c;
    int rc = sl_frame_peek(buf, len, max, total);
    if (rc != SL_OK && rc != SL_ERR_PARTIAL) *total = len >= 4 ? sl_be32(buf) : 0;
    return rc;
}

static int broker_owes(const conn_t *c)
{
    const sluice_conn_t *st = c->pstate;
    return st && st->subs; /* a subscriber waiting for data is not idle */
}

const protocol_t protocol_sluice = {
    .name = "sluice",
    .conf_offset = offsetof(broker_conf_t, listeners),
    .frame_peek = frame_peek,
    .dispatch = dispatch_frame,
    .on_drained = subscribe_output_drained,
    .on_close = subscribe_conn_closed,
    .broker_owes = broker_owes,
};
