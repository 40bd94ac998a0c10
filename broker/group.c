/* group.c — the group coordinator (see group.h for the state machine).
 *
 * Invariants:
 *  1. A member has at most one parked JoinGroup and one parked SyncGroup;
 *     every callback handed to grp_join/grp_sync runs exactly once.
 *  2. Parked JoinGroups exist only in PreparingRebalance; parked SyncGroups
 *     only in CompletingRebalance. Entering PreparingRebalance answers the
 *     parked syncs with REBALANCE_IN_PROGRESS.
 *  3. A member with a parked request never expires: clients do not
 *     heartbeat while a join or sync is outstanding. Its session restarts
 *     when the request is answered.
 *  4. Callbacks run after the mutex is released: operations collect them
 *     in an outbox (with owned copies of what they report) and deliver it
 *     on the way out, so a callback may re-enter the coordinator.
 */
#include "group.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errors.h"
#include "log.h"

const char *grp_state_name(grp_state_t s)
{
    switch (s) {
    case GRP_EMPTY:
        return "Empty";
    case GRP_PREPARING_REBALANCE:
        return "PreparingRebalance";
    case GRP_COMPLETING_REBALANCE:
        return "CompletingRebalance";
    case GRP_STABLE:
        return "Stable";
    case GRP_DEAD:
        return "Dead";
    }
    return "Unknown";
}

/* ---- coordinator state ------------------------------------------------------------ */

typedef struct member {
    char *id, *client_id, *host;
    int64_t session_ms, rebalance_ms;
    int64_t deadline_ms; /* session expiry */
    size_t nproto;
    char **pname;
    uint8_t **pmeta;
    size_t *pmeta_len;
    grp_join_fn join_fn; /* parked JoinGroup */
    void *join_arg;
    grp_sync_fn sync_fn; /* parked SyncGroup */
    void *sync_arg;
    uint8_t *assignment;
    size_t assignment_len;
} member_t;

typedef struct group {
    char id[GRP_MAX_ID + 1];
    grp_state_t state;
    int32_t generation;
    grp_mode_t mode;
    char protocol_type[GRP_MAX_ID + 1];
    char protocol[GRP_MAX_ID + 1];
    char leader[GRP_MAX_ID + 1];
    member_t **members; /* kept in member-id order */
    size_t nmembers;
    int64_t join_deadline_ms; /* PreparingRebalance: complete by then at the latest */
    int64_t delay_until_ms;   /* ... and not before then (initial delay) */
} group_t;

struct grp_coord {
    pthread_mutex_t mu;
    grp_conf_t conf;
    grp_partitions_fn partitions;
    void *parg;
    group_t **groups; /* sorted by id */
    size_t ngroups;
    uint64_t next_member;
    uint64_t seed;
    int closing;
};

/* What to tell whom once the mutex is released. */
typedef struct shared_members {
    struct shared_members *next;
    grp_member_info_t *info;
    char **ids;
    uint8_t **metas;
    size_t n;
} shared_members_t;

typedef struct delivery {
    struct delivery *next;
    grp_join_fn jf;
    grp_sync_fn sf;
    void *arg;
    int code;
    char msg[160];
    int32_t generation;
    char *member_id, *leader, *protocol;
    const shared_members_t *members;
    uint8_t *bytes;
    size_t len;
} delivery_t;

typedef struct outbox {
    delivery_t *head, **tail;
    shared_members_t *shared;
} outbox_t;

static void ob_init(outbox_t *ob)
{
    ob->head = NULL;
    ob->tail = &ob->head;
    ob->shared = NULL;
}

static char *dupn(const char *s)
{
    return strdup(s ? s : "");
}

/* Queues an answer; on ENOMEM the answer still goes out, without details
 * (invariant 1 outranks completeness). */
static delivery_t *ob_push(outbox_t *ob, grp_join_fn jf, grp_sync_fn sf, void *arg, int code,
                           const char *msg)
{
    static delivery_t oom; /* never reached in practice; keeps the path total */
    delivery_t *d = calloc(1, sizeof *d);
    if (!d) {
        log_error("group", "out of memory queueing a group answer: it is lost");
        return &oom;
    }
    d->jf = jf;
    d->sf = sf;
    d->arg = arg;
    d->code = code;
    snprintf(d->msg, sizeof d->msg, "%s", msg ? msg : "");
    d->generation = -1;
    *ob->tail = d;
    ob->tail = &d->next;
    return d;
}

static void ob_join_error(outbox_t *ob, grp_join_fn fn, void *arg, int code, const char *msg,
                          const char *member_id)
{
    delivery_t *d = ob_push(ob, fn, NULL, arg, code, msg);
    if (d->jf) d->member_id = dupn(member_id);
}

static void ob_sync(outbox_t *ob, grp_sync_fn fn, void *arg, int code, const char *msg,
                    const uint8_t *bytes, size_t len)
{
    delivery_t *d = ob_push(ob, NULL, fn, arg, code, msg);
    if (d->sf && len) {
        d->bytes = malloc(len);
        if (d->bytes) {
            memcpy(d->bytes, bytes, len);
            d->len = len;
        }
    }
}

