/* admin.c — the admin API: blocking request/response calls over one
 * connection, for tools (the sluice CLI) rather than data paths.
 *
 * One blocking socket per handle, one request at a time: an admin call is
 * rare and small, so pipelining or an I/O thread would buy nothing. Every
 * call is bounded by request.timeout.ms (connect, write and read together).
 * A call that times out or breaks the stream closes the connection (call.c),
 * because a late response would otherwise be taken as the answer to the
 * next request; the next call reconnects (first reachable bootstrap server).
 *
 * A handle is used by one thread at a time (no locking).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "internal.h"

#define ADMIN_MAX_RESPONSE (64u << 20)

struct sluice_admin_s {
    sluice_conf_t *conf;
    sl_callconn_t conn; /* peer: the bootstrap server it is connected to */
};

static int remaining(int64_t deadline)
{
    int64_t left = deadline - sl_mono_ms();
    return left > 0 ? (int)left : 0;
}

/* Tries each bootstrap server in order; SLUICE_OK or SLUICE_ERR__TRANSPORT
 * naming every server and why it failed. */
static int ensure_connected(sluice_admin_t *a, int64_t deadline, char *errstr, size_t errstr_size)
{
    if (a->conn.fd >= 0) return SLUICE_OK;
    const char *s = a->conf->bootstrap_servers ? a->conf->bootstrap_servers : "";
    char why[512] = "";
    size_t wl = 0;
    while (*s) {
        size_t len = strcspn(s, ",");
        char server[256];
        const char *p = s;
        size_t l = len;
        while (l && (*p == ' ' || *p == '\t')) p++, l--;
        while (l && (p[l - 1] == ' ' || p[l - 1] == '\t')) l--;
        s += len + (s[len] == ',');
        if (l == 0 || l >= sizeof server) continue;
        memcpy(server, p, l);
        server[l] = '\0';
        int fd = sl_net_dial_wait(server, remaining(deadline));
        if (fd >= 0) {
            a->conn.fd = fd;
            snprintf(a->conn.peer, sizeof a->conn.peer, "%s", server);
            return SLUICE_OK;
        }
        int n = snprintf(why + wl, sizeof why - wl, "%s%s: %s", wl ? "; " : "", server,
                         errno == ETIMEDOUT ? "connect timed out" : strerror(errno));
        if (n > 0 && (size_t)n < sizeof why - wl) wl += (size_t)n;
        if (remaining(deadline) == 0) break;
    }
    sl_errf(errstr, errstr_size, "cannot connect to bootstrap.servers (%s)",
            wl ? why : "no server given");
    return SLUICE_ERR__TRANSPORT;
}

/* Sends one request and receives its response, decoding the body with
 * desc into the connection's arena (valid until the next call). Returns
 * the broker's error code (its message in errstr) or a local error; *body
 * is set only on SLUICE_OK. */
static int call(sluice_admin_t *a, int api, const ProtobufCMessage *req,
                const ProtobufCMessageDescriptor *desc, ProtobufCMessage **body, char *errstr,
                size_t errstr_size)
{
    int64_t deadline = sl_mono_ms() + a->conf->request_timeout_ms;
    int rc = ensure_connected(a, deadline, errstr, errstr_size);
    if (rc != SLUICE_OK) return rc;
    rc = sl_call(&a->conn, api, req, desc, deadline, NULL, NULL, body, errstr, errstr_size);
    if (rc == SLUICE_ERR__TIMED_OUT && errstr && errstr_size) {
        size_t l = strlen(errstr);
        sl_errf(errstr + l, errstr_size - l, " (request.timeout.ms=%d)",
                a->conf->request_timeout_ms);
    } else if (rc > 0 && errstr && errstr_size && !errstr[0]) {
        /* A broker error without a message still gets a readable one. */
        sl_errf(errstr, errstr_size, "%s", sluice_err2str(rc));
    }
    return rc;
}

