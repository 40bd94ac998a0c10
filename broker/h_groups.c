/* h_groups.c — Sluice's group requests (JoinGroup .. DescribeGroup) over the
 * coordinator (group.c) and the committed-offset store (offsets.c), plus the
 * broker glue that creates, ticks and frees them.
 *
 * Sluice clients use broker-side assignment: a JoinGroup's topics become a
 * Kafka Subscription under the protocol named by `assignor`, and SyncGroup
 * returns the Assignment the coordinator computed, as TopicPartitions.
 *
 * Asynchronous answers (a parked JoinGroup or SyncGroup, a commit waiting
 * for fdatasync) hold a connection reference and are completed on the
 * connection's worker through a task node embedded in the wait
 * (reactor_post_task), as the produce service does for acks=all; a connection closed meanwhile just
 * drops the answer. Requests run on worker threads; nothing here blocks on the disk.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "dispatch.h"
#include "group.h"
#include "log.h"
#include "offsets.h"

static int valid_group(conn_t *c, const sl_request_t *req, const char *id)
{
    if (id && *id && strlen(id) <= GRP_MAX_ID) return 1;
    dispatch_reply(c, req, SL_ERR_INVALID_GROUP_ID, "group id must be 1..255 bytes", NULL);
    return 0;
}

/* Log end offset of a partition, -1 when it does not exist. */
static int64_t leo(broker_t *b, const char *topic, int32_t part)
{
    partition_t *p;
    if (store_validate_topic_name(topic, NULL) != SL_OK ||
        store_partition(b->store, topic, part, &p, NULL) != SL_OK)
        return -1;
    int64_t o = partition_log_end(p);
    partition_unref(p);
    return o;
}

/* ---- asynchronous answers --------------------------------------------------------- */

typedef struct gwait {
    reactor_task_t task; /* the completion, posted once (post) */
    conn_t *c;
    slot_t *slot;
    uint64_t corr;
    int api;
    int code;
    char msg[160];
    /* JoinGroup */
    int32_t generation;
    char *member_id, *leader;
    char **members;
    size_t nmembers;
    /* SyncGroup */
    uint8_t *assignment;
    size_t alen;
    /* OffsetCommit */
    Sluice__PartitionOffset *po;
    Sluice__PartitionOffset **pop;
    size_t npo;
    int flush_pending;
} gwait_t;

static gwait_t *gwait_new(conn_t *c, const sl_request_t *req)
{
    gwait_t *gw = calloc(1, sizeof *gw);
    slot_t *s = gw ? conn_slot(c) : NULL;
    if (!s) {
        free(gw);
        conn_close(c, "out of memory");
        return NULL;
    }
    gw->c = c;
    gw->slot = s;
    gw->corr = req->hdr->correlation_id;
    gw->api = req->hdr->api;
    conn_ref(c);
    return gw;
}

static void gwait_free(gwait_t *gw)
{
    free(gw->member_id);
    free(gw->leader);
    for (size_t i = 0; i < gw->nmembers; i++) free(gw->members[i]);
    free(gw->members);
    free(gw->assignment);
    for (size_t i = 0; i < gw->npo; i++) {
        free(gw->po[i].topic);
        free(gw->po[i].metadata);
    }
    free(gw->po);
    free(gw->pop);
    free(gw);
}

/* Answers with body (may be NULL) on the connection's worker, then frees. */
static void gwait_finish(gwait_t *gw, const ProtobufCMessage *body)
{
    conn_t *c = gw->c;
    met_request(&c->w->m, gw->api, gw->code);
    conn_respond(c, gw->slot, gw->api, gw->corr, gw->code, gw->code ? gw->msg : NULL,
                 gw->code ? NULL : body, NULL);
    conn_unref(c);
    gwait_free(gw);
}

/* On the flusher's or the coordinator's thread: completes on the
 * connection's worker through the node embedded in gw, which cannot fail
 * (a dropped completion would leave the response slot empty and stall
 * every later response of the connection). Each wait is posted once. */
