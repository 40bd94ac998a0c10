/* k_groups.c — Kafka's consumer-group requests on the shared coordinator
 * (group.c, client-assignment mode) and committed offsets (offsets.c):
 * JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch,
 * DescribeGroups, ListGroups.
 *
 * Kafka clients assign partitions themselves: the coordinator hands the
 * leader every member's protocol metadata in its JoinGroup answer, stores
 * the assignments of the leader's SyncGroup and gives each member its own.
 * A group is joined either by Sluice clients or by Kafka clients, never
 * both at once (INCONSISTENT_GROUP_PROTOCOL); committed offsets are shared,
 * so a group can move from one protocol to the other.
 *
 * Parked JoinGroup/SyncGroup answers and commits waiting for fdatasync are
 * completed on the connection's worker (reactor_post), holding a
 * connection reference; a connection closed meanwhile drops the answer.
 * Static membership (group.instance.id) is not supported: such members are
 * treated as dynamic ones.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "dispatch.h"
#include "group.h"
#include "kdispatch.h"
#include "log.h"
#include "offsets.h"

static int valid_group(const char *id)
{
    return id && *id && strlen(id) <= GRP_MAX_ID;
}

/* ---- asynchronous answers ------------------------------------------------------ */

typedef struct kmember {
    char *id;
    uint8_t *meta;
    size_t len;
} kmember_t;

typedef struct kgwait {
    reactor_task_t task; /* the completion, posted once (post) */
    conn_t *c;
    slot_t *s;
    int32_t corr;
    int ver;
    int api;
    int code;
    /* JoinGroup */
    int32_t generation;
    char *member_id, *leader, *protocol;
    kmember_t *members;
    size_t nmembers;
    /* SyncGroup */
    uint8_t *assignment;
    size_t alen;
    /* OffsetCommit: the response, written when the commit is durable */
    kf_writer_t w;
    size_t *code_pos; /* where each partition's error code goes */
    int *pcode;       /* each partition's own verdict */
    size_t npos;
    int flush_pending;
} kgwait_t;

static kgwait_t *kgwait_new(conn_t *c, slot_t *s, const kf_request_t *r)
{
    kgwait_t *g = calloc(1, sizeof *g);
    if (!g) {
        conn_close(c, "out of memory");
        return NULL;
    }
    g->c = c;
    g->s = s;
    g->corr = r->h.correlation_id;
    g->ver = r->h.api_version;
    g->api = r->h.api_key;
    conn_ref(c);
    return g;
}

static void kgwait_free(kgwait_t *g)
{
    free(g->member_id);
    free(g->leader);
    free(g->protocol);
    for (size_t i = 0; i < g->nmembers; i++) {
        free(g->members[i].id);
        free(g->members[i].meta);
    }
    free(g->members);
    free(g->assignment);
    kw_free(&g->w);
    free(g->code_pos);
    free(g->pcode);
    conn_unref(g->c);
    free(g);
}

/* On the flusher's or the coordinator's thread: completes on the
 * connection's worker through the node embedded in g, which cannot fail
 * (a dropped completion would leave the response slot empty and stall
 * every later response of the connection). Each wait is posted once. */
static void post(kgwait_t *g, reactor_task_fn fn)
{
    reactor_task_init(&g->task, fn, g);
    reactor_post_task(g->c->w->r, &g->task);
}

static char *dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

static void join_task(void *arg)
{
    kgwait_t *g = arg;
    kf_writer_t w;
    kw_init(&w, g->corr);
    if (g->ver >= 2) kw_i32(&w, 0);
    kw_i16(&w, kafka_code(g->code));
    kw_i32(&w, g->code == SL_OK ? g->generation : -1);
    kw_str(&w, g->code == SL_OK && g->protocol ? g->protocol : "");
    kw_str(&w, g->code == SL_OK && g->leader ? g->leader : "");
    kw_str(&w, g->member_id ? g->member_id : "");
    /* Only the leader learns the members and their subscriptions. */
    int leader = g->code == SL_OK && g->leader && g->member_id && !strcmp(g->leader, g->member_id);
    kw_i32(&w, leader ? (int32_t)g->nmembers : 0);
    for (size_t i = 0; leader && i < g->nmembers; i++) {
        kw_str(&w, g->members[i].id);
        if (g->ver >= 5) kw_str(&w, NULL);
        kw_bytes(&w, g->members[i].meta, (int32_t)g->members[i].len);
    }
    kafka_send(g->c, g->s, &w, KF_JOIN_GROUP, g->code);
    kgwait_free(g);
}

