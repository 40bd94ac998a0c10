/* k_meta.c — the Kafka listener's cluster-level requests: ApiVersions,
 * Metadata, CreateTopics, DeleteTopics, FindCoordinator, InitProducerId;
 * plus the advertised address and the persistent cluster id.
 *
 * Sluice is one node: every partition's leader, the controller and every
 * group's coordinator is this broker (node.id), reached at the advertised
 * address. Topics live in the same store as Sluice's protocol uses.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dispatch.h"
#include "kdispatch.h"
#include "log.h"
#include "offsets.h"
#include "svc_produce.h"
#include "svc_topics.h"

void kafka_advertise(broker_t *b, const char *host, int port)
{
    int p = 0;
    char h[256];
    if (b->conf.kafka_advertised[0] &&
        conf_parse_hostport(b->conf.kafka_advertised, h, sizeof h, &p, NULL) == SL_OK) {
        snprintf(b->kafka_adv_host, sizeof b->kafka_adv_host, "%s", h);
        b->kafka_adv_port = p;
        return;
    }
    /* A wildcard bind is reachable on loopback; anything else would be a
     * guess: kafka.advertised.listener says it. */
    if (!host[0] || !strcmp(host, "0.0.0.0") || !strcmp(host, "::") || !strcmp(host, "[::]"))
        host = "127.0.0.1";
    snprintf(b->kafka_adv_host, sizeof b->kafka_adv_host, "%s", host);
    b->kafka_adv_port = port;
}

/* Kafka's cluster ids are 16 random bytes in unpadded base64url. */
static int new_cluster_id(char *out, size_t len)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint8_t r[16];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, r, sizeof r);
    close(fd);
    if (n != (ssize_t)sizeof r || len < 23) return -1;
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < sizeof r; i++) {
        acc = acc << 8 | r[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = b64[(acc >> bits) & 63];
        }
    }
    if (bits) out[o++] = b64[(acc << (6 - bits)) & 63];
    out[o] = 0;
    return 0;
}

int kafka_cluster_id(broker_t *b, sl_err_t *err)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/cluster.id", b->conf.log_dirs);
    FILE *f = fopen(path, "r");
    if (f) {
        char line[64] = "";
        int ok = fgets(line, sizeof line, f) != NULL;
        fclose(f);
        size_t n = ok ? strcspn(line, "\r\n") : 0;
        line[n] = 0;
        /* Anything printable and short is kept as it is (an operator may
         * set it to match a former cluster). */
        for (size_t i = 0; i < n; i++)
            if (line[i] <= ' ' || line[i] > '~') n = 0;
        if (n == 0 || n >= sizeof b->cluster_id)
            return sl_err_set(err, SL_ERR_INVALID_CONFIG,
                              "%s: not a cluster id (1..%zu printable characters)", path,
                              sizeof b->cluster_id - 1);
        memcpy(b->cluster_id, line, n + 1);
        return SL_OK;
    }
    if (errno != ENOENT) return sl_err_sys(err, errno, "%s", path);
    char id[32];
    if (new_cluster_id(id, sizeof id) < 0)
        return sl_err_set(err, SL_ERR_UNKNOWN, "cannot read /dev/urandom for a cluster id");
    /* Written whole under a temporary name, then renamed: never half a file. */
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    char line[40];
    int n = snprintf(line, sizeof line, "%s\n", id);
    if (fd < 0 || write(fd, line, (size_t)n) != n || fsync(fd) < 0 || close(fd) < 0 ||
        rename(tmp, path) < 0) {
        int e = errno;
        if (fd >= 0) close(fd);
        unlink(tmp);
        return sl_err_sys(err, e, "%s", path);
    }
    snprintf(b->cluster_id, sizeof b->cluster_id, "%s", id);
    log_info("kafka", "new cluster id %s (%s)", id, path);
    return SL_OK;
}

/* ---- ApiVersions ------------------------------------------------------------ */

void k_api_versions(conn_t *c, slot_t *s, kf_request_t *r, uint64_t t0_us)
{
    (void)t0_us;
    const int16_t *keys;
    size_t n = kf_api_list(&keys);
    kf_writer_t w;
    kw_init(&w, r->h.correlation_id);
    kw_i16(&w, 0);
    kw_i32(&w, (int32_t)n);
    for (size_t i = 0; i < n; i++) {
        kw_i16(&w, keys[i]);
        kw_i16(&w, 0);
        kw_i16(&w, (int16_t)kf_api_max(keys[i]));
    }
    if (r->h.api_version >= 1) kw_i32(&w, 0); /* throttle_time_ms */
    kafka_send(c, s, &w, KF_API_VERSIONS, SL_OK);
}