static void post(gwait_t *gw, reactor_task_fn fn)
{
    reactor_task_init(&gw->task, fn, gw);
    reactor_post_task(gw->c->w->r, &gw->task);
}

static void join_task(void *arg)
{
    gwait_t *gw = arg;
    Sluice__JoinGroupResponse r = SLUICE__JOIN_GROUP_RESPONSE__INIT;
    r.generation_id = gw->generation;
    r.member_id = gw->member_id ? gw->member_id : (char *)"";
    r.leader_id = gw->leader ? gw->leader : (char *)"";
    r.members = gw->members;
    r.n_members = gw->nmembers;
    gwait_finish(gw, &r.base);
}

/* Any thread: copy what the coordinator reports, answer on the worker. */
static void join_done(void *arg, const grp_join_result_t *res)
{
    gwait_t *gw = arg;
    gw->code = res->code;
    snprintf(gw->msg, sizeof gw->msg, "%s", res->message);
    gw->generation = res->generation;
    gw->member_id = strdup(res->member_id);
    gw->leader = strdup(res->leader_id);
    if (res->nmembers && (gw->members = calloc(res->nmembers, sizeof *gw->members))) {
        for (size_t i = 0; i < res->nmembers; i++)
            if ((gw->members[gw->nmembers] = strdup(res->members[i].member_id))) gw->nmembers++;
    }
    if (!gw->member_id || !gw->leader || gw->nmembers != res->nmembers) {
        gw->code = SL_ERR_NOMEM;
        snprintf(gw->msg, sizeof gw->msg, "out of memory");
    }
    post(gw, join_task);
}

static void sync_task(void *arg)
{
    gwait_t *gw = arg;
    Sluice__SyncGroupResponse r = SLUICE__SYNC_GROUP_RESPONSE__INIT;
    grp_assign_t a;
    int rc = grp_assignment_decode(gw->assignment, gw->alen, &a);
    Sluice__TopicPartitions *tp = calloc(a.ntopics + 1, sizeof *tp);
    Sluice__TopicPartitions **tpp = calloc(a.ntopics + 1, sizeof *tpp);
    if (gw->code == SL_OK && (rc != SL_OK || !tp || !tpp)) {
        gw->code = rc != SL_OK ? SL_ERR_UNKNOWN : SL_ERR_NOMEM;
        snprintf(gw->msg, sizeof gw->msg, "cannot decode the stored assignment");
    }
    for (size_t i = 0; tp && tpp && i < a.ntopics; i++) {
        sluice__topic_partitions__init(&tp[i]);
        tp[i].topic = a.topics[i].topic;
        tp[i].partitions = a.topics[i].parts;
        tp[i].n_partitions = a.topics[i].nparts;
        tpp[i] = &tp[i];
    }
    r.assignment = tpp;
    r.n_assignment = tpp ? a.ntopics : 0;
    gwait_finish(gw, &r.base);
    grp_assign_free(&a);
    free(tp);
    free(tpp);
}

static void sync_done(void *arg, const grp_sync_result_t *res)
{
    gwait_t *gw = arg;
    gw->code = res->code;
    snprintf(gw->msg, sizeof gw->msg, "%s", res->message);
    if (res->len && (gw->assignment = malloc(res->len))) {
        memcpy(gw->assignment, res->assignment, res->len);
        gw->alen = res->len;
    } else if (res->len) {
        gw->code = SL_ERR_NOMEM;
        snprintf(gw->msg, sizeof gw->msg, "out of memory");
    }
    post(gw, sync_task);
}

/* ---- requests ---------------------------------------------------------------------- */

