/* etcd.c — see etcd.h. HTTP by libcurl, JSON by jansson: both do this
 * better than code of ours would, and both are Debian packages. */
#include "etcd.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ETCD_MAX_ENDPOINTS 16

struct etcd {
    CURL *curl;
    char *eps[ETCD_MAX_ENDPOINTS];
    size_t neps;
    size_t cur; /* the endpoint that answered last: tried first */
    long timeout_ms;
    char *body; /* the response being received */
    size_t blen, bcap;
    int too_large;
};

/* curl_global_init is not thread-safe in older libcurl; run it once. */
static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;
static CURLcode g_curl_init_rc;
static void curl_init_once(void)
{
    g_curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- base64 (RFC 4648, with padding), as the gateway's bytes fields ---- */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Returns a malloc'd NUL-terminated encoding, or NULL on allocation failure. */
static char *b64_encode(const unsigned char *p, size_t n)
{
    if (n > (SIZE_MAX - 1) / 4 * 3 - 3) return NULL;
    char *out = malloc((n + 2) / 3 * 4 + 1);
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n) v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n) v |= p[i + 2];
        out[o++] = B64[(v >> 18) & 63];
        out[o++] = B64[(v >> 12) & 63];
        out[o++] = i + 1 < n ? B64[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? B64[v & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

static int b64_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62; /* also accept the URL alphabet */
    if (c == '/' || c == '_') return 63;
    return -1;
}

/* Decodes s (padding optional) into a malloc'd buffer, NUL-terminated past
 * *outlen. Returns SL_OK, SL_ERR_CORRUPT_MESSAGE or SL_ERR_NOMEM. */
static int b64_decode(const char *s, size_t n, char **out, size_t *outlen)
{
    while (n > 0 && s[n - 1] == '=') n--;
    if (n % 4 == 1) return SL_ERR_CORRUPT_MESSAGE;
    char *buf = malloc(n / 4 * 3 + 3);
    if (!buf) return SL_ERR_NOMEM;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_val((unsigned char)s[i]);
        if (v < 0) {
            free(buf);
            return SL_ERR_CORRUPT_MESSAGE;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    buf[o] = '\0';
    *out = buf;
    *outlen = o;
    return SL_OK;
}

/* ---- the client ---- */

etcd_t *etcd_new(const char *endpoints, int timeout_ms, sl_err_t *err)
{
    if (!endpoints || timeout_ms <= 0) {
        sl_err_set(err, SL_ERR_INVALID_ARG, "etcd: endpoints and a timeout > 0 are required");
        return NULL;
    }
    pthread_once(&g_curl_once, curl_init_once);
    if (g_curl_init_rc != CURLE_OK) {
        sl_err_set(err, SL_ERR_UNKNOWN, "etcd: curl_global_init failed");
        return NULL;
    }
    etcd_t *e = calloc(1, sizeof(*e));
    if (!e) {
        sl_err_set(err, SL_ERR_NOMEM, "etcd: out of memory");
        return NULL;
    }
    e->timeout_ms = timeout_ms;
    const char *p = endpoints;
    while (*p) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        while (len > 0 && p[len - 1] == '/') len--; /* we append "/v3/..." */
        if (len > 0) {
            if (e->neps == ETCD_MAX_ENDPOINTS) {
                sl_err_set(err, SL_ERR_INVALID_ARG, "etcd: more than %d endpoints",
                           ETCD_MAX_ENDPOINTS);
                etcd_free(e);
                return NULL;
            }
            e->eps[e->neps] = strndup(p, len);
            if (!e->eps[e->neps]) {
                sl_err_set(err, SL_ERR_NOMEM, "etcd: out of memory");
                etcd_free(e);
                return NULL;
            }
            e->neps++;
        }
        if (!c) break;
        p = c + 1;
    }
    if (e->neps == 0) {
        sl_err_set(err, SL_ERR_INVALID_ARG, "etcd: no endpoint in '%s'", endpoints);
        etcd_free(e);
        return NULL;
    }
    e->curl = curl_easy_init();
    if (!e->curl) {
        sl_err_set(err, SL_ERR_NOMEM, "etcd: curl_easy_init failed");
        etcd_free(e);
        return NULL;
    }
    return e;
}

void etcd_free(etcd_t *e)
{
    if (!e) return;
    if (e->curl) curl_easy_cleanup(e->curl);
    for (size_t i = 0; i < e->neps; i++) free(e->eps[i]);
    free(e->body);
    free(e);
}

/* curl's write callback body for both a request and a watch: appends n
 * bytes to a NUL-terminated growing buffer, refusing to hold more than
 * ETCD_MAX_RESPONSE (then sets *too_large). Returns n, or 0 to make curl
 * stop with CURLE_WRITE_ERROR. */
static size_t append_bounded(char **buf, size_t *len, size_t *cap, int *too_large, const char *data,
                             size_t n)
{
    if (n > ETCD_MAX_RESPONSE - *len) {
        *too_large = 1;
        return 0;
    }
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 4096;
        while (c < *len + n + 1) c *= 2;
        char *b = realloc(*buf, c);
        if (!b) return 0;
        *buf = b;
        *cap = c;
    }
    memcpy(*buf + *len, data, n);
    *len += n;
    (*buf)[*len] = '\0';
    return n;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    etcd_t *e = ud;
    return append_bounded(&e->body, &e->blen, &e->bcap, &e->too_large, data, size * nmemb);
}

