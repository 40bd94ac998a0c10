/* consumer_group.c — the consumer's coordinator side: one blocking
 * connection (coord_mu) for the group protocol (JoinGroup, SyncGroup,
 * Heartbeat, LeaveGroup), commits (OffsetCommit), committed offsets
 * (OffsetFetch) and start offsets (ListOffsets). docs/protocol.md
 * "Consumer groups" is the contract.
 *
 * Group handling (eager, as Kafka's classic protocol): before every
 * (re)join the member gives up its whole assignment — positions are
 * committed first when enable.auto.commit, with the old generation that
 * the broker still accepts while it prepares the rebalance — so no
 * partition is ever read by two members at once and a new owner starts
 * from what the old one consumed. After SyncGroup every assigned partition
 * starts from SLUICE_OFFSET_STORED: OffsetFetch, else auto.offset.reset
 * via ListOffsets.
 *
 * Every wait here is bounded and, on the consumer's thread, gives up when
 * the consumer is being closed (sl_call asks `terminate` every 100 ms), so
 * close() never hangs behind a JoinGroup held by the broker.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "consumer_int.h"

#define COORD_TIMEOUT_MS 10000

int sl_cons_connect(const char *servers, int timeout_ms, char *which, size_t which_size)
{
    const char *s = servers;
    while (s && *s) {
        const char *end = strchr(s, ',');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        char hp[300];
        if (len < sizeof hp) {
            memcpy(hp, s, len);
            hp[len] = '\0';
            int fd = sl_net_dial_wait(hp, timeout_ms);
            if (fd >= 0) {
                if (which && which_size) snprintf(which, which_size, "%s", hp);
                return fd;
            }
        }
        s = end ? end + 1 : NULL;
    }
    return -1;
}

/* Only the consumer's own thread gives up when closing; application calls
 * (and close()'s final commit and leave, made after the thread stopped)
 * run to their timeout. */
static int terminating(void *arg)
{
    sluice_consumer_t *c = arg;
    return c->thread_started && pthread_equal(pthread_self(), c->thread) &&
           __atomic_load_n(&c->terminate, __ATOMIC_RELAXED);
}

int sl_coord_call(sluice_consumer_t *c, int api, const ProtobufCMessage *req,
                  const ProtobufCMessageDescriptor *resp_desc, int timeout_ms,
                  ProtobufCMessage **out, char *errmsg, size_t errmsg_size)
{
    if (errmsg && errmsg_size) errmsg[0] = '\0';
    if (out) *out = NULL;
    int64_t deadline = sl_mono_ms() + timeout_ms;
    if (c->coord.fd < 0) {
        c->coord.fd =
            sl_cons_connect(c->conf->bootstrap_servers, 2000, c->coord.peer, sizeof c->coord.peer);
        if (c->coord.fd < 0) return SLUICE_ERR__TRANSPORT;
    }
    int rc =
        sl_call(&c->coord, api, req, resp_desc, deadline, terminating, c, out, errmsg, errmsg_size);
    /* A garbled stream (closed by sl_call) is, to the group logic, a lost
     * connection: reconnect and retry, nothing to report to the
     * application. A body that does not decode (connection kept) stays
     * BAD_MSG. */
    if (rc == SLUICE_ERR__BAD_MSG && c->coord.fd < 0) rc = SLUICE_ERR__TRANSPORT;
    return rc;
}

/* ---- commits ---------------------------------------------------------------- */

sluice_tp_list_t *sl_positions_list(sluice_consumer_t *c, int changed_only)
{
    sluice_tp_list_t *l = NULL;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->nparts; i++) {
        cpart_t *p = c->parts[i];
        if (!p->assigned || p->position < 0) continue;
        if (changed_only && p->position == p->committed) continue;
        if (!l && !(l = sluice_tp_list_new(8))) break;
        sluice_topic_partition_t *e = sluice_tp_list_add(l, p->topic, p->partition);
        if (e) e->offset = p->position;
    }
    pthread_mutex_unlock(&c->mu);
    return l;
}