/* Any thread: copy what the coordinator reports, answer on the worker. */
static void join_done(void *arg, const grp_join_result_t *res)
{
    kgwait_t *g = arg;
    g->code = res->code;
    g->generation = res->generation;
    g->member_id = dup_or_empty(res->member_id);
    g->leader = dup_or_empty(res->leader_id);
    g->protocol = dup_or_empty(res->protocol);
    int ok = g->member_id && g->leader && g->protocol;
    if (ok && res->nmembers && (g->members = calloc(res->nmembers, sizeof *g->members))) {
        for (size_t i = 0; i < res->nmembers; i++) {
            kmember_t *m = &g->members[i];
            m->id = strdup(res->members[i].member_id);
            m->len = res->members[i].meta_len;
            m->meta = malloc(m->len + 1);
            g->nmembers = i + 1;
            if (!m->id || !m->meta) {
                ok = 0;
                break;
            }
            memcpy(m->meta, res->members[i].meta, m->len);
        }
    } else if (res->nmembers) {
        ok = 0;
    }
    if (!ok && g->code == SL_OK) g->code = SL_ERR_NOMEM;
    post(g, join_task);
}

void k_join_group(conn_t *c, slot_t *s, kf_request_t *r, uint64_t t0_us)
{
    (void)t0_us;
    kf_join_group_req_t *m = &r->u.join_group;
    kgwait_t *g = kgwait_new(c, s, r);
    if (!g) return;
    if (!valid_group(m->group_id)) {
        g->code = SL_ERR_INVALID_GROUP_ID;
        g->member_id = dup_or_empty(m->member_id);
        join_task(g);
        return;
    }
    grp_protocol_t *protos = calloc((size_t)m->nprotocols + 1, sizeof *protos);
    if (!protos) {
        g->code = SL_ERR_NOMEM;
        join_task(g);
        return;
    }
    for (int32_t i = 0; i < m->nprotocols; i++)
        protos[i] = (grp_protocol_t){.name = m->protocols[i].name,
                                     .meta = m->protocols[i].metadata,
                                     .meta_len = (size_t)m->protocols[i].metadata_len};
    grp_join_req_t jr = {.group_id = m->group_id,
                         .member_id = m->member_id,
                         .client_id = r->h.client_id ? r->h.client_id : "",
                         .host = c->peer,
                         .session_ms = m->session_timeout_ms,
                         .rebalance_ms = m->rebalance_timeout_ms,
                         .protocol_type = m->protocol_type,
                         .mode = GRP_MODE_CLIENT,
                         .protocols = protos,
                         .nprotocols = (size_t)m->nprotocols};
    grp_join(c->w->b->groups, &jr, sl_mono_ms(), join_done, g);
    free(protos);
}

static void sync_task(void *arg)
{
    kgwait_t *g = arg;
    kf_writer_t w;
    kw_init(&w, g->corr);
    if (g->ver >= 1) kw_i32(&w, 0);
    kw_i16(&w, kafka_code(g->code));
    kw_bytes(&w, g->assignment ? g->assignment : (const uint8_t *)"",
             g->code == SL_OK ? (int32_t)g->alen : 0);
    kafka_send(g->c, g->s, &w, KF_SYNC_GROUP, g->code);
    kgwait_free(g);
}

static void sync_done(void *arg, const grp_sync_result_t *res)
{
    kgwait_t *g = arg;
    g->code = res->code;
    if (res->len && (g->assignment = malloc(res->len))) {
        memcpy(g->assignment, res->assignment, res->len);
        g->alen = res->len;
    } else if (res->len && g->code == SL_OK) {
        g->code = SL_ERR_NOMEM;
    }
    post(g, sync_task);
}

void k_sync_group(conn_t *c, slot_t *s, kf_request_t *r, uint64_t t0_us)
{
    (void)t0_us;
    kf_sync_group_req_t *m = &r->u.sync_group;
    kgwait_t *g = kgwait_new(c, s, r);
    if (!g) return;
    if (!valid_group(m->group_id)) {
        g->code = SL_ERR_INVALID_GROUP_ID;
        sync_task(g);
        return;
    }
    grp_member_assignment_t *as = calloc((size_t)m->nassignments + 1, sizeof *as);
    if (!as) {
        g->code = SL_ERR_NOMEM;
        sync_task(g);
        return;
    }
    for (int32_t i = 0; i < m->nassignments; i++)
        as[i] = (grp_member_assignment_t){.member_id = m->assignments[i].member_id,
                                          .bytes = m->assignments[i].assignment,
                                          .len = (size_t)m->assignments[i].assignment_len};
    grp_sync(c->w->b->groups, m->group_id, m->generation_id, m->member_id, as,
             (size_t)m->nassignments, sl_mono_ms(), sync_done, g);
    free(as);
}