static void h_join(conn_t *c, const sl_request_t *req)
{
    DISPATCH_DECODE(Sluice__JoinGroupRequest, m, sluice__join_group_request__descriptor);
    broker_t *b = c->w->b;
    if (!valid_group(c, req, m->group_id)) return;
    if (m->n_topics == 0 || m->n_topics > GRP_MAX_TOPICS) {
        char msg[96];
        snprintf(msg, sizeof msg, "%zu topics; subscribe to 1..%d", m->n_topics, GRP_MAX_TOPICS);
        dispatch_reply(c, req, SL_ERR_INVALID_REQUEST, msg, NULL);
        return;
    }
    for (size_t i = 0; i < m->n_topics; i++)
        if (store_validate_topic_name(m->topics[i], &err) != SL_OK) {
            dispatch_reply(c, req, err.code, err.msg, NULL);
            return;
        }
    size_t sublen;
    uint8_t *sub = grp_subscription_encode((const char *const *)m->topics, m->n_topics, &sublen);
    gwait_t *gw = sub ? gwait_new(c, req) : NULL;
    if (!gw) {
        if (!sub) dispatch_reply(c, req, SL_ERR_NOMEM, "out of memory", NULL);
        free(sub);
        return;
    }
    grp_protocol_t proto = {.name = m->assignor && *m->assignor ? m->assignor : "range",
                            .meta = sub,
                            .meta_len = sublen};
    grp_join_req_t jr = {.group_id = m->group_id,
                         .member_id = m->member_id,
                         .client_id = m->client_id,
                         .host = c->peer,
                         .session_ms = m->session_timeout_ms,
                         .rebalance_ms = m->rebalance_timeout_ms,
                         .protocol_type = "consumer",
                         .mode = GRP_MODE_BROKER,
                         .protocols = &proto,
                         .nprotocols = 1};
    grp_join(b->groups, &jr, sl_mono_ms(), join_done, gw);
    free(sub);
}

static void h_sync(conn_t *c, const sl_request_t *req)
{
    DISPATCH_DECODE(Sluice__SyncGroupRequest, m, sluice__sync_group_request__descriptor);
    if (!valid_group(c, req, m->group_id)) return;
    gwait_t *gw = gwait_new(c, req);
    if (gw)
        grp_sync(c->w->b->groups, m->group_id, m->generation_id, m->member_id, NULL, 0,
                 sl_mono_ms(), sync_done, gw);
}

static void h_heartbeat(conn_t *c, const sl_request_t *req)
{
    DISPATCH_DECODE(Sluice__HeartbeatRequest, m, sluice__heartbeat_request__descriptor);
    if (!valid_group(c, req, m->group_id)) return;
    int rc =
        grp_heartbeat(c->w->b->groups, m->group_id, m->generation_id, m->member_id, sl_mono_ms());
    Sluice__HeartbeatResponse r = SLUICE__HEARTBEAT_RESPONSE__INIT;
    dispatch_reply(c, req, rc,
                   rc == SL_ERR_REBALANCE_IN_PROGRESS ? "the group is rebalancing: rejoin"
                   : rc                               ? sl_code_name(rc)
                                                      : NULL,
                   rc ? NULL : &r.base);
}

static void h_leave(conn_t *c, const sl_request_t *req)
{
    DISPATCH_DECODE(Sluice__LeaveGroupRequest, m, sluice__leave_group_request__descriptor);
    if (!valid_group(c, req, m->group_id)) return;
    int rc = grp_leave(c->w->b->groups, m->group_id, m->member_id, sl_mono_ms());
    Sluice__LeaveGroupResponse r = SLUICE__LEAVE_GROUP_RESPONSE__INIT;
    dispatch_reply(c, req, rc, rc ? sl_code_name(rc) : NULL, rc ? NULL : &r.base);
}

static void commit_task(void *arg)
{
    gwait_t *gw = arg;
    if (gw->flush_pending) gw->c->w->pending_flushes--;
    if (gw->code != SL_OK) {
        /* The whole commit failed on the disk: say so per partition too. */
        for (size_t i = 0; i < gw->npo; i++)
            if (gw->po[i].error_code == SLUICE__ERROR_CODE__NONE)
                gw->po[i].error_code = (Sluice__ErrorCode)sl_code_to_wire(gw->code);
        snprintf(gw->msg, sizeof gw->msg, "commit not durable: %s", sl_code_name(gw->code));
    }
    Sluice__OffsetCommitResponse r = SLUICE__OFFSET_COMMIT_RESPONSE__INIT;
    r.offsets = gw->pop;
    r.n_offsets = gw->npo;
    gwait_finish(gw, &r.base);
}