void sl_note_committed(sluice_consumer_t *c, const sluice_tp_list_t *l)
{
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < l->cnt; i++) {
        if (l->elems[i].err) continue;
        for (size_t k = 0; k < c->nparts; k++) {
            cpart_t *p = c->parts[k];
            if (p->partition == l->elems[i].partition && strcmp(p->topic, l->elems[i].topic) == 0)
                p->committed = l->elems[i].offset;
        }
    }
    pthread_mutex_unlock(&c->mu);
}

int sl_commit_list(sluice_consumer_t *c, sluice_tp_list_t *l)
{
    if (!c->conf->group_id) return SLUICE_ERR__INVALID_ARG;
    if (l->cnt == 0) return SLUICE_OK;
    Sluice__PartitionOffset *po = calloc(l->cnt, sizeof *po);
    Sluice__PartitionOffset **pp = calloc(l->cnt, sizeof *pp);
    if (!po || !pp) {
        free(po);
        free(pp);
        return SLUICE_ERR__NO_MEMORY;
    }
    for (size_t i = 0; i < l->cnt; i++) {
        sluice__partition_offset__init(&po[i]);
        po[i].topic = l->elems[i].topic;
        po[i].partition = l->elems[i].partition;
        po[i].offset = l->elems[i].offset;
        pp[i] = &po[i];
    }
    Sluice__OffsetCommitRequest r = SLUICE__OFFSET_COMMIT_REQUEST__INIT;
    r.group_id = c->conf->group_id;
    char member[256] = "";
    pthread_mutex_lock(&c->mu);
    r.generation_id = c->in_group ? c->generation : -1;
    if (c->in_group && c->member_id) snprintf(member, sizeof member, "%s", c->member_id);
    pthread_mutex_unlock(&c->mu);
    r.member_id = member;
    r.n_offsets = l->cnt;
    r.offsets = pp;
    ProtobufCMessage *out;
    char msg[256];
    int rc = sl_coord_call(c, SLUICE__API_KEY__OFFSET_COMMIT, &r.base,
                           &sluice__offset_commit_response__descriptor, COORD_TIMEOUT_MS, &out, msg,
                           sizeof msg);
    free(po);
    free(pp);
    if (rc != SLUICE_OK) {
        for (size_t i = 0; i < l->cnt; i++) l->elems[i].err = rc;
        sl_client_log(c->conf, 4, "COMMIT", "commit for group %s failed: %s%s%s", c->conf->group_id,
                      sluice_err2str(rc), msg[0] ? ": " : "", msg);
        return rc;
    }
    Sluice__OffsetCommitResponse *cr = (Sluice__OffsetCommitResponse *)out;
    for (size_t i = 0; i < cr->n_offsets && i < l->cnt; i++) {
        l->elems[i].err = sl_client_code_from_wire(cr->offsets[i]->error_code);
        if (l->elems[i].err && !rc) rc = l->elems[i].err;
    }
    sl_note_committed(c, l);
    return rc;
}