/* The message of a gateway error body ({"error": ..., "message": ...}),
 * or "" if it has none. Points into root. */
static const char *gw_message(json_t *root)
{
    if (!json_is_object(root)) return "";
    const char *m = json_string_value(json_object_get(root, "message"));
    if (!m) m = json_string_value(json_object_get(root, "error"));
    return m ? m : "";
}

/* POSTs req (consumed) to path on the current endpoint, moving to the next
 * on a connection failure. On SL_OK *resp is the parsed JSON object of a
 * 200 answer, which the caller decrefs. */
static int call(etcd_t *e, const char *path, json_t *req, json_t **resp, sl_err_t *err)
{
    *resp = NULL;
    if (!req) return sl_err_set(err, SL_ERR_NOMEM, "etcd: out of memory building %s", path);
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    if (!body) return sl_err_set(err, SL_ERR_NOMEM, "etcd: out of memory building %s", path);

    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    int rc = SL_ERR_UNKNOWN;
    char url[1024];
    char cerr[CURL_ERROR_SIZE];
    for (size_t tries = 0; tries < e->neps; tries++) {
        const char *ep = e->eps[e->cur];
        snprintf(url, sizeof(url), "%s%s", ep, path);
        CURL *c = e->curl;
        curl_easy_reset(c);
        cerr[0] = '\0';
        e->blen = 0;
        e->too_large = 0;
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, e->timeout_ms);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, e->timeout_ms);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L); /* no SIGALRM in a threaded broker */
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, e);
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
        CURLcode cc = curl_easy_perform(c);
        if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST) {
            rc = sl_err_set(err, SL_ERR_UNKNOWN, "etcd: cannot connect to %s: %s", ep,
                            cerr[0] ? cerr : curl_easy_strerror(cc));
            e->cur = (e->cur + 1) % e->neps;
            continue;
        }
        if (cc == CURLE_OPERATION_TIMEDOUT) {
            rc = sl_err_set(err, SL_ERR_REQUEST_TIMED_OUT, "etcd: %s%s timed out after %ld ms", ep,
                            path, e->timeout_ms);
            break;
        }
        if (e->too_large) {
            rc = sl_err_set(err, SL_ERR_CORRUPT_MESSAGE, "etcd: %s%s: answer larger than %zu bytes",
                            ep, path, ETCD_MAX_RESPONSE);
            break;
        }
        if (cc != CURLE_OK) {
            rc = sl_err_set(err, SL_ERR_UNKNOWN, "etcd: %s%s: %s", ep, path,
                            cerr[0] ? cerr : curl_easy_strerror(cc));
            break;
        }
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        json_error_t jerr;
        json_t *root = json_loadb(e->body ? e->body : "", e->blen, 0, &jerr);
        if (status != 200) {
            rc = sl_err_set(err, SL_ERR_UNKNOWN, "etcd: %s%s: HTTP %ld: %.120s", ep, path, status,
                            gw_message(root));
            json_decref(root);
            break;
        }
        if (!json_is_object(root)) {
            rc = sl_err_set(err, SL_ERR_CORRUPT_MESSAGE,
                            "etcd: %s%s: answer is not a JSON object (%s)", ep, path,
                            root ? "wrong type" : jerr.text);
            json_decref(root);
            break;
        }
        /* A streaming path (lease keepalive) wraps its answer in "result",
         * and reports failure as a 200 with "error". */
        json_t *error = json_object_get(root, "error");
        if (error) {
            rc = sl_err_set(err, SL_ERR_UNKNOWN, "etcd: %s%s: %.120s", ep, path, gw_message(error));
            json_decref(root);
            break;
        }
        *resp = root;
        rc = SL_OK;
        break;
    }
    curl_slist_free_all(hdr);
    free(body);
    return rc;
}