static void committed(void *arg, int code)
{
    gwait_t *gw = arg;
    gw->code = code;
    post(gw, commit_task);
}

static void h_commit(conn_t *c, const sl_request_t *req)
{
    DISPATCH_DECODE(Sluice__OffsetCommitRequest, m, sluice__offset_commit_request__descriptor);
    broker_t *b = c->w->b;
    if (!valid_group(c, req, m->group_id)) return;
    if (m->n_offsets > OFFSETS_MAX_ENTRIES) {
        dispatch_reply(c, req, SL_ERR_INVALID_REQUEST, "more than 10000 offsets in one commit",
                       NULL);
        return;
    }
    int rc = grp_commit_check(b->groups, m->group_id, m->generation_id, m->member_id, sl_mono_ms());
    if (rc != SL_OK) {
        dispatch_reply(c, req, rc,
                       rc == SL_ERR_REBALANCE_IN_PROGRESS ? "the group is rebalancing: rejoin"
                                                          : sl_code_name(rc),
                       NULL);
        return;
    }
    gwait_t *gw = gwait_new(c, req);
    if (!gw) return;
    size_t n = m->n_offsets;
    gw->po = calloc(n + 1, sizeof *gw->po);
    gw->pop = calloc(n + 1, sizeof *gw->pop);
    offsets_entry_t *e = calloc(n + 1, sizeof *e);
    size_t ne = 0;
    if (!gw->po || !gw->pop || !e) {
        gw->code = SL_ERR_NOMEM;
        snprintf(gw->msg, sizeof gw->msg, "out of memory");
        free(e);
        gwait_finish(gw, NULL);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const Sluice__PartitionOffset *in = m->offsets[i];
        Sluice__PartitionOffset *out = &gw->po[i];
        sluice__partition_offset__init(out);
        gw->pop[i] = out;
        gw->npo = i + 1;
        out->topic = strdup(in->topic ? in->topic : "");
        out->metadata = strdup("");
        out->partition = in->partition;
        out->offset = in->offset;
        out->log_end_offset = -1;
        int32_t np = 0;
        int code = SL_OK;
        if (!out->topic || !out->metadata)
            code = SL_ERR_NOMEM;
        else if (store_validate_topic_name(in->topic, NULL) != SL_OK)
            code = SL_ERR_INVALID_TOPIC;
        else if (store_topic_info(b->store, in->topic, &np, NULL, NULL, NULL) != SL_OK ||
                 in->partition < 0 || in->partition >= np)
            code = SL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        else
            code = offsets_commit_check(in->offset, in->metadata);
        out->error_code = (Sluice__ErrorCode)sl_code_to_wire(code);
        if (code == SL_OK)
            e[ne++] = (offsets_entry_t){in->topic, in->partition, in->offset, in->metadata};
    }
    if (ne == 0) { /* nothing to write: every partition carries its error */
        free(e);
        commit_task(gw);
        return;
    }
    gw->flush_pending = 1;
    c->w->pending_flushes++; /* shutdown waits for the fdatasync, as for acks=all */
    rc = offsets_commit(b->offsets, m->group_id, e, ne, sl_wall_ms(), committed, gw, &err);
    free(e);
    if (rc != SL_OK) {
        c->w->pending_flushes--;
        gw->flush_pending = 0;
        gw->code = rc;
        snprintf(gw->msg, sizeof gw->msg, "%s", err.msg);
        gwait_finish(gw, NULL);
    }
}