SLUICE_API int sluice_consumer_committed(sluice_consumer_t *c, sluice_tp_list_t *partitions,
                                         int timeout_ms)
{
    if (!c || !partitions) return SLUICE_ERR__INVALID_ARG;
    if (!c->conf->group_id) return SLUICE_ERR__INVALID_ARG;
    if (partitions->cnt == 0) return SLUICE_OK;
    size_t n = partitions->cnt;
    Sluice__TopicPartitions *tp = calloc(n, sizeof *tp);
    Sluice__TopicPartitions **tpp = calloc(n, sizeof *tpp);
    int32_t *parts = calloc(n, sizeof *parts);
    if (!tp || !tpp || !parts) {
        free(tp);
        free(tpp);
        free(parts);
        return SLUICE_ERR__NO_MEMORY;
    }
    for (size_t i = 0; i < n; i++) {
        sluice__topic_partitions__init(&tp[i]);
        tp[i].topic = partitions->elems[i].topic;
        parts[i] = partitions->elems[i].partition;
        tp[i].partitions = &parts[i];
        tp[i].n_partitions = 1;
        tpp[i] = &tp[i];
        partitions->elems[i].offset = SLUICE_OFFSET_INVALID;
    }
    Sluice__OffsetFetchRequest r = SLUICE__OFFSET_FETCH_REQUEST__INIT;
    r.group_id = c->conf->group_id;
    r.n_partitions = n;
    r.partitions = tpp;
    ProtobufCMessage *out;
    pthread_mutex_lock(&c->coord_mu);
    int rc = sl_coord_call(c, SLUICE__API_KEY__OFFSET_FETCH, &r.base,
                           &sluice__offset_fetch_response__descriptor,
                           timeout_ms < 0 ? COORD_TIMEOUT_MS : timeout_ms, &out, NULL, 0);
    if (rc == SLUICE_OK) {
        Sluice__OffsetFetchResponse *f = (Sluice__OffsetFetchResponse *)out;
        for (size_t k = 0; k < f->n_offsets; k++) {
            const Sluice__PartitionOffset *o = f->offsets[k];
            for (size_t i = 0; i < n; i++) {
                sluice_topic_partition_t *e = &partitions->elems[i];
                if (e->partition == o->partition && o->topic && strcmp(e->topic, o->topic) == 0) {
                    e->offset = o->offset >= 0 ? o->offset : SLUICE_OFFSET_INVALID;
                    e->err = sl_client_code_from_wire(o->error_code);
                }
            }
        }
    }
    pthread_mutex_unlock(&c->coord_mu);
    free(tp);
    free(tpp);
    free(parts);
    return rc;
}

/* ---- start offsets ------------------------------------------------------------ */

typedef struct {
    cpart_t *p;
    uint32_t epoch;
    int64_t spec;
    char *topic;
    int32_t partition;
} pending_t;

static int64_t list_offset(sluice_consumer_t *c, const char *topic, int32_t partition, int64_t spec,
                           int *err)
{
    Sluice__ListOffsetsRequest r = SLUICE__LIST_OFFSETS_REQUEST__INIT;
    r.topic = (char *)topic;
    r.partition = partition;
    r.timestamp = spec == SLUICE_OFFSET_BEGINNING ? -2 : -1;
    ProtobufCMessage *out;
    *err =
        sl_coord_call(c, SLUICE__API_KEY__LIST_OFFSETS, &r.base,
                      &sluice__list_offsets_response__descriptor, COORD_TIMEOUT_MS, &out, NULL, 0);
    return *err == SLUICE_OK ? ((Sluice__ListOffsetsResponse *)out)->offset : -1;
}

/* Resolves SLUICE_OFFSET_STORED / _BEGINNING / _END of the partitions that
 * need it. Runs without mu during I/O; a result is applied only if the
 * partition's epoch did not move meanwhile (no seek, no reassignment). */