SLUICE_API sluice_admin_t *sluice_admin_new(sluice_conf_t *conf, char *errstr, size_t errstr_size)
{
    if (!conf) {
        sl_errf(errstr, errstr_size, "conf is NULL");
        return NULL;
    }
    sluice_admin_t *a = calloc(1, sizeof *a);
    if (!a) {
        sl_errf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    a->conf = conf;
    sl_callconn_init(&a->conn, ADMIN_MAX_RESPONSE);
    /* Connect now so that an unreachable broker is reported where the
     * handle is made, which is where a tool wants to say so. */
    if (ensure_connected(a, sl_mono_ms() + conf->request_timeout_ms, errstr, errstr_size) !=
        SLUICE_OK) {
        a->conf = NULL; /* still the caller's */
        sluice_admin_destroy(a);
        return NULL;
    }
    return a;
}

SLUICE_API void sluice_admin_destroy(sluice_admin_t *a)
{
    if (!a) return;
    sl_callconn_free(&a->conn);
    sluice_conf_destroy(a->conf);
    free(a);
}

SLUICE_API int sluice_admin_create_topic(sluice_admin_t *a, const char *topic, int32_t partitions,
                                         const char *const *configs, size_t n, char *errstr,
                                         size_t errstr_size)
{
    if (!a || !topic || partitions < 0 || (n && !configs)) {
        sl_errf(errstr, errstr_size, "invalid argument");
        return SLUICE_ERR__INVALID_ARG;
    }
    Sluice__CreateTopicRequest req = SLUICE__CREATE_TOPIC_REQUEST__INIT;
    req.name = (char *)topic;
    req.partitions = partitions;
    Sluice__CreateTopicRequest__ConfigsEntry *ents = n ? calloc(n, sizeof *ents) : NULL;
    Sluice__CreateTopicRequest__ConfigsEntry **ptrs = n ? calloc(n, sizeof *ptrs) : NULL;
    char **copies = n ? calloc(n, sizeof *copies) : NULL;
    int rc = SLUICE_OK;
    if (n && (!ents || !ptrs || !copies)) {
        sl_errf(errstr, errstr_size, "out of memory");
        rc = SLUICE_ERR__NO_MEMORY;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const char *eq = configs[i] ? strchr(configs[i], '=') : NULL;
        if (!eq || eq == configs[i]) {
            sl_errf(errstr, errstr_size, "topic config \"%s\" is not key=value",
                    configs[i] ? configs[i] : "(null)");
            rc = SLUICE_ERR__INVALID_ARG;
            goto out;
        }
        if (!(copies[i] = strdup(configs[i]))) {
            sl_errf(errstr, errstr_size, "out of memory");
            rc = SLUICE_ERR__NO_MEMORY;
            goto out;
        }
        char *e = copies[i] + (eq - configs[i]);
        *e = '\0';
        sluice__create_topic_request__configs_entry__init(&ents[i]);
        ents[i].key = copies[i];
        ents[i].value = e + 1;
        ptrs[i] = &ents[i];
    }
    req.configs = ptrs;
    req.n_configs = n;
    ProtobufCMessage *body;
    rc = call(a, SLUICE__API_KEY__CREATE_TOPIC, &req.base,
              &sluice__create_topic_response__descriptor, &body, errstr, errstr_size);
out:
    if (copies)
        for (size_t i = 0; i < n; i++) free(copies[i]);
    free(copies);
    free(ptrs);
    free(ents);
    return rc;
}

SLUICE_API int sluice_admin_delete_topic(sluice_admin_t *a, const char *topic, char *errstr,
                                         size_t errstr_size)
{
    if (!a || !topic) {
        sl_errf(errstr, errstr_size, "invalid argument");
        return SLUICE_ERR__INVALID_ARG;
    }
    Sluice__DeleteTopicRequest req = SLUICE__DELETE_TOPIC_REQUEST__INIT;
    req.name = (char *)topic;
    ProtobufCMessage *body;
    return call(a, SLUICE__API_KEY__DELETE_TOPIC, &req.base,
                &sluice__delete_topic_response__descriptor, &body, errstr, errstr_size);
}

static int add_topic(sluice_tp_list_t *l, const Sluice__TopicMetadata *t)
{
    if (t->error_code != 0) {
        sluice_topic_partition_t *e = sluice_tp_list_add(l, t->name, -1);
        if (!e) return -1;
        e->err = sl_client_code_from_wire(t->error_code);
        return 0;
    }
    for (size_t j = 0; j < t->n_partitions; j++) {
        sluice_topic_partition_t *e = sluice_tp_list_add(l, t->name, t->partitions[j]->partition);
        if (!e) return -1;
        e->offset = t->partitions[j]->log_end_offset;
    }
    return 0;
}

SLUICE_API int sluice_admin_describe_topics(sluice_admin_t *a, const char *const *topics, size_t n,
                                            sluice_tp_list_t **out, char *errstr,
                                            size_t errstr_size)
{
    if (!a || !out || (n && !topics)) {
        sl_errf(errstr, errstr_size, "invalid argument");
        return SLUICE_ERR__INVALID_ARG;
    }
    *out = NULL;
    /* Always ask for every topic and filter here: the broker's Metadata
     * auto-creates named topics (auto.create.topics.enable), and describing
     * a topic must never create it. */
    Sluice__MetadataRequest req = SLUICE__METADATA_REQUEST__INIT;
    ProtobufCMessage *body;
    int rc = call(a, SLUICE__API_KEY__METADATA, &req.base, &sluice__metadata_response__descriptor,
                  &body, errstr, errstr_size);
    if (rc != SLUICE_OK) return rc;
    const Sluice__MetadataResponse *m = (const Sluice__MetadataResponse *)body;
    sluice_tp_list_t *l = sluice_tp_list_new(16);
    if (!l) goto oom;
    if (!topics) {
        for (size_t i = 0; i < m->n_topics; i++)
            if (add_topic(l, m->topics[i]) != 0) goto oom;
    } else {
        for (size_t k = 0; k < n; k++) {
            const Sluice__TopicMetadata *found = NULL;
            for (size_t i = 0; i < m->n_topics && !found; i++)
                if (topics[k] && strcmp(m->topics[i]->name, topics[k]) == 0) found = m->topics[i];
            if (found) {
                if (add_topic(l, found) != 0) goto oom;
            } else {
                sluice_topic_partition_t *e = sluice_tp_list_add(l, topics[k] ? topics[k] : "", -1);
                if (!e) goto oom;
                e->err = SLUICE_ERR_UNKNOWN_TOPIC_OR_PARTITION;
            }
        }
    }
    *out = l;
    return SLUICE_OK;
oom:
    sluice_tp_list_destroy(l);
    sl_errf(errstr, errstr_size, "out of memory");
    return SLUICE_ERR__NO_MEMORY;
}

static char *dupstr(const char *s)
{
    return strdup(s ? s : "");
}

SLUICE_API int sluice_admin_list_groups(sluice_admin_t *a, sluice_group_info_t **out, size_t *n,
                                        char *errstr, size_t errstr_size)
{
    if (!a || !out || !n) {
        sl_errf(errstr, errstr_size, "invalid argument");
        return SLUICE_ERR__INVALID_ARG;
    }
    *out = NULL;
    *n = 0;
    Sluice__ListGroupsRequest req = SLUICE__LIST_GROUPS_REQUEST__INIT;
    ProtobufCMessage *body;
    int rc = call(a, SLUICE__API_KEY__LIST_GROUPS, &req.base,
                  &sluice__list_groups_response__descriptor, &body, errstr, errstr_size);
    if (rc != SLUICE_OK) return rc;
    const Sluice__ListGroupsResponse *r = (const Sluice__ListGroupsResponse *)body;
    /* One spare element so that an empty list is still a valid pointer. */
    sluice_group_info_t *g = calloc(r->n_groups + 1, sizeof *g);
    if (!g) goto oom;
    for (size_t i = 0; i < r->n_groups; i++) {
        g[i].group_id = dupstr(r->groups[i]->group_id);
        g[i].state = dupstr(r->groups[i]->state);
        g[i].assignor = dupstr("");
        g[i].generation = -1;
        g[i].member_count = r->groups[i]->members;
        if (!g[i].group_id || !g[i].state || !g[i].assignor) {
            sluice_group_infos_destroy(g, i + 1);
            goto oom;
        }
    }
    *out = g;
    *n = r->n_groups;
    return SLUICE_OK;
oom:
    sl_errf(errstr, errstr_size, "out of memory");
    return SLUICE_ERR__NO_MEMORY;
}

static sluice_tp_list_t *tp_from_wire(Sluice__TopicPartitions *const *tps, size_t n)
{
    sluice_tp_list_t *l = sluice_tp_list_new(n ? n : 1);
    if (!l) return NULL;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < tps[i]->n_partitions; j++)
            if (!sluice_tp_list_add(l, tps[i]->topic, tps[i]->partitions[j])) {
                sluice_tp_list_destroy(l);
                return NULL;
            }
    return l;
}