static void h_offset_fetch(conn_t *c, const sl_request_t *req)
{
    DISPATCH_DECODE(Sluice__OffsetFetchRequest, m, sluice__offset_fetch_request__descriptor);
    broker_t *b = c->w->b;
    if (!valid_group(c, req, m->group_id)) return;
    size_t total = 0;
    for (size_t i = 0; i < m->n_partitions; i++) total += m->partitions[i]->n_partitions;
    if (total > OFFSETS_MAX_ENTRIES) { /* the same bound as a commit */
        char msg[80];
        snprintf(msg, sizeof msg, "more than %d partitions in one OffsetFetch",
                 OFFSETS_MAX_ENTRIES);
        dispatch_reply(c, req, SL_ERR_INVALID_REQUEST, msg, NULL);
        return;
    }
    offsets_item_t *items = NULL;
    size_t nitems = 0;
    if (m->n_partitions == 0) {
        if (offsets_list(b->offsets, m->group_id, &items, &nitems) != SL_OK) {
            offsets_items_free(items, nitems);
            dispatch_reply(c, req, SL_ERR_NOMEM, "out of memory", NULL);
            return;
        }
        total = nitems;
    }
    Sluice__OffsetFetchResponse r = SLUICE__OFFSET_FETCH_RESPONSE__INIT;
    Sluice__PartitionOffset *po = sl_arena_alloc(c->arena, (total + 1) * sizeof *po);
    r.offsets = sl_arena_alloc(c->arena, (total + 1) * sizeof *r.offsets);
    char **mds = calloc(total + 1, sizeof *mds);
    if (!po || !r.offsets || !mds) {
        offsets_items_free(items, nitems);
        free(mds);
        dispatch_reply(c, req, SL_ERR_INVALID_REQUEST, "response too large", NULL);
        return;
    }
    size_t k = 0;
    if (items) {
        for (; k < nitems; k++) {
            sluice__partition_offset__init(&po[k]);
            po[k].topic = items[k].topic;
            po[k].partition = items[k].partition;
            po[k].offset = items[k].offset;
            po[k].metadata = items[k].metadata;
            po[k].log_end_offset = leo(b, items[k].topic, items[k].partition);
            r.offsets[k] = &po[k];
        }
    } else {
        for (size_t i = 0; i < m->n_partitions; i++) {
            Sluice__TopicPartitions *tp = m->partitions[i];
            for (size_t j = 0; j < tp->n_partitions; j++, k++) {
                sluice__partition_offset__init(&po[k]);
                po[k].topic = tp->topic;
                po[k].partition = tp->partitions[j];
                po[k].offset = -1;
                po[k].metadata = (char *)"";
                if (offsets_get(b->offsets, m->group_id, tp->topic ? tp->topic : "",
                                tp->partitions[j], &po[k].offset, &mds[k]) == SL_OK &&
                    mds[k])
                    po[k].metadata = mds[k];
                po[k].log_end_offset = leo(b, tp->topic ? tp->topic : "", tp->partitions[j]);
                r.offsets[k] = &po[k];
            }
        }
    }
    r.n_offsets = k;
    dispatch_reply(c, req, SL_OK, NULL, &r.base);
    for (size_t i = 0; i < total; i++) free(mds[i]);
    free(mds);
    offsets_items_free(items, nitems);
}

static void h_list_groups(conn_t *c, const sl_request_t *req)
{
    DISPATCH_DECODE(Sluice__ListGroupsRequest, m, sluice__list_groups_request__descriptor);
    (void)m;
    broker_t *b = c->w->b;
    grp_summary_t *gs = NULL;
    size_t ng = 0, no = 0;
    char **on = NULL;
    if (grp_list(b->groups, &gs, &ng) != SL_OK || offsets_groups(b->offsets, &on, &no) != SL_OK) {
        free(gs);
        store_names_free(on, no);
        dispatch_reply(c, req, SL_ERR_NOMEM, "out of memory", NULL);
        return;
    }
    /* Both lists are sorted: merge, so a group with only committed offsets
     * shows up as Empty (as in Kafka). */
    Sluice__ListGroupsResponse r = SLUICE__LIST_GROUPS_RESPONSE__INIT;
    Sluice__GroupSummary *s = sl_arena_alloc(c->arena, (ng + no + 1) * sizeof *s);
    r.groups = sl_arena_alloc(c->arena, (ng + no + 1) * sizeof *r.groups);
    if (!s || !r.groups) {
        free(gs);
        store_names_free(on, no);
        dispatch_reply(c, req, SL_ERR_INVALID_REQUEST, "response too large", NULL);
        return;
    }
    size_t i = 0, j = 0, k = 0;
    while (i < ng || j < no) {
        int cmp = i == ng ? 1 : j == no ? -1 : strcmp(gs[i].group_id, on[j]);
        sluice__group_summary__init(&s[k]);
        if (cmp <= 0) {
            s[k].group_id = gs[i].group_id;
            s[k].state = (char *)grp_state_name(gs[i].state);
            s[k].members = gs[i].members;
            i++;
            if (cmp == 0) j++;
        } else {
            s[k].group_id = on[j++];
            s[k].state = (char *)grp_state_name(GRP_EMPTY);
        }
        r.groups[k] = &s[k];
        k++;
    }
    r.n_groups = k;
    dispatch_reply(c, req, SL_OK, NULL, &r.base);
    free(gs);
    store_names_free(on, no);
}