static void resolve_offsets(sluice_consumer_t *c, int64_t now)
{
    pending_t *v = NULL;
    size_t n = 0;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->nparts; i++) {
        cpart_t *p = c->parts[i];
        if (!p->assigned || !p->need_reset || p->reset_spec == SLUICE_OFFSET_INVALID ||
            now < p->retry_at)
            continue;
        pending_t *nv = realloc(v, (n + 1) * sizeof *v);
        if (!nv) break;
        v = nv;
        v[n] = (pending_t){p, p->epoch, p->reset_spec, strdup(p->topic), p->partition};
        if (!v[n].topic) break;
        n++;
    }
    pthread_mutex_unlock(&c->mu);
    if (!n) {
        free(v);
        return;
    }
    pthread_mutex_lock(&c->coord_mu);
    /* Committed offsets first, in one OffsetFetch. */
    size_t nstored = 0;
    for (size_t i = 0; i < n; i++) nstored += v[i].spec == SLUICE_OFFSET_STORED;
    int64_t *found = calloc(n, sizeof *found);
    int fetch_rc = SLUICE_OK;
    if (nstored && c->conf->group_id && found) {
        sluice_tp_list_t *l = sluice_tp_list_new(nstored);
        for (size_t i = 0; l && i < n; i++)
            if (v[i].spec == SLUICE_OFFSET_STORED)
                sluice_tp_list_add(l, v[i].topic, v[i].partition);
        pthread_mutex_unlock(&c->coord_mu);
        fetch_rc = l ? sluice_consumer_committed(c, l, COORD_TIMEOUT_MS) : SLUICE_ERR__NO_MEMORY;
        pthread_mutex_lock(&c->coord_mu);
        for (size_t i = 0, k = 0; l && i < n; i++)
            if (v[i].spec == SLUICE_OFFSET_STORED && k < l->cnt) found[i] = l->elems[k++].offset;
        sluice_tp_list_destroy(l);
    } else if (found) {
        for (size_t i = 0; i < n; i++) found[i] = SLUICE_OFFSET_INVALID;
    }
    for (size_t i = 0; i < n; i++) {
        int64_t spec = v[i].spec, off = -1, committed = SLUICE_OFFSET_INVALID;
        int err = SLUICE_OK;
        if (spec == SLUICE_OFFSET_STORED) {
            if (fetch_rc != SLUICE_OK) {
                err = fetch_rc;
            } else if (found && found[i] >= 0) {
                off = committed = found[i];
            } else {
                switch (c->conf->auto_offset_reset) {
                case SL_RESET_EARLIEST:
                    spec = SLUICE_OFFSET_BEGINNING;
                    break;
                case SL_RESET_LATEST:
                    spec = SLUICE_OFFSET_END;
                    break;
                default:
                    err = SLUICE_ERR_OFFSET_OUT_OF_RANGE;
                }
            }
        }
        if (off < 0 && err == SLUICE_OK)
            off = list_offset(c, v[i].topic, v[i].partition, spec, &err);
        pthread_mutex_lock(&c->mu);
        cpart_t *p = v[i].p;
        if (p->assigned && p->epoch == v[i].epoch && p->need_reset) {
            if (err == SLUICE_OK && off >= 0) {
                p->fetch_pos = p->position = off;
                p->need_reset = 0;
                if (committed >= 0) p->committed = committed;
            } else if (err == SLUICE_ERR_OFFSET_OUT_OF_RANGE) {
                p->reset_spec = SLUICE_OFFSET_INVALID; /* auto.offset.reset=error: until seek */
                sl_cons_queue_err(c, p, err, SLUICE_OFFSET_INVALID);
            } else {
                if (err != SLUICE_ERR__TRANSPORT && err != SLUICE_ERR__DESTROY &&
                    err != SLUICE_ERR__TIMED_OUT)
                    sl_cons_queue_err(c, p, err, SLUICE_OFFSET_INVALID);
                p->retry_at = sl_mono_ms() + 500;
            }
        }
        pthread_mutex_unlock(&c->mu);
        free(v[i].topic);
    }
    pthread_mutex_unlock(&c->coord_mu);
    free(found);
    free(v);
    sl_cons_wake(c);
}

/* ---- group protocol ------------------------------------------------------------ */

static void set_member(sluice_consumer_t *c, const char *id, int32_t gen)
{
    char *dup = id ? strdup(id) : NULL;
    pthread_mutex_lock(&c->mu);
    free(c->member_id);
    c->member_id = dup;
    c->generation = gen;
    pthread_mutex_unlock(&c->mu);
}

/* Gives up the assignment before a rejoin (committing first if auto). */
static void revoke_all(sluice_consumer_t *c)
{
    sluice_tp_list_t *l = NULL;
    int in_group;
    pthread_mutex_lock(&c->mu);
    in_group = c->in_group;
    pthread_mutex_unlock(&c->mu);
    if (in_group && c->conf->enable_auto_commit) l = sl_positions_list(c, 1);
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->nparts; i++)
        if (c->parts[i]->assigned) sl_cons_unassign(c, c->parts[i]);
    pthread_mutex_unlock(&c->mu);
    if (l) {
        pthread_mutex_lock(&c->coord_mu);
        sl_commit_list(c, l);
        pthread_mutex_unlock(&c->coord_mu);
        sluice_tp_list_destroy(l);
    }
    pthread_mutex_lock(&c->mu);
    c->in_group = 0;
    pthread_mutex_unlock(&c->mu);
}