/* An int64 field: the gateway writes them as strings (protobuf's JSON
 * mapping) and leaves zero out, so a missing field is 0. */
static int get_i64(json_t *obj, const char *name, int64_t *out)
{
    json_t *v = json_is_object(obj) ? json_object_get(obj, name) : NULL;
    *out = 0;
    if (!v) return SL_OK;
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return SL_OK;
    }
    if (!json_is_string(v)) return SL_ERR_CORRUPT_MESSAGE;
    const char *s = json_string_value(v);
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno || end == s || *end) return SL_ERR_CORRUPT_MESSAGE;
    *out = x;
    return SL_OK;
}

static int header_revision(json_t *resp, int64_t *rev, const char *path, sl_err_t *err)
{
    int64_t r;
    if (get_i64(json_object_get(resp, "header"), "revision", &r) != SL_OK)
        return sl_err_set(err, SL_ERR_CORRUPT_MESSAGE, "etcd: %s: bad header.revision", path);
    if (rev) *rev = r;
    return SL_OK;
}

/* A JSON string holding base64 of (p, n), or NULL on allocation failure. */
static json_t *b64_json(const void *p, size_t n)
{
    char *s = b64_encode(p, n);
    if (!s) return NULL;
    json_t *j = json_string(s);
    free(s);
    return j;
}

static json_t *i64_json(int64_t v)
{
    char s[24];
    snprintf(s, sizeof(s), "%" PRId64, v);
    return json_string(s);
}

/* The range end for a prefix: the prefix with its last byte below 0xff
 * incremented and what follows dropped; "\0" (every key) if there is none. */
static json_t *prefix_end_json(const void *key, size_t klen)
{
    const unsigned char *k = key;
    size_t n = klen;
    while (n > 0 && k[n - 1] == 0xff) n--;
    if (n == 0) return b64_json("", 1);
    unsigned char *end = malloc(n);
    if (!end) return NULL;
    memcpy(end, k, n);
    end[n - 1]++;
    json_t *j = b64_json(end, n);
    free(end);
    return j;
}

static int check_args(etcd_t *e, const void *key, size_t klen, sl_err_t *err)
{
    if (!e || (!key && klen))
        return sl_err_set(err, SL_ERR_INVALID_ARG, "etcd: NULL client or key");
    return SL_OK;
}

int etcd_put(etcd_t *e, const void *key, size_t klen, const void *val, size_t vlen,
             int64_t lease_id, int64_t *revision, sl_err_t *err)
{
    if (check_args(e, key, klen, err) || (!val && vlen))
        return sl_err_set(err, SL_ERR_INVALID_ARG, "etcd_put: bad argument");
    json_t *req = json_object();
    if (req) {
        json_object_set_new(req, "key", b64_json(key, klen));
        json_object_set_new(req, "value", b64_json(val, vlen));
        if (lease_id) json_object_set_new(req, "lease", i64_json(lease_id));
    }
    json_t *resp;
    int rc = call(e, "/v3/kv/put", req, &resp, err);
    if (rc != SL_OK) return rc;
    rc = header_revision(resp, revision, "/v3/kv/put", err);
    json_decref(resp);
    return rc;
}