SLUICE_API int sluice_admin_describe_group(sluice_admin_t *a, const char *group,
                                           sluice_group_info_t **out, char *errstr,
                                           size_t errstr_size)
{
    if (!a || !group || !out) {
        sl_errf(errstr, errstr_size, "invalid argument");
        return SLUICE_ERR__INVALID_ARG;
    }
    *out = NULL;
    Sluice__DescribeGroupRequest req = SLUICE__DESCRIBE_GROUP_REQUEST__INIT;
    req.group_id = (char *)group;
    ProtobufCMessage *body;
    int rc = call(a, SLUICE__API_KEY__DESCRIBE_GROUP, &req.base,
                  &sluice__describe_group_response__descriptor, &body, errstr, errstr_size);
    if (rc != SLUICE_OK) return rc;
    const Sluice__DescribeGroupResponse *r = (const Sluice__DescribeGroupResponse *)body;
    sluice_group_info_t *g = calloc(1, sizeof *g);
    if (!g) goto oom;
    g->group_id = dupstr(r->group_id && *r->group_id ? r->group_id : group);
    g->state = dupstr(r->state);
    g->assignor = dupstr(r->assignor);
    g->generation = r->generation_id;
    g->members = calloc(r->n_members + 1, sizeof *g->members);
    g->committed = sluice_tp_list_new(r->n_offsets ? r->n_offsets : 1);
    g->log_end = calloc(r->n_offsets + 1, sizeof *g->log_end);
    if (!g->group_id || !g->state || !g->assignor || !g->members || !g->committed || !g->log_end)
        goto oom_free;
    for (size_t i = 0; i < r->n_members; i++) {
        const Sluice__GroupMember *m = r->members[i];
        sluice_group_member_t *gm = &g->members[g->member_count++];
        gm->member_id = dupstr(m->member_id);
        gm->client_id = dupstr(m->client_id);
        gm->host = dupstr(m->host);
        gm->assignment = tp_from_wire(m->assignment, m->n_assignment);
        if (!gm->member_id || !gm->client_id || !gm->host || !gm->assignment) goto oom_free;
    }
    for (size_t i = 0; i < r->n_offsets; i++) {
        const Sluice__PartitionOffset *po = r->offsets[i];
        sluice_topic_partition_t *e = sluice_tp_list_add(g->committed, po->topic, po->partition);
        if (!e) goto oom_free;
        e->offset = po->offset;
        e->err = sl_client_code_from_wire(po->error_code);
        g->log_end[i] = po->log_end_offset;
    }
    *out = g;
    return SLUICE_OK;
oom_free:
    sluice_group_infos_destroy(g, 1);
oom:
    sl_errf(errstr, errstr_size, "out of memory");
    return SLUICE_ERR__NO_MEMORY;
}

SLUICE_API void sluice_group_infos_destroy(sluice_group_info_t *infos, size_t n)
{
    if (!infos) return;
    for (size_t i = 0; i < n; i++) {
        sluice_group_info_t *g = &infos[i];
        free(g->group_id);
        free(g->state);
        free(g->assignor);
        for (size_t j = 0; j < g->member_count; j++) {
            free(g->members[j].member_id);
            free(g->members[j].client_id);
            free(g->members[j].host);
            sluice_tp_list_destroy(g->members[j].assignment);
        }
        free(g->members);
        sluice_tp_list_destroy(g->committed);
        free(g->log_end);
    }
    free(infos);
}