/* One join + sync attempt. Returns 0 when in the group. */
static int join_group(sluice_consumer_t *c)
{
    revoke_all(c);
    char member[256] = "";
    pthread_mutex_lock(&c->mu);
    if (c->member_id) snprintf(member, sizeof member, "%s", c->member_id);
    Sluice__JoinGroupRequest j = SLUICE__JOIN_GROUP_REQUEST__INIT;
    j.topics = c->topics;
    j.n_topics = c->ntopics;
    pthread_mutex_unlock(&c->mu);
    j.group_id = c->conf->group_id;
    j.member_id = member;
    j.client_id = c->conf->client_id;
    j.session_timeout_ms = (uint32_t)c->conf->session_timeout_ms;
    j.rebalance_timeout_ms = 0; /* = the session timeout */
    j.assignor = "range";
    ProtobufCMessage *out;
    char msg[256];
    pthread_mutex_lock(&c->coord_mu);
    /* The broker holds the answer until every member rejoined (at most the
     * rebalance timeout); the thread has nothing else to do meanwhile. */
    int rc = sl_coord_call(c, SLUICE__API_KEY__JOIN_GROUP, &j.base,
                           &sluice__join_group_response__descriptor,
                           c->conf->session_timeout_ms + COORD_TIMEOUT_MS, &out, msg, sizeof msg);
    int32_t gen = 0;
    if (rc == SLUICE_OK) {
        Sluice__JoinGroupResponse *jr = (Sluice__JoinGroupResponse *)out;
        gen = jr->generation_id;
        set_member(c, jr->member_id, gen);
        snprintf(member, sizeof member, "%s", jr->member_id ? jr->member_id : "");
        Sluice__SyncGroupRequest s = SLUICE__SYNC_GROUP_REQUEST__INIT;
        s.group_id = c->conf->group_id;
        s.generation_id = gen;
        s.member_id = member;
        rc = sl_coord_call(c, SLUICE__API_KEY__SYNC_GROUP, &s.base,
                           &sluice__sync_group_response__descriptor,
                           c->conf->session_timeout_ms + COORD_TIMEOUT_MS, &out, msg, sizeof msg);
        if (rc == SLUICE_OK) {
            Sluice__SyncGroupResponse *sr = (Sluice__SyncGroupResponse *)out;
            pthread_mutex_lock(&c->mu);
            for (size_t i = 0; i < sr->n_assignment; i++) {
                const Sluice__TopicPartitions *tp = sr->assignment[i];
                for (size_t k = 0; k < tp->n_partitions; k++) {
                    cpart_t *p = sl_cons_part(c, tp->topic, tp->partitions[k]);
                    if (p) sl_cons_assign_part(c, p, SLUICE_OFFSET_STORED);
                }
            }
            c->in_group = 1;
            c->need_join = 0;
            pthread_mutex_unlock(&c->mu);
            sl_client_log(c->conf, 7, "GROUP", "joined %s generation %d as %s", c->conf->group_id,
                          gen, member);
        }
    }
    pthread_mutex_unlock(&c->coord_mu);
    if (rc == SLUICE_ERR_UNKNOWN_MEMBER_ID) set_member(c, NULL, 0);
    if (rc != SLUICE_OK && rc != SLUICE_ERR__DESTROY && rc != SLUICE_ERR_UNKNOWN_MEMBER_ID &&
        rc != SLUICE_ERR_REBALANCE_IN_PROGRESS && rc != SLUICE_ERR_ILLEGAL_GENERATION) {
        /* Not a normal rejoin race: tell the application, retry later. */
        sl_client_log(c->conf, 4, "GROUP", "joining %s: %s%s%s", c->conf->group_id,
                      sluice_err2str(rc), msg[0] ? ": " : "", msg);
        if (rc != SLUICE_ERR__TRANSPORT && rc != SLUICE_ERR__TIMED_OUT) {
            pthread_mutex_lock(&c->mu);
            sl_cons_queue_err(c, NULL, rc, SLUICE_OFFSET_INVALID);
            pthread_mutex_unlock(&c->mu);
        }
        return -1;
    }
    return rc == SLUICE_OK ? 0 : 1;
}