static void h_describe(conn_t *c, const sl_request_t *req)
{
    DISPATCH_DECODE(Sluice__DescribeGroupRequest, m, sluice__describe_group_request__descriptor);
    broker_t *b = c->w->b;
    if (!valid_group(c, req, m->group_id)) return;
    grp_desc_t d;
    int rc = grp_describe(b->groups, m->group_id, &d);
    offsets_item_t *items = NULL;
    size_t nitems = 0;
    int orc = offsets_list(b->offsets, m->group_id, &items, &nitems);
    if ((rc != SL_OK && rc != SL_ERR_GROUP_ID_NOT_FOUND) || orc != SL_OK) {
        grp_desc_free(&d);
        offsets_items_free(items, nitems);
        dispatch_reply(c, req, SL_ERR_NOMEM, "out of memory", NULL);
        return;
    }
    if (rc == SL_ERR_GROUP_ID_NOT_FOUND && nitems == 0) {
        grp_desc_free(&d);
        offsets_items_free(items, nitems);
        dispatch_reply(c, req, SL_ERR_GROUP_ID_NOT_FOUND, "no such group", NULL);
        return;
    }
    Sluice__DescribeGroupResponse r = SLUICE__DESCRIBE_GROUP_RESPONSE__INIT;
    r.group_id = m->group_id;
    r.state = (char *)grp_state_name(rc == SL_OK ? d.state : GRP_EMPTY);
    r.generation_id = rc == SL_OK ? d.generation : 0;
    r.assignor = d.protocol;
    grp_assign_t *as = calloc(d.nmembers + 1, sizeof *as);
    Sluice__GroupMember *gm = sl_arena_alloc(c->arena, (d.nmembers + 1) * sizeof *gm);
    r.members = sl_arena_alloc(c->arena, (d.nmembers + 1) * sizeof *r.members);
    Sluice__PartitionOffset *po = sl_arena_alloc(c->arena, (nitems + 1) * sizeof *po);
    r.offsets = sl_arena_alloc(c->arena, (nitems + 1) * sizeof *r.offsets);
    int ok = as && gm && r.members && po && r.offsets;
    for (size_t i = 0; ok && i < d.nmembers; i++) {
        sluice__group_member__init(&gm[i]);
        gm[i].member_id = d.members[i].member_id;
        gm[i].client_id = d.members[i].client_id;
        gm[i].host = d.members[i].host;
        if (grp_assignment_decode(d.members[i].assignment, d.members[i].assignment_len, &as[i]) ==
            SL_OK) {
            Sluice__TopicPartitions *tp =
                sl_arena_alloc(c->arena, (as[i].ntopics + 1) * sizeof *tp);
            gm[i].assignment =
                sl_arena_alloc(c->arena, (as[i].ntopics + 1) * sizeof *gm[i].assignment);
            if (!tp || !gm[i].assignment) {
                ok = 0;
                break;
            }
            for (size_t k = 0; k < as[i].ntopics; k++) {
                sluice__topic_partitions__init(&tp[k]);
                tp[k].topic = as[i].topics[k].topic;
                tp[k].partitions = as[i].topics[k].parts;
                tp[k].n_partitions = as[i].topics[k].nparts;
                gm[i].assignment[k] = &tp[k];
            }
            gm[i].n_assignment = as[i].ntopics;
        }
        r.members[i] = &gm[i];
        r.n_members = i + 1;
    }
    for (size_t i = 0; ok && i < nitems; i++) {
        sluice__partition_offset__init(&po[i]);
        po[i].topic = items[i].topic;
        po[i].partition = items[i].partition;
        po[i].offset = items[i].offset;
        po[i].metadata = items[i].metadata;
        po[i].log_end_offset = leo(b, items[i].topic, items[i].partition);
        r.offsets[i] = &po[i];
        r.n_offsets = i + 1;
    }
    if (ok)
        dispatch_reply(c, req, SL_OK, NULL, &r.base);
    else
        dispatch_reply(c, req, SL_ERR_INVALID_REQUEST, "response too large", NULL);
    for (size_t i = 0; as && i < d.nmembers; i++) grp_assign_free(&as[i]);
    free(as);
    grp_desc_free(&d);
    offsets_items_free(items, nitems);
}