/* Delivers and frees; call without the mutex. */
static void ob_flush(outbox_t *ob)
{
    delivery_t *d = ob->head;
    while (d) {
        delivery_t *next = d->next;
        if (d->jf) {
            grp_join_result_t r = {.code = d->code,
                                   .message = d->msg,
                                   .generation = d->generation,
                                   .member_id = d->member_id ? d->member_id : "",
                                   .leader_id = d->leader ? d->leader : "",
                                   .protocol = d->protocol ? d->protocol : "",
                                   .members = d->members ? d->members->info : NULL,
                                   .nmembers = d->members ? d->members->n : 0};
            d->jf(d->arg, &r);
        } else if (d->sf) {
            grp_sync_result_t r = {
                .code = d->code, .message = d->msg, .assignment = d->bytes, .len = d->len};
            d->sf(d->arg, &r);
        }
        free(d->member_id);
        free(d->leader);
        free(d->protocol);
        free(d->bytes);
        free(d);
        d = next;
    }
    while (ob->shared) {
        shared_members_t *s = ob->shared;
        ob->shared = s->next;
        for (size_t i = 0; i < s->n; i++) {
            free(s->ids[i]);
            free(s->metas[i]);
        }
        free(s->ids);
        free(s->metas);
        free(s->info);
        free(s);
    }
    ob_init(ob);
}

static void member_free(member_t *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->nproto; i++) {
        free(m->pname[i]);
        free(m->pmeta[i]);
    }
    free(m->pname);
    free(m->pmeta);
    free(m->pmeta_len);
    free(m->id);
    free(m->client_id);
    free(m->host);
    free(m->assignment);
    free(m);
}

static void group_free(group_t *gr)
{
    if (!gr) return;
    for (size_t i = 0; i < gr->nmembers; i++) member_free(gr->members[i]);
    free(gr->members);
    free(gr);
}