void etcd_kvs_free(etcd_kvs_t *kvs)
{
    if (!kvs) return;
    for (size_t i = 0; i < kvs->n; i++) {
        free(kvs->kv[i].key);
        free(kvs->kv[i].value);
    }
    free(kvs->kv);
    memset(kvs, 0, sizeof(*kvs));
}

/* Decodes one element of "kvs" into *kv. */
static int parse_kv(json_t *j, etcd_kv_t *kv)
{
    if (!json_is_object(j)) return SL_ERR_CORRUPT_MESSAGE;
    json_t *k = json_object_get(j, "key"), *v = json_object_get(j, "value");
    if (!json_is_string(k) || (v && !json_is_string(v))) return SL_ERR_CORRUPT_MESSAGE;
    int rc = b64_decode(json_string_value(k), json_string_length(k), &kv->key, &kv->klen);
    if (rc != SL_OK) return rc;
    if (v)
        rc = b64_decode(json_string_value(v), json_string_length(v), &kv->value, &kv->vlen);
    else
        rc = b64_decode("", 0, &kv->value, &kv->vlen); /* an empty value is left out */
    if (rc != SL_OK) return rc;
    if (get_i64(j, "create_revision", &kv->create_revision) ||
        get_i64(j, "mod_revision", &kv->mod_revision) || get_i64(j, "version", &kv->version) ||
        get_i64(j, "lease", &kv->lease))
        return SL_ERR_CORRUPT_MESSAGE;
    return SL_OK;
}

int etcd_get(etcd_t *e, const void *key, size_t klen, int prefix, etcd_kvs_t *out, sl_err_t *err)
{
    if (out) memset(out, 0, sizeof(*out));
    if (check_args(e, key, klen, err) || !out)
        return sl_err_set(err, SL_ERR_INVALID_ARG, "etcd_get: bad argument");
    json_t *req = json_object();
    if (req) {
        json_object_set_new(req, "key", klen || !prefix ? b64_json(key, klen) : b64_json("", 1));
        if (prefix) json_object_set_new(req, "range_end", prefix_end_json(key, klen));
    }
    json_t *resp;
    int rc = call(e, "/v3/kv/range", req, &resp, err);
    if (rc != SL_OK) return rc;
    rc = header_revision(resp, &out->revision, "/v3/kv/range", err);
    json_t *kvs = json_object_get(resp, "kvs");
    if (rc == SL_OK && kvs) {
        if (!json_is_array(kvs)) {
            rc = sl_err_set(err, SL_ERR_CORRUPT_MESSAGE, "etcd: /v3/kv/range: kvs is not an array");
        } else if (json_array_size(kvs) > 0) {
            out->kv = calloc(json_array_size(kvs), sizeof(*out->kv));
            if (!out->kv) rc = sl_err_set(err, SL_ERR_NOMEM, "etcd: out of memory");
            for (size_t i = 0; rc == SL_OK && i < json_array_size(kvs); i++) {
                rc = parse_kv(json_array_get(kvs, i), &out->kv[i]);
                out->n = i + 1; /* so free sees what was partly filled */
                if (rc != SL_OK) sl_err_set(err, rc, "etcd: /v3/kv/range: bad kvs[%zu]", i);
            }
        }
    }
    json_decref(resp);
    if (rc != SL_OK) etcd_kvs_free(out);
    return rc;
}

int etcd_delete(etcd_t *e, const void *key, size_t klen, int prefix, int64_t *deleted,
                sl_err_t *err)
{
    if (check_args(e, key, klen, err)) return SL_ERR_INVALID_ARG;
    json_t *req = json_object();
    if (req) {
        json_object_set_new(req, "key", klen || !prefix ? b64_json(key, klen) : b64_json("", 1));
        if (prefix) json_object_set_new(req, "range_end", prefix_end_json(key, klen));
    }
    json_t *resp;
    int rc = call(e, "/v3/kv/deleterange", req, &resp, err);
    if (rc != SL_OK) return rc;
    int64_t d;
    if (get_i64(resp, "deleted", &d) != SL_OK)
        rc = sl_err_set(err, SL_ERR_CORRUPT_MESSAGE, "etcd: /v3/kv/deleterange: bad deleted");
    else if (deleted)
        *deleted = d;
    json_decref(resp);
    return rc;
}

