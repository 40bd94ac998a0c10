/* kdispatch.c — one Kafka frame in: decode, route to its handler, or answer
 * what cannot be served (see kdispatch.h). */
#include "kdispatch.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "batch.h"
#include "clock.h"
#include "dispatch.h"
#include "log.h"

static k_handler_fn handler(int api)
{
    switch (api) {
    case KF_PRODUCE:
        return k_produce;
    case KF_FETCH:
        return k_fetch;
    case KF_LIST_OFFSETS:
        return k_list_offsets;
    case KF_METADATA:
        return k_metadata;
    case KF_OFFSET_COMMIT:
        return k_offset_commit;
    case KF_OFFSET_FETCH:
        return k_offset_fetch;
    case KF_FIND_COORDINATOR:
        return k_find_coordinator;
    case KF_JOIN_GROUP:
        return k_join_group;
    case KF_HEARTBEAT:
        return k_heartbeat;
    case KF_LEAVE_GROUP:
        return k_leave_group;
    case KF_SYNC_GROUP:
        return k_sync_group;
    case KF_DESCRIBE_GROUPS:
        return k_describe_groups;
    case KF_LIST_GROUPS:
        return k_list_groups;
    case KF_API_VERSIONS:
        return k_api_versions;
    case KF_CREATE_TOPICS:
        return k_create_topics;
    case KF_DELETE_TOPICS:
        return k_delete_topics;
    case KF_INIT_PRODUCER_ID:
        return k_init_producer_id;
    }
    return NULL;
}

int16_t kafka_code(int code)
{
    return code < 0 ? -1 : (int16_t)code;
}

void kafka_count(conn_t *c, int api, int code)
{
    /* Keys that are not served share one "Unknown" slot, whatever the key:
     * one series, not one per key. */
    metrics_worker_t *m = &c->w->m;
    int slot = api >= 0 && api < MET_KAFKA_APIS && kf_api_max(api) >= 0 ? api : MET_KAFKA_APIS;
    met_add(&m->kafka_requests[slot], 1);
    if (code != SL_OK) met_add(&m->kafka_errors[slot], 1);
}

void kafka_send(conn_t *c, slot_t *s, kf_writer_t *w, int api, int code)
{
    kafka_count(c, api, code);
    if (kw_finish(w, 0) < 0) {
        conn_close(c, "out of memory building a response");
        return;
    }
    conn_respond_raw(c, s, w->buf, w->len, NULL, NULL, 0);
    w->buf = NULL;
}

/* The minimal answer to a request that cannot be answered in its own
 * layout: correlation id and an int16 error; the connection closes once it
 * is written. */
static void answer_and_close(conn_t *c, int32_t corr, int api, int code, const char *why)
{
    log_info("kafka", "#%" PRIu64 " %s: %s (closing)", c->id, c->peer, why);
    met_add(&c->w->m.protocol_errors, 1);
    kafka_count(c, api, code);
    slot_t *s = conn_slot(c);
    if (!s) {
        conn_close(c, "out of memory");
        return;
    }
    kf_writer_t w;
    kw_init(&w, corr);
    kw_i16(&w, kafka_code(code));
    c->close_after_write = 1;
    if (kw_finish(&w, 0) < 0) {
        conn_close(c, "out of memory building a response");
        return;
    }
    conn_respond_raw(c, s, w.buf, w.len, NULL, NULL, 0);
}

/* ApiVersions above v2: Kafka's answer in v0 form (KIP-511), so a newer
 * client learns our range and retries on the same connection. */
static void api_versions_too_new(conn_t *c, int32_t corr)
{
    slot_t *s = conn_slot(c);
    if (!s) {
        conn_close(c, "out of memory");
        return;
    }
    kf_writer_t w;
    kw_init(&w, corr);
    kw_i16(&w, SL_ERR_UNSUPPORTED_VERSION);
    kw_i32(&w, 1);
    kw_i16(&w, KF_API_VERSIONS);
    kw_i16(&w, 0);
    kw_i16(&w, (int16_t)kf_api_max(KF_API_VERSIONS));
    kafka_send(c, s, &w, KF_API_VERSIONS, SL_ERR_UNSUPPORTED_VERSION);
}

/* One whole frame (mutable: Produce assigns offsets in place). */
static void kafka_dispatch(conn_t *c, uint8_t *frame, uint32_t total)
{
    uint64_t t0 = sl_mono_us();
    sl_arena_reset(c->arena);
    kf_request_t r;
    sl_err_t err;
    err.msg[0] = 0;
    int rc = kf_request_decode(frame, total, c->arena, &r, &err);
    int api = r.h.api_key, ver = r.h.api_version;
    if (rc == SL_ERR_UNSUPPORTED_VERSION) {
        if (api == KF_API_VERSIONS && ver > kf_api_max(KF_API_VERSIONS)) {
            api_versions_too_new(c, r.h.correlation_id);
            return;
        }
        char why[160];
        if (kf_api_max(api) < 0)
            snprintf(why, sizeof why, "unsupported API key %d", api);
        else
            snprintf(why, sizeof why, "%s v%d is not supported (0..%d)", kf_api_name(api), ver,
                     kf_api_max(api));
        answer_and_close(c, r.h.correlation_id, api, rc, why);
        return;
    }
    if (rc != SL_OK) {
        char why[320];
        snprintf(why, sizeof why, "%s v%d: %s: %s", kf_api_name(api), ver, sl_code_name(rc),
                 err.msg);
        answer_and_close(c, r.h.correlation_id, api,
                         rc == SL_ERR_NOMEM ? SL_ERR_INVALID_REQUEST : rc, why);
        return;
    }
    k_handler_fn fn = handler(api);
    slot_t *s = NULL;
    if (api != KF_PRODUCE && !(s = conn_slot(c))) {
        conn_close(c, "out of memory");
        return;
    }
    fn(c, s, &r, t0);
}

/* ---- the listener registry's row (protocol.h) ---- */

/* u32 size | request; the size counts the request. */
static int frame_peek(conn_t *c, const uint8_t *buf, size_t len, uint32_t max, uint32_t *total)
{
    (void)c;
    int rc = kf_frame_peek(buf, len, max, total);
    if (rc != SL_OK && rc != SL_ERR_PARTIAL) *total = len >= 4 ? sl_be32(buf) : 0;
    return rc;
}

/* What Metadata and FindCoordinator will tell clients; then the line test
 * harnesses wait for, before "listening on". */
static void on_bound(broker_t *b, const char *host, int port)
{
    kafka_advertise(b, host, port);
    log_info("net", "kafka protocol on %s:%d (advertised as %s:%d, node.id %lld)", host, port,
             b->kafka_adv_host, b->kafka_adv_port, (long long)b->conf.node_id);
}

const protocol_t protocol_kafka = {
    .name = "kafka",
    .conf_offset = offsetof(broker_conf_t, kafka_listeners),
    .frame_peek = frame_peek,
    .dispatch = kafka_dispatch,
    .on_bound = on_bound,
};