void k_heartbeat(conn_t *c, slot_t *s, kf_request_t *r, uint64_t t0_us)
{
    (void)t0_us;
    kf_heartbeat_req_t *m = &r->u.heartbeat;
    int rc = valid_group(m->group_id) ? grp_heartbeat(c->w->b->groups, m->group_id,
                                                      m->generation_id, m->member_id, sl_mono_ms())
                                      : SL_ERR_INVALID_GROUP_ID;
    kf_writer_t w;
    kw_init(&w, r->h.correlation_id);
    if (r->h.api_version >= 1) kw_i32(&w, 0);
    kw_i16(&w, kafka_code(rc));
    kafka_send(c, s, &w, KF_HEARTBEAT, rc == SL_ERR_REBALANCE_IN_PROGRESS ? SL_OK : rc);
}

void k_leave_group(conn_t *c, slot_t *s, kf_request_t *r, uint64_t t0_us)
{
    (void)t0_us;
    kf_leave_group_req_t *m = &r->u.leave_group;
    int rc = valid_group(m->group_id)
                 ? grp_leave(c->w->b->groups, m->group_id, m->member_id, sl_mono_ms())
                 : SL_ERR_INVALID_GROUP_ID;
    /* librdkafka 2.0.2 reads LeaveGroup v1's error where throttle_time_ms
     * is (kafka-protocol.md §3.9): throttle 0 reads as "no error". */
    kf_writer_t w;
    kw_init(&w, r->h.correlation_id);
    if (r->h.api_version >= 1) kw_i32(&w, 0);
    kw_i16(&w, kafka_code(rc));
    kafka_send(c, s, &w, KF_LEAVE_GROUP, rc);
}

/* ---- OffsetCommit ------------------------------------------------------------------ */

static void commit_task(void *arg)
{
    kgwait_t *g = arg;
    if (g->flush_pending) g->c->w->pending_flushes--;
    int any = SL_OK;
    for (size_t i = 0; i < g->npos; i++) {
        int code = g->pcode[i] != SL_OK ? g->pcode[i] : g->code;
        if (code != SL_OK) any = code;
        int16_t v = kafka_code(code);
        if (g->w.buf) {
            g->w.buf[g->code_pos[i]] = (uint8_t)((uint16_t)v >> 8);
            g->w.buf[g->code_pos[i] + 1] = (uint8_t)v;
        }
    }
    kafka_send(g->c, g->s, &g->w, KF_OFFSET_COMMIT, any);
    kgwait_free(g);
}

static void committed(void *arg, int code)
{
    kgwait_t *g = arg;
    g->code = code;
    post(g, commit_task);
}