int etcd_txn_cas(etcd_t *e, const void *key, size_t klen, int64_t expected_mod_revision,
                 const void *val, size_t vlen, int64_t lease_id, int *succeeded, int64_t *revision,
                 sl_err_t *err)
{
    if (check_args(e, key, klen, err) || (!val && vlen) || !succeeded || expected_mod_revision < 0)
        return sl_err_set(err, SL_ERR_INVALID_ARG, "etcd_txn_cas: bad argument");
    *succeeded = 0;
    /* A key that does not exist has mod_revision 0, so one compare on MOD
     * covers both "unchanged since" and "create only". */
    json_t *cmp = json_object(), *put = json_object(), *op = json_object(), *req = json_object();
    if (cmp && put && op && req) {
        json_object_set_new(cmp, "key", b64_json(key, klen));
        json_object_set_new(cmp, "target", json_string("MOD"));
        json_object_set_new(cmp, "result", json_string("EQUAL"));
        json_object_set_new(cmp, "mod_revision", i64_json(expected_mod_revision));
        json_object_set_new(put, "key", b64_json(key, klen));
        json_object_set_new(put, "value", b64_json(val, vlen));
        if (lease_id) json_object_set_new(put, "lease", i64_json(lease_id));
        json_object_set_new(op, "request_put", put);
        put = NULL;
        json_object_set_new(req, "compare", json_pack("[o]", cmp));
        cmp = NULL;
        json_object_set_new(req, "success", json_pack("[o]", op));
        op = NULL;
    } else {
        json_decref(req);
        req = NULL;
    }
    json_decref(cmp);
    json_decref(put);
    json_decref(op);
    json_t *resp;
    int rc = call(e, "/v3/kv/txn", req, &resp, err);
    if (rc != SL_OK) return rc;
    rc = header_revision(resp, revision, "/v3/kv/txn", err);
    json_t *s = json_object_get(resp, "succeeded");
    if (rc == SL_OK && s && !json_is_boolean(s))
        rc =
            sl_err_set(err, SL_ERR_CORRUPT_MESSAGE, "etcd: /v3/kv/txn: succeeded is not a boolean");
    else if (rc == SL_OK)
        *succeeded = json_is_true(s); /* left out when false */
    json_decref(resp);
    return rc;
}

int etcd_lease_grant(etcd_t *e, int64_t ttl_s, int64_t *lease_id, sl_err_t *err)
{
    if (!e || ttl_s <= 0 || !lease_id)
        return sl_err_set(err, SL_ERR_INVALID_ARG, "etcd_lease_grant: bad argument");
    json_t *req = json_object();
    if (req) json_object_set_new(req, "TTL", i64_json(ttl_s));
    json_t *resp;
    int rc = call(e, "/v3/lease/grant", req, &resp, err);
    if (rc != SL_OK) return rc;
    if (get_i64(resp, "ID", lease_id) != SL_OK || *lease_id == 0)
        rc = sl_err_set(err, SL_ERR_CORRUPT_MESSAGE,
                        "etcd: /v3/lease/grant: no lease ID in the answer");
    json_decref(resp);
    return rc;
}