/* ---- Metadata --------------------------------------------------------------- */

/* One topic's entry: its partitions, all led by this node. Creates the
 * topic first when asked to and allowed. */
static void metadata_topic(conn_t *c, kf_writer_t *w, int ver, const char *name, int auto_create)
{
    broker_t *b = c->w->b;
    int32_t np = 0;
    sl_err_t e;
    int rc = topics_describe(b, name, auto_create, &np, &e);
    kw_i16(w, kafka_code(rc));
    kw_str(w, name);
    if (ver >= 1) kw_bool(w, strcmp(name, OFFSETS_TOPIC) == 0);
    if (rc != SL_OK) {
        kw_i32(w, 0);
        return;
    }
    int32_t node = (int32_t)b->conf.node_id;
    kw_i32(w, np);
    for (int32_t i = 0; i < np; i++) {
        kw_i16(w, 0);
        kw_i32(w, i);
        kw_i32(w, node); /* leader */
        kw_i32(w, 1);    /* replicas */
        kw_i32(w, node);
        kw_i32(w, 1); /* in-sync replicas */
        kw_i32(w, node);
    }
}

void k_metadata(conn_t *c, slot_t *s, kf_request_t *r, uint64_t t0_us)
{
    (void)t0_us;
    broker_t *b = c->w->b;
    kf_metadata_req_t *m = &r->u.metadata;
    int ver = r->h.api_version;
    kf_writer_t w;
    kw_init(&w, r->h.correlation_id);
    if (ver >= 3) kw_i32(&w, 0);
    kw_i32(&w, 1); /* brokers */
    kw_i32(&w, (int32_t)b->conf.node_id);
    kw_str(&w, b->kafka_adv_host);
    kw_i32(&w, b->kafka_adv_port);
    if (ver >= 1) kw_str(&w, NULL); /* rack */
    if (ver >= 2) kw_str(&w, b->cluster_id);
    if (ver >= 1) kw_i32(&w, (int32_t)b->conf.node_id); /* controller */
    if (m->all_topics) {
        char **names = NULL;
        size_t n = 0;
        sl_err_t e;
        if (store_topic_list(b->store, &names, &n, &e) != SL_OK) {
            log_error("kafka", "Metadata: cannot list topics: %s", e.msg);
            n = 0;
        }
        kw_i32(&w, (int32_t)n);
        for (size_t i = 0; i < n; i++) metadata_topic(c, &w, ver, names[i], 0);
        store_names_free(names, n);
    } else {
        kw_i32(&w, m->ntopics);
        for (int32_t i = 0; i < m->ntopics; i++)
            metadata_topic(c, &w, ver, m->topics[i], m->allow_auto_topic_creation);
    }
    kafka_send(c, s, &w, KF_METADATA, SL_OK);
}

/* ---- CreateTopics / DeleteTopics --------------------------------------------- */

static int create_one(conn_t *c, const kf_create_topic_t *t, int validate_only, sl_err_t *e)
{
    if (t->nassignments > 0) /* a field of Kafka's request that one node cannot honour */
        return sl_err_set(e, SL_ERR_INVALID_REQUEST,
                          "manual replica assignments are not supported (one node)");
    const char **keys = sl_arena_alloc(c->arena, ((size_t)t->nconfigs + 1) * sizeof *keys);
    const char **vals = sl_arena_alloc(c->arena, ((size_t)t->nconfigs + 1) * sizeof *vals);
    if (!keys || !vals) return sl_err_set(e, SL_ERR_INVALID_REQUEST, "too many configs");
    for (int32_t i = 0; i < t->nconfigs; i++) {
        keys[i] = t->configs[i].name;
        vals[i] = t->configs[i].value;
    }
    char who[96];
    snprintf(who, sizeof who, "kafka #%" PRIu64 " %s", c->id, c->peer);
    int64_t np = t->num_partitions == -1 ? TOPICS_DEFAULT_PARTITIONS : t->num_partitions;
    return topics_create(c->w->b, t->name, np, t->replication_factor, keys, vals,
                         (size_t)t->nconfigs, validate_only, who, e);
}