void k_offset_commit(conn_t *c, slot_t *s, kf_request_t *r, uint64_t t0_us)
{
    (void)t0_us;
    broker_t *b = c->w->b;
    kf_offset_commit_req_t *m = &r->u.offset_commit;
    kgwait_t *g = kgwait_new(c, s, r);
    if (!g) return;
    size_t n = 0;
    for (int32_t i = 0; i < m->ntopics; i++) n += (size_t)m->topics[i].nparts;
    g->code_pos = calloc(n + 1, sizeof *g->code_pos);
    g->pcode = calloc(n + 1, sizeof *g->pcode);
    offsets_entry_t *e = calloc(n + 1, sizeof *e);
    if (!g->code_pos || !g->pcode || !e) {
        free(e);
        kgwait_free(g);
        conn_close(c, "out of memory");
        return;
    }
    int group_rc = !valid_group(m->group_id) ? SL_ERR_INVALID_GROUP_ID
                   : n > OFFSETS_MAX_ENTRIES
                       ? SL_ERR_INVALID_REQUEST
                       : grp_commit_check(b->groups, m->group_id, m->generation_id, m->member_id,
                                          sl_mono_ms());
    /* The response is written now with a placeholder per partition; the
     * codes are filled in once the commit is durable (or failed). */
    kw_init(&g->w, r->h.correlation_id);
    if (r->h.api_version >= 3) kw_i32(&g->w, 0);
    kw_i32(&g->w, m->ntopics);
    size_t ne = 0;
    for (int32_t i = 0; i < m->ntopics; i++) {
        kf_commit_topic_t *t = &m->topics[i];
        kw_str(&g->w, t->name);
        kw_i32(&g->w, t->nparts);
        int32_t np = 0;
        int topic_rc = store_validate_topic_name(t->name, NULL) != SL_OK ? SL_ERR_INVALID_TOPIC
                       : store_topic_info(b->store, t->name, &np, NULL, NULL, NULL) != SL_OK
                           ? SL_ERR_UNKNOWN_TOPIC_OR_PARTITION
                           : SL_OK;
        for (int32_t j = 0; j < t->nparts; j++) {
            kf_commit_part_t *cp = &t->parts[j];
            int code = group_rc != SL_OK ? group_rc : topic_rc;
            if (code == SL_OK && (cp->index < 0 || cp->index >= np))
                code = SL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
            else if (code == SL_OK)
                code = offsets_commit_check(cp->offset, cp->metadata);
            kw_i32(&g->w, cp->index);
            g->code_pos[g->npos] = g->w.len;
            g->pcode[g->npos++] = code;
            kw_i16(&g->w, 0);
            if (code == SL_OK)
                e[ne++] = (offsets_entry_t){t->name, cp->index, cp->offset, cp->metadata};
        }
    }
    if (g->w.oom) {
        free(e);
        kgwait_free(g);
        conn_close(c, "out of memory");
        return;
    }
    if (ne == 0) { /* nothing to write: every partition carries its error */
        free(e);
        commit_task(g);
        return;
    }
    g->flush_pending = 1;
    c->w->pending_flushes++; /* shutdown waits for the fdatasync, as for acks=all */
    sl_err_t err;
    int rc = offsets_commit(b->offsets, m->group_id, e, ne, sl_wall_ms(), committed, g, &err);
    free(e);
    if (rc != SL_OK) {
        log_warn("kafka", "OffsetCommit for group %s: %s", m->group_id, err.msg);
        g->code = rc;
        commit_task(g);
    }
}

/* ---- OffsetFetch --------------------------------------------------------------------- */

static void offset_entry(kf_writer_t *w, int ver, int32_t part, int64_t off, const char *md)
{
    kw_i32(w, part);
    kw_i64(w, off);
    if (ver >= 5) kw_i32(w, -1); /* committed_leader_epoch: not tracked */
    kw_str(w, md ? md : "");
    kw_i16(w, 0);
}

void k_offset_fetch(conn_t *c, slot_t *s, kf_request_t *r, uint64_t t0_us)
{
    (void)t0_us;
    broker_t *b = c->w->b;
    kf_offset_fetch_req_t *m = &r->u.offset_fetch;
    int ver = r->h.api_version;
    int rc = valid_group(m->group_id) ? SL_OK : SL_ERR_INVALID_GROUP_ID;
    kf_writer_t w;
    kw_init(&w, r->h.correlation_id);
    if (ver >= 3) kw_i32(&w, 0);
    if (rc == SL_OK && m->all_topics) {
        offsets_item_t *items = NULL;
        size_t n = 0;
        if (offsets_list(b->offsets, m->group_id, &items, &n) != SL_OK) {
            offsets_items_free(items, n);
            kw_free(&w);
            conn_close(c, "out of memory");
            return;
        }
        /* items are sorted by topic: one entry per run of a topic. */
        size_t ntopics = 0;
        for (size_t i = 0; i < n; i++)
            if (i == 0 || strcmp(items[i].topic, items[i - 1].topic)) ntopics++;
        kw_i32(&w, (int32_t)ntopics);
        for (size_t i = 0; i < n;) {
            size_t j = i;
            while (j < n && !strcmp(items[j].topic, items[i].topic)) j++;
            kw_str(&w, items[i].topic);
            kw_i32(&w, (int32_t)(j - i));
            for (size_t k = i; k < j; k++)
                offset_entry(&w, ver, items[k].partition, items[k].offset, items[k].metadata);
            i = j;
        }
        offsets_items_free(items, n);
    } else if (rc == SL_OK) {
        kw_i32(&w, m->ntopics);
        for (int32_t i = 0; i < m->ntopics; i++) {
            kf_offset_fetch_topic_t *t = &m->topics[i];
            kw_str(&w, t->name);
            kw_i32(&w, t->nparts);
            for (int32_t j = 0; j < t->nparts; j++) {
                int64_t off = -1;
                char *md = NULL;
                if (offsets_get(b->offsets, m->group_id, t->name, t->parts[j], &off, &md) != SL_OK)
                    off = -1; /* no commit: the client applies auto.offset.reset */
                offset_entry(&w, ver, t->parts[j], off, md);
                free(md);
            }
        }
    } else {
        kw_i32(&w, 0);
    }
    if (ver >= 2) kw_i16(&w, kafka_code(rc));
    kafka_send(c, s, &w, KF_OFFSET_FETCH, rc);
}