int etcd_lease_keepalive(etcd_t *e, int64_t lease_id, int64_t *ttl_left, sl_err_t *err)
{
    if (!e || lease_id == 0)
        return sl_err_set(err, SL_ERR_INVALID_ARG, "etcd_lease_keepalive: bad argument");
    json_t *req = json_object();
    if (req) json_object_set_new(req, "ID", i64_json(lease_id));
    json_t *resp;
    int rc = call(e, "/v3/lease/keepalive", req, &resp, err);
    if (rc != SL_OK) return rc;
    json_t *res = json_object_get(resp, "result");
    int64_t ttl;
    if (!json_is_object(res) || get_i64(res, "TTL", &ttl) != SL_OK)
        rc = sl_err_set(err, SL_ERR_CORRUPT_MESSAGE,
                        "etcd: /v3/lease/keepalive: no result in the answer");
    else if (ttl <= 0) /* etcd answers TTL 0 (left out) for a lease it does not have */
        rc = sl_err_set(err, SL_ERR_NOT_FOUND,
                        "etcd: lease %" PRId64 " has expired or does not exist", lease_id);
    else if (ttl_left)
        *ttl_left = ttl;
    json_decref(resp);
    return rc;
}

int etcd_lease_revoke(etcd_t *e, int64_t lease_id, sl_err_t *err)
{
    if (!e || lease_id == 0)
        return sl_err_set(err, SL_ERR_INVALID_ARG, "etcd_lease_revoke: bad argument");
    json_t *req = json_object();
    if (req) json_object_set_new(req, "ID", i64_json(lease_id));
    json_t *resp;
    int rc = call(e, "/v3/lease/revoke", req, &resp, err);
    if (rc == SL_OK) json_decref(resp);
    return rc;
}

/* ---- watch ---- */

struct etcd_watch {
    CURLM *multi;
    CURL *curl;
    struct curl_slist *hdr;
    char *reqbody;
    char ep[256];
    char *buf; /* received bytes not yet parsed: newline-framed JSON objects */
    size_t blen, bcap;
    int too_large;
    int done; /* the transfer ended */
    CURLcode result;
};

static size_t on_watch(char *data, size_t size, size_t nmemb, void *ud)
{
    etcd_watch_t *w = ud;
    /* Unparsed bytes only: a stream of small answers never grows past one. */
    return append_bounded(&w->buf, &w->blen, &w->bcap, &w->too_large, data, size * nmemb);
}

void etcd_events_free(etcd_events_t *events)
{
    if (!events) return;
    for (size_t i = 0; i < events->n; i++) {
        free(events->ev[i].kv.key);
        free(events->ev[i].kv.value);
    }
    free(events->ev);
    memset(events, 0, sizeof(*events));
}