static size_t group_pos(grp_coord_t *g, const char *id, int *found)
{
    size_t lo = 0, hi = g->ngroups;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(g->groups[mid]->id, id);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

static group_t *group_find(grp_coord_t *g, const char *id)
{
    int found;
    size_t i = group_pos(g, id, &found);
    return found ? g->groups[i] : NULL;
}

static size_t member_pos(group_t *gr, const char *id, int *found)
{
    size_t lo = 0, hi = gr->nmembers;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(gr->members[mid]->id, id);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

static member_t *member_find(group_t *gr, const char *id)
{
    int found;
    size_t i = member_pos(gr, id, &found);
    return found ? gr->members[i] : NULL;
}

/* Creates a group; when the table is full, evicts an Empty one (its
 * committed offsets live elsewhere and stay). NULL when none can go. */
static group_t *group_create(grp_coord_t *g, const char *id)
{
    if (g->ngroups >= GRP_MAX_GROUPS) {
        size_t victim = SIZE_MAX;
        for (size_t i = 0; i < g->ngroups && victim == SIZE_MAX; i++)
            if (g->groups[i]->state == GRP_EMPTY) victim = i;
        if (victim == SIZE_MAX) return NULL;
        g->groups[victim]->state = GRP_DEAD;
        group_free(g->groups[victim]);
        memmove(&g->groups[victim], &g->groups[victim + 1],
                (g->ngroups - victim - 1) * sizeof *g->groups);
        g->ngroups--;
    }
    if ((g->ngroups & (g->ngroups - 1)) == 0) {
        group_t **ng = realloc(g->groups, (g->ngroups ? g->ngroups * 2 : 1) * sizeof *ng);
        if (!ng) return NULL;
        g->groups = ng;
    }
    group_t *gr = calloc(1, sizeof *gr);
    if (!gr) return NULL;
    snprintf(gr->id, sizeof gr->id, "%s", id);
    gr->state = GRP_EMPTY;
    int found;
    size_t pos = group_pos(g, id, &found);
    memmove(&g->groups[pos + 1], &g->groups[pos], (g->ngroups - pos) * sizeof *g->groups);
    g->groups[pos] = gr;
    g->ngroups++;
    return gr;
}

static int group_insert_member(group_t *gr, member_t *m)
{
    if ((gr->nmembers & (gr->nmembers - 1)) == 0) {
        member_t **nm = realloc(gr->members, (gr->nmembers ? gr->nmembers * 2 : 1) * sizeof *nm);
        if (!nm) return SL_ERR_NOMEM;
        gr->members = nm;
    }
    int found;
    size_t pos = member_pos(gr, m->id, &found);
    memmove(&gr->members[pos + 1], &gr->members[pos], (gr->nmembers - pos) * sizeof *gr->members);
    gr->members[pos] = m;
    gr->nmembers++;
    return SL_OK;
}

grp_coord_t *grp_new(const grp_conf_t *conf, grp_partitions_fn partitions, void *arg)
{
    grp_coord_t *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    pthread_mutex_init(&g->mu, NULL);
    g->conf = *conf;
    g->partitions = partitions;
    g->parg = arg;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    /* Member ids must not repeat across restarts either: a client holding an
     * id from the last run must get UNKNOWN_MEMBER_ID, not someone's seat. */
    g->seed = ((uint64_t)ts.tv_sec * 1000000007u) ^ (uint64_t)ts.tv_nsec;
    return g;
}

/* Releases every parked request of the group with `code`. */
static void release_parked(group_t *gr, outbox_t *ob, int code, const char *msg)
{
    for (size_t i = 0; i < gr->nmembers; i++) {
        member_t *m = gr->members[i];
        if (m->join_fn) ob_join_error(ob, m->join_fn, m->join_arg, code, msg, m->id);
        if (m->sync_fn) ob_sync(ob, m->sync_fn, m->sync_arg, code, msg, NULL, 0);
        m->join_fn = NULL;
        m->sync_fn = NULL;
    }
}

void grp_close(grp_coord_t *g)
{
    if (!g) return;
    outbox_t ob;
    ob_init(&ob);
    pthread_mutex_lock(&g->mu);
    g->closing = 1;
    for (size_t i = 0; i < g->ngroups; i++)
        release_parked(g->groups[i], &ob, SL_ERR_REBALANCE_IN_PROGRESS, "broker shutting down");
    pthread_mutex_unlock(&g->mu);
    ob_flush(&ob);
}

void grp_free(grp_coord_t *g)
{
    if (!g) return;
    grp_close(g);
    for (size_t i = 0; i < g->ngroups; i++) group_free(g->groups[i]);
    free(g->groups);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

static int member_supports(const member_t *m, const char *name)
{
    for (size_t i = 0; i < m->nproto; i++)
        if (strcmp(m->pname[i], name) == 0) return 1;
    return 0;
}

static int64_t max_rebalance(group_t *gr)
{
    int64_t t = 0;
    for (size_t i = 0; i < gr->nmembers; i++)
        if (gr->members[i]->rebalance_ms > t) t = gr->members[i]->rebalance_ms;
    return t;
}

/* Stable/Completing/Empty → PreparingRebalance. */
static void prepare_rebalance(grp_coord_t *g, group_t *gr, int64_t now_ms, outbox_t *ob,
                              const char *why)
{
    if (gr->state == GRP_PREPARING_REBALANCE) return;
    if (gr->state == GRP_COMPLETING_REBALANCE) /* invariant 2; joins may already park */
        for (size_t i = 0; i < gr->nmembers; i++) {
            member_t *m = gr->members[i];
            if (m->sync_fn)
                ob_sync(ob, m->sync_fn, m->sync_arg, SL_ERR_REBALANCE_IN_PROGRESS,
                        "a new rebalance started: rejoin", NULL, 0);
            m->sync_fn = NULL;
        }
    int was_empty = gr->state == GRP_EMPTY;
    gr->state = GRP_PREPARING_REBALANCE;
    gr->join_deadline_ms = now_ms + max_rebalance(gr);
    gr->delay_until_ms = now_ms;
    if (was_empty && g->conf.initial_delay_ms > 0) {
        int64_t d = g->conf.initial_delay_ms < max_rebalance(gr) ? g->conf.initial_delay_ms
                                                                 : max_rebalance(gr);
        gr->delay_until_ms = now_ms + d;
    }
    log_info("group", "group %s: rebalancing (generation %" PRId32 "): %s", gr->id, gr->generation,
             why);
}

/* Removes member i (left or died), answering what it had parked. */
static void remove_member(group_t *gr, size_t i, outbox_t *ob, const char *why)
{
    member_t *m = gr->members[i];
    if (m->join_fn)
        ob_join_error(ob, m->join_fn, m->join_arg, SL_ERR_UNKNOWN_MEMBER_ID, why, m->id);
    if (m->sync_fn) ob_sync(ob, m->sync_fn, m->sync_arg, SL_ERR_UNKNOWN_MEMBER_ID, why, NULL, 0);
    log_info("group", "group %s: member %s removed: %s", gr->id, m->id, why);
    memmove(&gr->members[i], &gr->members[i + 1], (gr->nmembers - i - 1) * sizeof *gr->members);
    gr->nmembers--;
    member_free(m);
}

static void become_empty(group_t *gr)
{
    gr->state = GRP_EMPTY;
    gr->generation++;
    gr->leader[0] = gr->protocol[0] = 0;
    log_info("group", "group %s: empty (generation %" PRId32 ")", gr->id, gr->generation);
}

static void maybe_complete(grp_coord_t *g, group_t *gr, int64_t now_ms, outbox_t *ob);

/* A member left: rebalance the rest (or go Empty). */
static void membership_changed(grp_coord_t *g, group_t *gr, int64_t now_ms, outbox_t *ob,
                               const char *why)
{
    if (gr->nmembers == 0) {
        if (gr->state != GRP_EMPTY) become_empty(gr);
        return;
    }
    prepare_rebalance(g, gr, now_ms, ob, why);
    maybe_complete(g, gr, now_ms, ob);
}

static int32_t parts_cb(grp_coord_t *g, const char *topic)
{
    return g->partitions ? g->partitions(g->parg, topic) : 0;
}

/* Broker mode: runs the assignor and stores every member's assignment. */
static int broker_assign(grp_coord_t *g, group_t *gr, char *msg, size_t msglen)
{
    grp_assignor_fn fn = grp_assignor(gr->protocol);
    size_t n = gr->nmembers;
    grp_assignor_member_t *am = calloc(n, sizeof *am);
    grp_assign_t *out = calloc(n, sizeof *out);
    int rc = am && out ? SL_OK : SL_ERR_NOMEM;
    for (size_t i = 0; rc == SL_OK && i < n; i++) {
        member_t *m = gr->members[i];
        am[i].member_id = m->id;
        for (size_t k = 0; k < m->nproto; k++)
            if (strcmp(m->pname[k], gr->protocol) == 0)
                rc = grp_subscription_decode(m->pmeta[k], m->pmeta_len[k], &am[i].topics,
                                             &am[i].ntopics);
    }
    if (rc == SL_OK && !fn) rc = SL_ERR_INCONSISTENT_GROUP_PROTOCOL;
    if (rc == SL_OK) rc = fn(am, n, (grp_partitions_fn)parts_cb, g, out);
    for (size_t i = 0; rc == SL_OK && i < n; i++) {
        member_t *m = gr->members[i];
        free(m->assignment);
        m->assignment = grp_assignment_encode(&out[i], &m->assignment_len);
        if (!m->assignment) rc = SL_ERR_NOMEM;
    }
    if (rc != SL_OK)
        snprintf(msg, msglen, "assignment failed: %s%s", sl_code_name(rc),
                 rc == SL_ERR_INVALID_REQUEST ? " (more than 100000 partitions)" : "");
    for (size_t i = 0; i < n; i++) {
        if (am) grp_strings_free(am[i].topics, am[i].ntopics);
        if (out) grp_assign_free(&out[i]);
    }
    free(am);
    free(out);
    return rc;
}

/* Ends the join phase: drops members that did not rejoin, bumps the
 * generation, picks leader and protocol, answers the parked joins. */
static void complete_join(grp_coord_t *g, group_t *gr, int64_t now_ms, outbox_t *ob)
{
    for (size_t i = gr->nmembers; i-- > 0;)
        if (!gr->members[i]->join_fn)
            remove_member(gr, i, ob, "did not rejoin within the rebalance timeout");
    if (gr->nmembers == 0) {
        become_empty(gr);
        return;
    }
    gr->generation++;
    member_t *leader = member_find(gr, gr->leader);
    if (!leader) leader = gr->members[0];
    snprintf(gr->leader, sizeof gr->leader, "%s", leader->id);
    /* The leader's first candidate that every member supports (it exists:
     * each join was checked against the members present then, and members
     * only leave since). */
    gr->protocol[0] = 0;
    for (size_t k = 0; k < leader->nproto && !gr->protocol[0]; k++) {
        int all = 1;
        for (size_t i = 0; i < gr->nmembers && all; i++)
            all = member_supports(gr->members[i], leader->pname[k]);
        if (all) snprintf(gr->protocol, sizeof gr->protocol, "%s", leader->pname[k]);
    }
    for (size_t i = 0; i < gr->nmembers; i++) {
        free(gr->members[i]->assignment);
        gr->members[i]->assignment = NULL;
        gr->members[i]->assignment_len = 0;
    }
    char msg[160] = "";
    int code = SL_OK;
    if (gr->mode == GRP_MODE_BROKER) {
        code = broker_assign(g, gr, msg, sizeof msg);
        gr->state = GRP_STABLE;
    } else {
        gr->state = GRP_COMPLETING_REBALANCE;
    }
    shared_members_t *sh = calloc(1, sizeof *sh);
    if (sh) {
        sh->n = gr->nmembers;
        sh->info = calloc(sh->n, sizeof *sh->info);
        sh->ids = calloc(sh->n, sizeof *sh->ids);
        sh->metas = calloc(sh->n, sizeof *sh->metas);
        sh->next = ob->shared;
        ob->shared = sh;
        if (!sh->info || !sh->ids || !sh->metas) sh->n = 0;
        for (size_t i = 0; i < sh->n; i++) {
            member_t *m = gr->members[i];
            sh->ids[i] = dupn(m->id);
            sh->info[i].member_id = sh->ids[i] ? sh->ids[i] : "";
            for (size_t k = 0; k < m->nproto; k++)
                if (strcmp(m->pname[k], gr->protocol) == 0 && m->pmeta_len[k]) {
                    sh->metas[i] = malloc(m->pmeta_len[k]);
                    if (sh->metas[i]) {
                        memcpy(sh->metas[i], m->pmeta[k], m->pmeta_len[k]);
                        sh->info[i].meta = sh->metas[i];
                        sh->info[i].meta_len = m->pmeta_len[k];
                    }
                }
        }
    }
    for (size_t i = 0; i < gr->nmembers; i++) {
        member_t *m = gr->members[i];
        delivery_t *d = ob_push(ob, m->join_fn, NULL, m->join_arg, code, msg);
        m->join_fn = NULL;
        m->deadline_ms = now_ms + m->session_ms; /* invariant 3 */
        if (!d->jf) continue;
        d->generation = gr->generation;
        d->member_id = dupn(m->id);
        d->leader = dupn(gr->leader);
        d->protocol = dupn(gr->protocol);
        d->members = sh;
    }
    log_info("group", "group %s: generation %" PRId32 " with %zu members, leader %s, protocol %s",
             gr->id, gr->generation, gr->nmembers, gr->leader, gr->protocol);
}

static void maybe_complete(grp_coord_t *g, group_t *gr, int64_t now_ms, outbox_t *ob)
{
    if (gr->state != GRP_PREPARING_REBALANCE) return;
    int all = 1;
    for (size_t i = 0; i < gr->nmembers && all; i++) all = gr->members[i]->join_fn != NULL;
    if ((all && now_ms >= gr->delay_until_ms) || now_ms >= gr->join_deadline_ms)
        complete_join(g, gr, now_ms, ob);
}

static int valid_group_id(const char *id)
{
    return id && *id && strlen(id) <= GRP_MAX_ID;
}

static int same_protocols(const member_t *m, const grp_join_req_t *r)
{
    if (m->nproto != r->nprotocols) return 0;
    for (size_t i = 0; i < m->nproto; i++)
        if (strcmp(m->pname[i], r->protocols[i].name) != 0 ||
            m->pmeta_len[i] != r->protocols[i].meta_len ||
            (m->pmeta_len[i] && memcmp(m->pmeta[i], r->protocols[i].meta, m->pmeta_len[i]) != 0))
            return 0;
    return 1;
}

/* Replaces m's protocols with copies of r's. */
static int set_protocols(member_t *m, const grp_join_req_t *r)
{
    size_t n = r->nprotocols;
    char **pn = calloc(n + 1, sizeof *pn);
    uint8_t **pm = calloc(n + 1, sizeof *pm);
    size_t *pl = calloc(n + 1, sizeof *pl);
    int ok = pn && pm && pl;
    for (size_t i = 0; ok && i < n; i++) {
        pn[i] = strdup(r->protocols[i].name);
        pm[i] = malloc(r->protocols[i].meta_len + 1);
        ok = pn[i] && pm[i];
        if (ok && r->protocols[i].meta_len)
            memcpy(pm[i], r->protocols[i].meta, r->protocols[i].meta_len);
        pl[i] = r->protocols[i].meta_len;
    }
    if (!ok) {
        for (size_t i = 0; pn && pm && i < n; i++) {
            free(pn[i]);
            free(pm[i]);
        }
        free(pn);
        free(pm);
        free(pl);
        return SL_ERR_NOMEM;
    }
    for (size_t i = 0; i < m->nproto; i++) {
        free(m->pname[i]);
        free(m->pmeta[i]);
    }
    free(m->pname);
    free(m->pmeta);
    free(m->pmeta_len);
    m->pname = pn;
    m->pmeta = pm;
    m->pmeta_len = pl;
    m->nproto = n;
    return SL_OK;
}

/* Checks a JoinGroup's own fields; SL_OK or a code with msg. */
static int check_join(grp_coord_t *g, const grp_join_req_t *r, char *msg, size_t len)
{
    if (!valid_group_id(r->group_id)) {
        snprintf(msg, len, "group id must be 1..%d bytes", GRP_MAX_ID);
        return SL_ERR_INVALID_GROUP_ID;
    }
    if (r->session_ms < g->conf.min_session_ms || r->session_ms > g->conf.max_session_ms) {
        snprintf(msg, len, "session timeout %" PRId64 " ms is outside %" PRId64 "..%" PRId64 " ms",
                 r->session_ms, g->conf.min_session_ms, g->conf.max_session_ms);
        return SL_ERR_INVALID_SESSION_TIMEOUT;
    }
    if ((r->member_id && strlen(r->member_id) > GRP_MAX_ID) ||
        (r->client_id && strlen(r->client_id) > GRP_MAX_ID) ||
        (r->host && strlen(r->host) > GRP_MAX_ID) ||
        (r->protocol_type && strlen(r->protocol_type) > GRP_MAX_ID)) {
        snprintf(msg, len, "member id, client id, host and protocol type are at most %d bytes",
                 GRP_MAX_ID);
        return SL_ERR_INVALID_REQUEST;
    }
    if (r->nprotocols == 0 || r->nprotocols > GRP_MAX_PROTOCOLS) {
        snprintf(msg, len, "%zu protocols; 1..%d are allowed", r->nprotocols, GRP_MAX_PROTOCOLS);
        return SL_ERR_INCONSISTENT_GROUP_PROTOCOL;
    }
    for (size_t i = 0; i < r->nprotocols; i++) {
        const grp_protocol_t *p = &r->protocols[i];
        if (!p->name || !*p->name || strlen(p->name) > GRP_MAX_ID ||
            p->meta_len > GRP_MAX_METADATA) {
            snprintf(msg, len, "protocol %zu: name must be 1..%d bytes, metadata at most %d", i,
                     GRP_MAX_ID, GRP_MAX_METADATA);
            return SL_ERR_INVALID_REQUEST;
        }
        if (r->mode == GRP_MODE_BROKER) {
            if (!grp_assignor(p->name)) {
                snprintf(msg, len, "unknown assignor \"%.64s\"; use range or roundrobin", p->name);
                return SL_ERR_INCONSISTENT_GROUP_PROTOCOL;
            }
            char **t;
            size_t nt;
            if (grp_subscription_decode(p->meta, p->meta_len, &t, &nt) != SL_OK) {
                snprintf(msg, len, "malformed subscription (or more than %d topics)",
                         GRP_MAX_TOPICS);
                return SL_ERR_INVALID_REQUEST;
            }
            grp_strings_free(t, nt);
        }
    }
    return SL_OK;
}

static void join_locked(grp_coord_t *g, const grp_join_req_t *r, int64_t now_ms, grp_join_fn done,
                        void *arg, outbox_t *ob)
{
    char msg[160];
    int code = check_join(g, r, msg, sizeof msg);
    const char *mid = r->member_id ? r->member_id : "";
    const char *ptype = r->protocol_type ? r->protocol_type : "";
    if (code != SL_OK) {
        ob_join_error(ob, done, arg, code, msg, mid);
        return;
    }
    if (g->closing) {
        ob_join_error(ob, done, arg, SL_ERR_REBALANCE_IN_PROGRESS, "broker shutting down", mid);
        return;
    }
    group_t *gr = group_find(g, r->group_id);
    if (!gr && *mid) {
        ob_join_error(ob, done, arg, SL_ERR_UNKNOWN_MEMBER_ID, "no such group", mid);
        return;
    }
    if (!gr && !(gr = group_create(g, r->group_id))) {
        ob_join_error(ob, done, arg, SL_ERR_INVALID_REQUEST,
                      "too many groups (10000 live groups, none empty)", mid);
        return;
    }
    member_t *m = *mid ? member_find(gr, mid) : NULL;
    if (*mid && !m) {
        ob_join_error(ob, done, arg, SL_ERR_UNKNOWN_MEMBER_ID, "unknown member id", mid);
        return;
    }
    if (gr->nmembers > 0) {
        if (gr->mode != r->mode || strcmp(gr->protocol_type, ptype) != 0) {
            ob_join_error(ob, done, arg, SL_ERR_INCONSISTENT_GROUP_PROTOCOL,
                          gr->mode != r->mode
                              ? "the group assigns partitions the other way (broker vs client)"
                              : "protocol type differs from the group's",
                          mid);
            return;
        }
        int common = 0;
        for (size_t k = 0; k < r->nprotocols && !common; k++) {
            int all = 1;
            for (size_t i = 0; i < gr->nmembers && all; i++)
                if (gr->members[i] != m)
                    all = member_supports(gr->members[i], r->protocols[k].name);
            common = all;
        }
        if (!common) {
            ob_join_error(ob, done, arg, SL_ERR_INCONSISTENT_GROUP_PROTOCOL,
                          "no protocol (assignor) in common with the group's members", mid);
            return;
        }
    }
    if (m && (gr->state == GRP_STABLE || gr->state == GRP_COMPLETING_REBALANCE) &&
        same_protocols(m, r) &&
        !(gr->state == GRP_STABLE && strcmp(gr->leader, m->id) == 0 &&
          gr->mode == GRP_MODE_CLIENT)) {
        /* A retried or repeated join changes nothing: hand back the current
         * generation instead of disturbing everyone (Kafka does the same;
         * a client-mode leader rejoining in Stable is the exception, since
         * it wants to assign again). */
        m->deadline_ms = now_ms + m->session_ms;
        delivery_t *d = ob_push(ob, done, NULL, arg, SL_OK, NULL);
        if (d->jf) {
            d->generation = gr->generation;
            d->member_id = dupn(m->id);
            d->leader = dupn(gr->leader);
            d->protocol = dupn(gr->protocol);
        }
        return;
    }
    if (!m) {
        if (gr->nmembers >= GRP_MAX_MEMBERS) {
            ob_join_error(ob, done, arg, SL_ERR_INVALID_REQUEST, "group has 1000 members", mid);
            return;
        }
        m = calloc(1, sizeof *m);
        char id[GRP_MAX_ID + 1];
        uint64_t x = (g->seed + ++g->next_member) * 0x9E3779B97F4A7C15ull;
        snprintf(id, sizeof id, "%.64s-%016" PRIx64 "%04" PRIx64,
                 r->client_id && *r->client_id ? r->client_id : "member", x,
                 g->next_member & 0xffff);
        if (m) {
            m->id = strdup(id);
            m->client_id = dupn(r->client_id);
            m->host = dupn(r->host);
        }
        if (!m || !m->id || !m->client_id || !m->host || set_protocols(m, r) != SL_OK ||
            group_insert_member(gr, m) != SL_OK) {
            member_free(m);
            ob_join_error(ob, done, arg, SL_ERR_NOMEM, "out of memory", mid);
            return;
        }
        if (gr->nmembers == 1) {
            gr->mode = r->mode;
            snprintf(gr->protocol_type, sizeof gr->protocol_type, "%s", ptype);
        }
        log_info("group", "group %s: member %s joins (client %s, %s)", gr->id, m->id, m->client_id,
                 m->host);
    } else if (set_protocols(m, r) != SL_OK) {
        ob_join_error(ob, done, arg, SL_ERR_NOMEM, "out of memory", mid);
        return;
    }
    m->session_ms = r->session_ms;
    m->rebalance_ms = r->rebalance_ms > 0 ? r->rebalance_ms : r->session_ms;
    if (m->rebalance_ms > GRP_MAX_REBALANCE) m->rebalance_ms = GRP_MAX_REBALANCE;
    if (m->join_fn) /* invariant 1: the older join is answered, the newer parks */
        ob_join_error(ob, m->join_fn, m->join_arg, SL_ERR_REBALANCE_IN_PROGRESS,
                      "replaced by a newer JoinGroup of the same member", m->id);
    if (m->sync_fn)
        ob_sync(ob, m->sync_fn, m->sync_arg, SL_ERR_REBALANCE_IN_PROGRESS, "rejoining", NULL, 0);
    m->sync_fn = NULL;
    m->join_fn = done;
    m->join_arg = arg;
    prepare_rebalance(g, gr, now_ms, ob, "a member joined");
    maybe_complete(g, gr, now_ms, ob);
}

void grp_join(grp_coord_t *g, const grp_join_req_t *req, int64_t now_ms, grp_join_fn done,
              void *arg)
{
    outbox_t ob;
    ob_init(&ob);
    pthread_mutex_lock(&g->mu);
    join_locked(g, req, now_ms, done, arg, &ob);
    pthread_mutex_unlock(&g->mu);
    ob_flush(&ob);
}

/* Common checks of Sync/Heartbeat: group and member exist, generation. */
static int lookup_member(grp_coord_t *g, const char *group_id, const char *member_id, group_t **gr,
                         member_t **m, char *msg, size_t len)
{
    if (!valid_group_id(group_id)) {
        snprintf(msg, len, "group id must be 1..%d bytes", GRP_MAX_ID);
        return SL_ERR_INVALID_GROUP_ID;
    }
    *gr = group_find(g, group_id);
    *m = *gr && member_id ? member_find(*gr, member_id) : NULL;
    if (!*m) {
        snprintf(msg, len, "%s", *gr ? "unknown member id" : "no such group");
        return SL_ERR_UNKNOWN_MEMBER_ID;
    }
    return SL_OK;
}

void grp_sync(grp_coord_t *g, const char *group_id, int32_t generation, const char *member_id,
              const grp_member_assignment_t *as, size_t n, int64_t now_ms, grp_sync_fn done,
              void *arg)
{
    outbox_t ob;
    ob_init(&ob);
    char msg[160] = "";
    group_t *gr;
    member_t *m;
    pthread_mutex_lock(&g->mu);
    int code = lookup_member(g, group_id, member_id, &gr, &m, msg, sizeof msg);
    if (code == SL_OK && g->closing) {
        code = SL_ERR_REBALANCE_IN_PROGRESS;
        snprintf(msg, sizeof msg, "broker shutting down");
    } else if (code == SL_OK && generation != gr->generation) {
        code = SL_ERR_ILLEGAL_GENERATION;
        snprintf(msg, sizeof msg, "generation %" PRId32 " is not the group's %" PRId32, generation,
                 gr->generation);
    } else if (code == SL_OK && gr->state == GRP_PREPARING_REBALANCE) {
        code = SL_ERR_REBALANCE_IN_PROGRESS;
        snprintf(msg, sizeof msg, "the group is rebalancing: rejoin");
    } else if (code == SL_OK && n > GRP_MAX_MEMBERS) {
        code = SL_ERR_INVALID_REQUEST;
        snprintf(msg, sizeof msg, "%zu assignments; at most %d", n, GRP_MAX_MEMBERS);
    }
    for (size_t i = 0; code == SL_OK && i < n; i++)
        if (as[i].len > GRP_MAX_METADATA) {
            code = SL_ERR_INVALID_REQUEST;
            snprintf(msg, sizeof msg, "assignment of %zu bytes; at most %d", as[i].len,
                     GRP_MAX_METADATA);
        }
    if (code != SL_OK) {
        ob_sync(&ob, done, arg, code, msg, NULL, 0);
    } else {
        m->deadline_ms = now_ms + m->session_ms;
        if (gr->state == GRP_COMPLETING_REBALANCE && strcmp(gr->leader, m->id) == 0) {
            /* The leader's assignment: members it names get theirs, the
             * others an empty one (Kafka does the same). */
            for (size_t i = 0; i < gr->nmembers; i++) {
                member_t *x = gr->members[i];
                free(x->assignment);
                x->assignment = NULL;
                x->assignment_len = 0;
            }
            for (size_t i = 0; i < n; i++) {
                member_t *x = as[i].member_id ? member_find(gr, as[i].member_id) : NULL;
                if (!x || !as[i].len || x->assignment) continue;
                if ((x->assignment = malloc(as[i].len))) {
                    memcpy(x->assignment, as[i].bytes, as[i].len);
                    x->assignment_len = as[i].len;
                }
            }
            gr->state = GRP_STABLE;
            log_info("group", "group %s: stable at generation %" PRId32, gr->id, gr->generation);
            for (size_t i = 0; i < gr->nmembers; i++) {
                member_t *x = gr->members[i];
                if (!x->sync_fn) continue;
                ob_sync(&ob, x->sync_fn, x->sync_arg, SL_OK, NULL, x->assignment,
                        x->assignment_len);
                x->sync_fn = NULL;
                x->deadline_ms = now_ms + x->session_ms;
            }
        }
        if (gr->state == GRP_STABLE) {
            ob_sync(&ob, done, arg, SL_OK, NULL, m->assignment, m->assignment_len);
        } else { /* a follower before the leader: park */
            if (m->sync_fn)
                ob_sync(&ob, m->sync_fn, m->sync_arg, SL_ERR_REBALANCE_IN_PROGRESS,
                        "replaced by a newer SyncGroup", NULL, 0);
            m->sync_fn = done;
            m->sync_arg = arg;
        }
    }
    pthread_mutex_unlock(&g->mu);
    ob_flush(&ob);
}

int grp_heartbeat(grp_coord_t *g, const char *group_id, int32_t generation, const char *member_id,
                  int64_t now_ms)
{
    char msg[160];
    group_t *gr;
    member_t *m;
    pthread_mutex_lock(&g->mu);
    int code = lookup_member(g, group_id, member_id, &gr, &m, msg, sizeof msg);
    if (code == SL_OK) {
        if (generation != gr->generation)
            code = SL_ERR_ILLEGAL_GENERATION;
        else if (gr->state == GRP_PREPARING_REBALANCE)
            code = SL_ERR_REBALANCE_IN_PROGRESS;
        /* Refreshed also when told to rejoin: the member needs its session
         * to get the JoinGroup in. */
        if (code != SL_ERR_ILLEGAL_GENERATION) m->deadline_ms = now_ms + m->session_ms;
    }
    pthread_mutex_unlock(&g->mu);
    return code;
}

int grp_leave(grp_coord_t *g, const char *group_id, const char *member_id, int64_t now_ms)
{
    outbox_t ob;
    ob_init(&ob);
    char msg[160];
    group_t *gr;
    member_t *m;
    pthread_mutex_lock(&g->mu);
    int code = lookup_member(g, group_id, member_id, &gr, &m, msg, sizeof msg);
    if (code == SL_OK) {
        int found;
        size_t i = member_pos(gr, m->id, &found);
        remove_member(gr, i, &ob, "left the group");
        membership_changed(g, gr, now_ms, &ob, "a member left");
    }
    pthread_mutex_unlock(&g->mu);
    ob_flush(&ob);
    return code;
}

int grp_commit_check(grp_coord_t *g, const char *group_id, int32_t generation,
                     const char *member_id, int64_t now_ms)
{
    if (!valid_group_id(group_id)) return SL_ERR_INVALID_GROUP_ID;
    pthread_mutex_lock(&g->mu);
    group_t *gr = group_find(g, group_id);
    int code = SL_OK;
    if (generation < 0 && (!gr || gr->state == GRP_EMPTY)) {
        code = SL_OK; /* a consumer that assigns itself partitions */
    } else {
        member_t *m = gr && member_id ? member_find(gr, member_id) : NULL;
        if (!m)
            code = SL_ERR_UNKNOWN_MEMBER_ID;
        else if (generation != gr->generation)
            code = SL_ERR_ILLEGAL_GENERATION;
        else if (gr->state == GRP_COMPLETING_REBALANCE)
            code = SL_ERR_REBALANCE_IN_PROGRESS;
        if (m && code == SL_OK) m->deadline_ms = now_ms + m->session_ms;
    }
    pthread_mutex_unlock(&g->mu);
    return code;
}

void grp_tick(grp_coord_t *g, int64_t now_ms)
{
    outbox_t ob;
    ob_init(&ob);
    pthread_mutex_lock(&g->mu);
    for (size_t k = 0; k < g->ngroups; k++) {
        group_t *gr = g->groups[k];
        int died = 0;
        for (size_t i = gr->nmembers; i-- > 0;) {
            member_t *m = gr->members[i];
            if (m->join_fn || m->sync_fn || now_ms < m->deadline_ms) continue; /* invariant 3 */
            char why[96];
            snprintf(why, sizeof why, "no heartbeat within its session timeout (%" PRId64 " ms)",
                     m->session_ms);
            remove_member(gr, i, &ob, why);
            died = 1;
        }
        if (died) membership_changed(g, gr, now_ms, &ob, "a member's session expired");
        maybe_complete(g, gr, now_ms, &ob);
    }
    pthread_mutex_unlock(&g->mu);
    ob_flush(&ob);
}

int grp_list(grp_coord_t *g, grp_summary_t **out, size_t *n)
{
    pthread_mutex_lock(&g->mu);
    *n = g->ngroups;
    *out = calloc(g->ngroups + 1, sizeof **out);
    if (!*out) {
        *n = 0;
        pthread_mutex_unlock(&g->mu);
        return SL_ERR_NOMEM;
    }
    for (size_t i = 0; i < g->ngroups; i++) {
        snprintf((*out)[i].group_id, sizeof(*out)[i].group_id, "%s", g->groups[i]->id);
        (*out)[i].state = g->groups[i]->state;
        (*out)[i].members = (uint32_t)g->groups[i]->nmembers;
    }
    pthread_mutex_unlock(&g->mu);
    return SL_OK;
}

void grp_desc_free(grp_desc_t *d)
{
    if (!d) return;
    for (size_t i = 0; i < d->nmembers; i++) {
        free(d->members[i].member_id);
        free(d->members[i].client_id);
        free(d->members[i].host);
        free(d->members[i].assignment);
    }
    free(d->members);
    d->members = NULL;
    d->nmembers = 0;
}

int grp_describe(grp_coord_t *g, const char *group_id, grp_desc_t *out)
{
    memset(out, 0, sizeof *out);
    if (!valid_group_id(group_id)) return SL_ERR_INVALID_GROUP_ID;
    pthread_mutex_lock(&g->mu);
    group_t *gr = group_find(g, group_id);
    int rc = SL_OK;
    if (!gr) {
        rc = SL_ERR_GROUP_ID_NOT_FOUND;
        goto out;
    }
    snprintf(out->group_id, sizeof out->group_id, "%s", gr->id);
    out->state = gr->state;
    out->generation = gr->generation;
    out->mode = gr->mode;
    snprintf(out->protocol_type, sizeof out->protocol_type, "%s", gr->protocol_type);
    snprintf(out->protocol, sizeof out->protocol, "%s", gr->protocol);
    snprintf(out->leader, sizeof out->leader, "%s", gr->leader);
    out->members = calloc(gr->nmembers + 1, sizeof *out->members);
    if (!out->members) {
        rc = SL_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < gr->nmembers; i++) {
        member_t *m = gr->members[i];
        grp_member_desc_t *d = &out->members[i];
        out->nmembers = i + 1;
        d->member_id = dupn(m->id);
        d->client_id = dupn(m->client_id);
        d->host = dupn(m->host);
        if (m->assignment_len && (d->assignment = malloc(m->assignment_len))) {
            memcpy(d->assignment, m->assignment, m->assignment_len);
            d->assignment_len = m->assignment_len;
        }
        if (!d->member_id || !d->client_id || !d->host) rc = SL_ERR_NOMEM;
    }
out:
    pthread_mutex_unlock(&g->mu);
    return rc;
}
