/* etcd.h — a blocking client for etcd v3 through its JSON gateway (HTTP
 * POST of JSON to /v3/...), for the cluster work of issue #12. Nothing in
 * the broker calls it yet; docs/cluster.md describes it.
 *
 * Threads: an etcd_t is used by ONE thread at a time (it owns one curl
 * handle and its buffers); different etcd_t may be used by different
 * threads at once. Every call blocks for at most the request timeout per
 * endpoint tried.
 *
 * Endpoints: "http://127.0.0.1:2379,http://127.0.0.1:22379". A request goes
 * to the endpoint that answered last; on a connection failure (refused,
 * unreachable) the next is tried, each once per request. A timeout is not
 * retried elsewhere, since the request may have been applied.
 *
 * Keys and values are binary-safe (pointer + length), sent base64 as the
 * gateway wants. Every response is treated as hostile: at most
 * ETCD_MAX_RESPONSE bytes, JSON types checked, a missing number read as 0
 * (the gateway leaves out zero fields), a missing required object an error.
 *
 * Errors (each also fills err->msg, which names the endpoint):
 *   SL_ERR_INVALID_ARG        bad argument (NULL key, empty endpoint list)
 *   SL_ERR_NOMEM              allocation failed
 *   SL_ERR_UNKNOWN            no endpoint could be reached, or etcd answered
 *                             with an error (its message is in err->msg)
 *   SL_ERR_REQUEST_TIMED_OUT  the request timeout passed
 *   SL_ERR_CORRUPT_MESSAGE    the answer was too large, not JSON, or of
 *                             the wrong shape
 *   SL_ERR_NOT_FOUND          etcd_lease_keepalive: the lease has expired
 *                             or never existed
 */
#ifndef SLUICE_BROKER_ETCD_H
#define SLUICE_BROKER_ETCD_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"

/* Largest response body accepted; a larger one fails the request. */
#define ETCD_MAX_RESPONSE ((size_t)64 << 20)

typedef struct etcd etcd_t;

/* One key-value pair as etcd stores it. key and value are owned by the
 * etcd_kvs_t that holds them; each is NUL-terminated past its length for
 * convenience but may hold NUL bytes. */
typedef struct etcd_kv {
    char *key;
    size_t klen;
    char *value;
    size_t vlen;
    int64_t create_revision;
    int64_t mod_revision;
    int64_t version;
    int64_t lease;
} etcd_kv_t;

/* The result of etcd_get: the pairs found (n may be 0) and the store's
 * revision when the range was read. Free with etcd_kvs_free. */
typedef struct etcd_kvs {
    etcd_kv_t *kv;
    size_t n;
    int64_t revision;
} etcd_kvs_t;

/* Creates a client for a comma-separated endpoint list; timeout_ms (> 0)
 * bounds each HTTP request. No connection is made here. Returns NULL and
 * fills err on a bad argument or allocation failure. Free with etcd_free. */
etcd_t *etcd_new(const char *endpoints, int timeout_ms, sl_err_t *err);

/* Frees the client; NULL is allowed. */
void etcd_free(etcd_t *e);

/* Puts key = val, attached to lease_id (0: no lease). *revision (may be
 * NULL) receives the store's revision after the put. */
int etcd_put(etcd_t *e, const void *key, size_t klen, const void *val, size_t vlen,
             int64_t lease_id, int64_t *revision, sl_err_t *err);

/* Reads key (prefix == 0) or every key starting with key (prefix != 0; an
 * empty prefix is every key) into *out, which the caller frees with
 * etcd_kvs_free, also on error (it is then empty). */
int etcd_get(etcd_t *e, const void *key, size_t klen, int prefix, etcd_kvs_t *out, sl_err_t *err);
void etcd_kvs_free(etcd_kvs_t *kvs);

/* Deletes key, or every key starting with key when prefix != 0. *deleted
 * (may be NULL) receives how many keys went. */
int etcd_delete(etcd_t *e, const void *key, size_t klen, int prefix, int64_t *deleted,
                sl_err_t *err);

/* Compare-and-set: puts key = val (with lease_id, 0 = none) only if the
 * key's mod_revision equals expected_mod_revision; 0 means the key must
 * not exist. *succeeded says whether the put happened (a failed compare is
 * SL_OK with *succeeded = 0); *revision (may be NULL) receives the store's
 * revision. */
int etcd_txn_cas(etcd_t *e, const void *key, size_t klen, int64_t expected_mod_revision,
                 const void *val, size_t vlen, int64_t lease_id, int *succeeded, int64_t *revision,
                 sl_err_t *err);

/* Grants a lease of ttl_s seconds (> 0); *lease_id receives its id. */
int etcd_lease_grant(etcd_t *e, int64_t ttl_s, int64_t *lease_id, sl_err_t *err);

/* One keep-alive round trip; *ttl_left (may be NULL) receives the TTL the
 * lease has again. SL_ERR_NOT_FOUND if the lease is gone. */
int etcd_lease_keepalive(etcd_t *e, int64_t lease_id, int64_t *ttl_left, sl_err_t *err);

/* Revokes the lease; the keys attached to it are deleted by etcd. */
int etcd_lease_revoke(etcd_t *e, int64_t lease_id, sl_err_t *err);

/* ---- watch ---- */

/* A watch: its own HTTP connection streaming /v3/watch. Owned by the caller
 * (etcd_watch_close), used by one thread at a time, independent of the
 * etcd_t it was opened from (which may be freed first). */
typedef struct etcd_watch etcd_watch_t;

enum { ETCD_EVENT_PUT = 0, ETCD_EVENT_DELETE = 1 };

/* One change. kv.mod_revision is the event's revision; for a DELETE, kv has
 * the key and mod_revision only. */
typedef struct etcd_event {
    int type; /* ETCD_EVENT_PUT or ETCD_EVENT_DELETE */
    etcd_kv_t kv;
} etcd_event_t;

/* Events from one watch answer, in revision order. Free with
 * etcd_events_free. */
typedef struct etcd_events {
    etcd_event_t *ev;
    size_t n;
    int64_t revision; /* the answer's header revision */
} etcd_events_t;

/* Opens a watch on key (or every key starting with it when prefix != 0)
 * from start_revision (0: from now on; an older revision replays the
 * changes since, unless compacted). Returns once etcd has confirmed the
 * watch, on the endpoint that answered e's last request or the next ones on
 * connection failure, within e's request timeout. *out is NULL on error. */
int etcd_watch_open(etcd_t *e, const void *key, size_t klen, int prefix, int64_t start_revision,
                    etcd_watch_t **out, sl_err_t *err);

/* Waits up to timeout_ms for the next answer carrying events and moves them
 * into *events (caller frees with etcd_events_free, also on error).
 * SL_ERR_REQUEST_TIMED_OUT if none came; the watch stays usable. Any other
 * error (stream closed, watch cancelled or compacted, a bad answer) ends
 * the watch: close it and open a new one. */
int etcd_watch_next(etcd_watch_t *w, int timeout_ms, etcd_events_t *events, sl_err_t *err);
void etcd_events_free(etcd_events_t *events);

/* Closes the stream and frees the watch; NULL is allowed. */
void etcd_watch_close(etcd_watch_t *w);

#endif