void etcd_watch_close(etcd_watch_t *w)
{
    if (!w) return;
    if (w->multi && w->curl) curl_multi_remove_handle(w->multi, w->curl);
    if (w->curl) curl_easy_cleanup(w->curl);
    if (w->multi) curl_multi_cleanup(w->multi);
    curl_slist_free_all(w->hdr);
    free(w->reqbody);
    free(w->buf);
    free(w);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Takes the next complete answer off the buffer: *root is NULL if none is
 * complete yet. */
static int watch_take(etcd_watch_t *w, json_t **root, sl_err_t *err)
{
    *root = NULL;
    char *nl = w->buf ? memchr(w->buf, '\n', w->blen) : NULL;
    if (!nl) return SL_OK;
    size_t len = (size_t)(nl - w->buf);
    json_error_t jerr;
    json_t *j = json_loadb(w->buf, len, 0, &jerr);
    memmove(w->buf, nl + 1, w->blen - len - 1);
    w->blen -= len + 1;
    if (!json_is_object(j)) {
        json_decref(j);
        return sl_err_set(err, SL_ERR_CORRUPT_MESSAGE,
                          "etcd: %s/v3/watch: answer is not a JSON object", w->ep);
    }
    json_t *res = json_object_get(j, "result");
    if (json_object_get(j, "error") || !json_is_object(res)) {
        int rc = sl_err_set(err, SL_ERR_UNKNOWN, "etcd: %s/v3/watch: %.120s", w->ep,
                            gw_message(json_object_get(j, "error")));
        json_decref(j);
        return rc;
    }
    int64_t compact = 0;
    if (json_is_true(json_object_get(res, "canceled")) ||
        get_i64(res, "compact_revision", &compact) || compact != 0) {
        const char *why = json_string_value(json_object_get(res, "cancel_reason"));
        int rc = sl_err_set(err, SL_ERR_UNKNOWN,
                            "etcd: %s/v3/watch cancelled (compacted at %" PRId64 "): %.100s", w->ep,
                            compact, why ? why : "");
        json_decref(j);
        return rc;
    }
    *root = j;
    return SL_OK;
}

/* Drives the transfer until an answer is complete or deadline (ms,
 * monotonic) passes. */
static int watch_pump(etcd_watch_t *w, long long deadline, json_t **root, sl_err_t *err)
{
    for (;;) {
        int rc = watch_take(w, root, err);
        if (rc != SL_OK || *root) return rc;
        if (w->too_large)
            return sl_err_set(err, SL_ERR_CORRUPT_MESSAGE,
                              "etcd: %s/v3/watch: answer larger than %zu bytes", w->ep,
                              ETCD_MAX_RESPONSE);
        if (w->done) {
            long status = 0;
            curl_easy_getinfo(w->curl, CURLINFO_RESPONSE_CODE, &status);
            if (w->result == CURLE_COULDNT_CONNECT || w->result == CURLE_COULDNT_RESOLVE_HOST)
                return sl_err_set(err, SL_ERR_UNKNOWN, "etcd: cannot connect to %s: %s", w->ep,
                                  curl_easy_strerror(w->result));
            return sl_err_set(err, SL_ERR_UNKNOWN, "etcd: %s/v3/watch: stream ended (HTTP %ld, %s)",
                              w->ep, status, curl_easy_strerror(w->result));
        }
        long long left = deadline - now_ms();
        if (left <= 0)
            return sl_err_set(err, SL_ERR_REQUEST_TIMED_OUT, "etcd: %s/v3/watch: no answer in time",
                              w->ep);
        int running = 0;
        if (curl_multi_perform(w->multi, &running) != CURLM_OK)
            return sl_err_set(err, SL_ERR_UNKNOWN, "etcd: %s/v3/watch: curl_multi_perform failed",
                              w->ep);
        CURLMsg *m;
        int q;
        while ((m = curl_multi_info_read(w->multi, &q)))
            if (m->msg == CURLMSG_DONE) {
                w->done = 1;
                w->result = m->data.result;
            }
        if (w->done || memchr(w->buf ? w->buf : "", '\n', w->blen)) continue;
        if (curl_multi_poll(w->multi, NULL, 0, (int)(left < 1000 ? left : 1000), NULL) != CURLM_OK)
            return sl_err_set(err, SL_ERR_UNKNOWN, "etcd: %s/v3/watch: curl_multi_poll failed",
                              w->ep);
    }
}

static int watch_start(etcd_watch_t *w, const char *ep, long timeout_ms)
{
    snprintf(w->ep, sizeof(w->ep), "%s", ep);
    char url[300];
    snprintf(url, sizeof(url), "%s/v3/watch", ep);
    if (w->curl) {
        curl_multi_remove_handle(w->multi, w->curl);
        curl_easy_cleanup(w->curl);
    }
    w->curl = curl_easy_init();
    if (!w->curl) return SL_ERR_NOMEM;
    w->blen = 0;
    w->done = 0;
    w->too_large = 0;
    CURL *c = w->curl;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, w->reqbody);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, w->hdr);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_watch);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, w);
    return curl_multi_add_handle(w->multi, c) == CURLM_OK ? SL_OK : SL_ERR_UNKNOWN;
}