static void heartbeat(sluice_consumer_t *c)
{
    char member[256] = "";
    pthread_mutex_lock(&c->mu);
    int32_t gen = c->generation;
    if (c->member_id) snprintf(member, sizeof member, "%s", c->member_id);
    pthread_mutex_unlock(&c->mu);
    Sluice__HeartbeatRequest h = SLUICE__HEARTBEAT_REQUEST__INIT;
    h.group_id = c->conf->group_id;
    h.generation_id = gen;
    h.member_id = member;
    pthread_mutex_lock(&c->coord_mu);
    int rc = sl_coord_call(c, SLUICE__API_KEY__HEARTBEAT, &h.base, NULL, COORD_TIMEOUT_MS, NULL,
                           NULL, 0);
    pthread_mutex_unlock(&c->coord_mu);
    if (rc == SLUICE_ERR_UNKNOWN_MEMBER_ID) set_member(c, NULL, 0);
    if (rc == SLUICE_ERR_UNKNOWN_MEMBER_ID || rc == SLUICE_ERR_ILLEGAL_GENERATION ||
        rc == SLUICE_ERR_REBALANCE_IN_PROGRESS) {
        pthread_mutex_lock(&c->mu);
        c->need_join = 1;
        pthread_mutex_unlock(&c->mu);
    }
}

static void commit_now(sluice_consumer_t *c, sluice_tp_list_t *l)
{
    pthread_mutex_lock(&c->coord_mu);
    sl_commit_list(c, l);
    pthread_mutex_unlock(&c->coord_mu);
}

int sl_group_work(sluice_consumer_t *c, int64_t now)
{
    int wait = 100;
    pthread_mutex_lock(&c->mu);
    int subscribed = c->subscribed, need_join = c->need_join, in_group = c->in_group;
    sluice_tp_list_t *async = c->async_commits;
    c->async_commits = NULL;
    pthread_mutex_unlock(&c->mu);
    if (async) {
        commit_now(c, async);
        sluice_tp_list_destroy(async);
    }
    if (subscribed && need_join && now >= c->join_retry_at) {
        int rc = join_group(c);
        if (rc < 0) c->join_retry_at = sl_mono_ms() + 1000;
        if (rc == 0) c->next_hb_ms = sl_mono_ms() + c->conf->heartbeat_interval_ms;
        return 0;
    }
    if (subscribed && in_group && now >= c->next_hb_ms) {
        heartbeat(c);
        c->next_hb_ms = sl_mono_ms() + c->conf->heartbeat_interval_ms;
    }
    resolve_offsets(c, now);
    if (c->conf->group_id && c->conf->enable_auto_commit && now >= c->next_autocommit_ms) {
        sluice_tp_list_t *l = sl_positions_list(c, 1);
        if (l) {
            commit_now(c, l);
            sluice_tp_list_destroy(l);
        }
        c->next_autocommit_ms = sl_mono_ms() + c->conf->auto_commit_interval_ms;
    }
    if (subscribed && in_group) {
        int64_t d = c->next_hb_ms - sl_mono_ms();
        if (d < wait) wait = d < 0 ? 0 : (int)d;
    }
    return wait;
}

void sl_group_close(sluice_consumer_t *c)
{
    if (c->conf->group_id && c->conf->enable_auto_commit) {
        sluice_tp_list_t *l = sl_positions_list(c, 1);
        if (l) {
            commit_now(c, l);
            sluice_tp_list_destroy(l);
        }
    }
    pthread_mutex_lock(&c->mu);
    int in_group = c->in_group || (c->subscribed && c->member_id);
    char member[256] = "";
    if (c->member_id) snprintf(member, sizeof member, "%s", c->member_id);
    c->in_group = 0;
    pthread_mutex_unlock(&c->mu);
    if (in_group && member[0]) {
        Sluice__LeaveGroupRequest l = SLUICE__LEAVE_GROUP_REQUEST__INIT;
        l.group_id = c->conf->group_id;
        l.member_id = member;
        pthread_mutex_lock(&c->coord_mu);
        sl_coord_call(c, SLUICE__API_KEY__LEAVE_GROUP, &l.base, NULL, 5000, NULL, NULL, 0);
        pthread_mutex_unlock(&c->coord_mu);
    }
}