/* ---- DescribeGroups / ListGroups -------------------------------------------------------- */

static void describe_one(conn_t *c, kf_writer_t *w, int ver, const char *id)
{
    broker_t *b = c->w->b;
    grp_desc_t d;
    memset(&d, 0, sizeof d);
    int rc = valid_group(id) ? grp_describe(b->groups, id, &d) : SL_ERR_INVALID_GROUP_ID;
    const char *state = "Dead";
    if (rc == SL_OK) {
        state = grp_state_name(d.state);
    } else if (rc == SL_ERR_GROUP_ID_NOT_FOUND) {
        /* Kafka (v0..v4): an unknown group is Dead, without an error; one
         * that only has committed offsets is Empty. */
        offsets_item_t *items = NULL;
        size_t n = 0;
        if (offsets_list(b->offsets, id, &items, &n) == SL_OK && n) state = "Empty";
        offsets_items_free(items, n);
        rc = SL_OK;
        d.nmembers = 0;
    }
    kw_i16(w, kafka_code(rc));
    kw_str(w, id);
    kw_str(w, state);
    kw_str(w, d.protocol_type);
    kw_str(w, d.protocol);
    kw_i32(w, (int32_t)d.nmembers);
    for (size_t i = 0; i < d.nmembers; i++) {
        grp_member_desc_t *mb = &d.members[i];
        kw_str(w, mb->member_id);
        if (ver >= 4) kw_str(w, NULL);
        kw_str(w, mb->client_id);
        kw_str(w, mb->host);
        kw_bytes(w, (const uint8_t *)"", 0); /* member metadata: not kept per member */
        kw_bytes(w, mb->assignment ? mb->assignment : (const uint8_t *)"",
                 (int32_t)mb->assignment_len);
    }
    if (ver >= 3) kw_i32(w, INT32_MIN); /* authorized_operations: not requested */
    grp_desc_free(&d);
}

void k_describe_groups(conn_t *c, slot_t *s, kf_request_t *r, uint64_t t0_us)
{
    (void)t0_us;
    kf_describe_groups_req_t *m = &r->u.describe_groups;
    kf_writer_t w;
    kw_init(&w, r->h.correlation_id);
    if (r->h.api_version >= 1) kw_i32(&w, 0);
    kw_i32(&w, m->ngroups);
    for (int32_t i = 0; i < m->ngroups; i++) describe_one(c, &w, r->h.api_version, m->groups[i]);
    kafka_send(c, s, &w, KF_DESCRIBE_GROUPS, SL_OK);
}

void k_list_groups(conn_t *c, slot_t *s, kf_request_t *r, uint64_t t0_us)
{
    (void)t0_us;
    broker_t *b = c->w->b;
    grp_summary_t *gs = NULL;
    size_t ng = 0, no = 0;
    char **on = NULL;
    if (grp_list(b->groups, &gs, &ng) != SL_OK || offsets_groups(b->offsets, &on, &no) != SL_OK) {
        free(gs);
        store_names_free(on, no);
        conn_close(c, "out of memory");
        return;
    }
    /* Both lists are sorted: merge, so a group with only committed offsets
     * is listed too (as in Kafka). */
    kf_writer_t w;
    kw_init(&w, r->h.correlation_id);
    if (r->h.api_version >= 1) kw_i32(&w, 0);
    kw_i16(&w, 0);
    size_t pos = kw_reserve_i32(&w);
    int32_t k = 0;
    for (size_t i = 0, j = 0; i < ng || j < no; k++) {
        int cmp = i == ng ? 1 : j == no ? -1 : strcmp(gs[i].group_id, on[j]);
        if (cmp <= 0) {
            kw_str(&w, gs[i++].group_id);
            kw_str(&w, "consumer");
            if (cmp == 0) j++;
        } else {
            kw_str(&w, on[j++]);
            kw_str(&w, "consumer");
        }
    }
    kw_patch_i32(&w, pos, k);
    free(gs);
    store_names_free(on, no);
    kafka_send(c, s, &w, KF_LIST_GROUPS, SL_OK);
}