int etcd_watch_open(etcd_t *e, const void *key, size_t klen, int prefix, int64_t start_revision,
                    etcd_watch_t **out, sl_err_t *err)
{
    if (out) *out = NULL;
    if (check_args(e, key, klen, err) || !out || start_revision < 0)
        return sl_err_set(err, SL_ERR_INVALID_ARG, "etcd_watch_open: bad argument");
    etcd_watch_t *w = calloc(1, sizeof(*w));
    json_t *cr = json_object(), *req = json_object();
    if (!w || !cr || !req) {
        free(w);
        json_decref(cr);
        json_decref(req);
        return sl_err_set(err, SL_ERR_NOMEM, "etcd: out of memory");
    }
    json_object_set_new(cr, "key", klen || !prefix ? b64_json(key, klen) : b64_json("", 1));
    if (prefix) json_object_set_new(cr, "range_end", prefix_end_json(key, klen));
    if (start_revision) json_object_set_new(cr, "start_revision", i64_json(start_revision));
    json_object_set_new(req, "create_request", cr);
    w->reqbody = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    w->multi = curl_multi_init();
    w->hdr = curl_slist_append(NULL, "Content-Type: application/json");
    if (!w->reqbody || !w->multi || !w->hdr) {
        etcd_watch_close(w);
        return sl_err_set(err, SL_ERR_NOMEM, "etcd: out of memory");
    }
    int rc = SL_ERR_UNKNOWN;
    for (size_t tries = 0; tries < e->neps; tries++) {
        const char *ep = e->eps[e->cur];
        if (watch_start(w, ep, e->timeout_ms) != SL_OK) {
            rc = sl_err_set(err, SL_ERR_NOMEM, "etcd: cannot start a watch on %s", ep);
            break;
        }
        json_t *root;
        rc = watch_pump(w, now_ms() + e->timeout_ms, &root, err);
        if (rc == SL_OK) {
            json_t *res = json_object_get(root, "result");
            if (!json_is_true(json_object_get(res, "created")))
                rc = sl_err_set(err, SL_ERR_CORRUPT_MESSAGE,
                                "etcd: %s/v3/watch: first answer is not 'created'", ep);
            json_decref(root);
            break;
        }
        if (!(w->done &&
              (w->result == CURLE_COULDNT_CONNECT || w->result == CURLE_COULDNT_RESOLVE_HOST)))
            break;
        e->cur = (e->cur + 1) % e->neps;
    }
    if (rc != SL_OK) {
        etcd_watch_close(w);
        return rc;
    }
    *out = w;
    return SL_OK;
}

int etcd_watch_next(etcd_watch_t *w, int timeout_ms, etcd_events_t *events, sl_err_t *err)
{
    if (events) memset(events, 0, sizeof(*events));
    if (!w || !events || timeout_ms < 0)
        return sl_err_set(err, SL_ERR_INVALID_ARG, "etcd_watch_next: bad argument");
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        json_t *root;
        int rc = watch_pump(w, deadline, &root, err);
        if (rc != SL_OK) return rc;
        json_t *res = json_object_get(root, "result");
        json_t *evs = json_object_get(res, "events");
        if (!evs) { /* a progress notice or a second 'created': no events */
            json_decref(root);
            continue;
        }
        if (!json_is_array(evs) ||
            header_revision(res, &events->revision, "/v3/watch", err) != SL_OK) {
            json_decref(root);
            return sl_err_set(err, SL_ERR_CORRUPT_MESSAGE, "etcd: %s/v3/watch: bad events", w->ep);
        }
        size_t n = json_array_size(evs);
        events->ev = n ? calloc(n, sizeof(*events->ev)) : NULL;
        if (n && !events->ev) {
            json_decref(root);
            return sl_err_set(err, SL_ERR_NOMEM, "etcd: out of memory");
        }
        for (size_t i = 0; rc == SL_OK && i < n; i++) {
            json_t *ev = json_array_get(evs, i);
            json_t *type = json_object_get(ev, "type");
            etcd_event_t *out = &events->ev[i];
            events->n = i + 1;
            if (!type || (json_is_string(type) && strcmp(json_string_value(type), "PUT") == 0))
                out->type = ETCD_EVENT_PUT; /* PUT is 0, so the gateway leaves it out */
            else if (json_is_string(type) && strcmp(json_string_value(type), "DELETE") == 0)
                out->type = ETCD_EVENT_DELETE;
            else
                rc = SL_ERR_CORRUPT_MESSAGE;
            if (rc == SL_OK) rc = parse_kv(json_object_get(ev, "kv"), &out->kv);
        }
        json_decref(root);
        if (rc != SL_OK) {
            etcd_events_free(events);
            return sl_err_set(err, rc, "etcd: %s/v3/watch: bad event", w->ep);
        }
        if (events->n == 0) continue;
        return SL_OK;
    }
}