void k_create_topics(conn_t *c, slot_t *s, kf_request_t *r, uint64_t t0_us)
{
    (void)t0_us;
    kf_create_topics_req_t *m = &r->u.create_topics;
    int ver = r->h.api_version, any = SL_OK;
    kf_writer_t w;
    kw_init(&w, r->h.correlation_id);
    if (ver >= 2) kw_i32(&w, 0);
    kw_i32(&w, m->ntopics);
    for (int32_t i = 0; i < m->ntopics; i++) {
        sl_err_t e;
        e.msg[0] = 0;
        int rc = create_one(c, &m->topics[i], m->validate_only, &e);
        if (rc != SL_OK) any = rc;
        kw_str(&w, m->topics[i].name);
        kw_i16(&w, kafka_code(rc));
        if (ver >= 1) kw_str(&w, rc == SL_OK ? NULL : e.msg);
    }
    kafka_send(c, s, &w, KF_CREATE_TOPICS, any);
}

void k_delete_topics(conn_t *c, slot_t *s, kf_request_t *r, uint64_t t0_us)
{
    (void)t0_us;
    kf_delete_topics_req_t *m = &r->u.delete_topics;
    int ver = r->h.api_version, any = SL_OK;
    kf_writer_t w;
    kw_init(&w, r->h.correlation_id);
    if (ver >= 1) kw_i32(&w, 0);
    kw_i32(&w, m->nnames);
    for (int32_t i = 0; i < m->nnames; i++) {
        const char *name = m->names[i];
        sl_err_t e;
        char who[96];
        snprintf(who, sizeof who, "kafka #%" PRIu64 " %s", c->id, c->peer);
        int rc = topics_delete(c->w->b, name, who, &e);
        if (rc != SL_OK) any = rc;
        kw_str(&w, name);
        kw_i16(&w, kafka_code(rc));
    }
    kafka_send(c, s, &w, KF_DELETE_TOPICS, any);
}

/* ---- FindCoordinator ------------------------------------------------------------ */

void k_find_coordinator(conn_t *c, slot_t *s, kf_request_t *r, uint64_t t0_us)
{
    (void)t0_us;
    broker_t *b = c->w->b;
    kf_find_coordinator_req_t *m = &r->u.find_coordinator;
    int ver = r->h.api_version;
    /* Groups only: transactions (key_type 1) have no coordinator here. */
    int rc = m->key_type == 0 ? SL_OK : SL_ERR_COORDINATOR_NOT_AVAILABLE;
    kf_writer_t w;
    kw_init(&w, r->h.correlation_id);
    if (ver >= 1) kw_i32(&w, 0);
    kw_i16(&w, kafka_code(rc));
    if (ver >= 1) kw_str(&w, rc == SL_OK ? NULL : "transactions are not supported");
    kw_i32(&w, rc == SL_OK ? (int32_t)b->conf.node_id : -1);
    kw_str(&w, rc == SL_OK ? b->kafka_adv_host : "");
    kw_i32(&w, rc == SL_OK ? b->kafka_adv_port : -1);
    kafka_send(c, s, &w, KF_FIND_COORDINATOR, rc);
}

/* ---- InitProducerId --------------------------------------------------------------- */

void k_init_producer_id(conn_t *c, slot_t *s, kf_request_t *r, uint64_t t0_us)
{
    (void)t0_us;
    kf_init_producer_id_req_t *m = &r->u.init_producer_id;
    /* An idempotent producer (no transactional id) gets a fresh id and
     * epoch 0; transactions are not served. */
    int rc = m->transactional_id ? SL_ERR_TRANSACTIONAL_ID_NOT_FOUND : SL_OK;
    int64_t pid = rc == SL_OK ? produce_next_producer_id(c->w->b) : -1;
    kf_writer_t w;
    kw_init(&w, r->h.correlation_id);
    kw_i32(&w, 0);
    kw_i16(&w, kafka_code(rc));
    kw_i64(&w, pid);
    kw_i16(&w, rc == SL_OK ? 0 : -1);
    kafka_send(c, s, &w, KF_INIT_PRODUCER_ID, rc);
}