void h_groups(conn_t *c, const sl_request_t *req)
{
    switch (req->hdr->api) {
    case SLUICE__API_KEY__JOIN_GROUP:
        h_join(c, req);
        break;
    case SLUICE__API_KEY__SYNC_GROUP:
        h_sync(c, req);
        break;
    case SLUICE__API_KEY__HEARTBEAT:
        h_heartbeat(c, req);
        break;
    case SLUICE__API_KEY__LEAVE_GROUP:
        h_leave(c, req);
        break;
    case SLUICE__API_KEY__OFFSET_COMMIT:
        h_commit(c, req);
        break;
    case SLUICE__API_KEY__OFFSET_FETCH:
        h_offset_fetch(c, req);
        break;
    case SLUICE__API_KEY__LIST_GROUPS:
        h_list_groups(c, req);
        break;
    case SLUICE__API_KEY__DESCRIBE_GROUP:
        h_describe(c, req);
        break;
    default:
        dispatch_reply(c, req, SL_ERR_INVALID_REQUEST, "not a group request", NULL);
    }
}

/* ---- broker glue ------------------------------------------------------------------- */

static int32_t topic_partitions(void *arg, const char *topic)
{
    broker_t *b = arg;
    int32_t np = 0;
    if (store_validate_topic_name(topic, NULL) != SL_OK ||
        store_topic_info(b->store, topic, &np, NULL, NULL, NULL) != SL_OK)
        return 0;
    return np;
}

int groups_start(broker_t *b, char *errbuf, size_t errlen)
{
    sl_err_t err;
    int rc = offsets_open(b->store, &b->offsets, &err);
    if (rc != SL_OK) {
        snprintf(errbuf, errlen, "committed offsets: %s", err.msg);
        return rc;
    }
    grp_conf_t gc = {.min_session_ms = b->conf.group_min_session_timeout_ms,
                     .max_session_ms = b->conf.group_max_session_timeout_ms,
                     .initial_delay_ms = b->conf.group_initial_rebalance_delay_ms};
    if (!(b->groups = grp_new(&gc, topic_partitions, b))) {
        offsets_free(b->offsets);
        b->offsets = NULL;
        snprintf(errbuf, errlen, "out of memory");
        return SL_ERR_NOMEM;
    }
    return SL_OK;
}

static void tick(void *arg)
{
    broker_t *b = arg;
    grp_tick(b->groups, sl_mono_ms());
    reactor_timer_start(b->workers[0].r, &b->groups_timer, 100);
}

void groups_start_tick(broker_t *b)
{
    reactor_timer_init(&b->groups_timer, tick, b);
    reactor_timer_start(b->workers[0].r, &b->groups_timer, 100);
}

void groups_close(broker_t *b)
{
    grp_close(b->groups);
}

void groups_free(broker_t *b)
{
    grp_free(b->groups);
    offsets_free(b->offsets);
    b->groups = NULL;
    b->offsets = NULL;
}
