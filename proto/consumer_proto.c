/* consumer_proto.c — Kafka's ConsumerProtocol Subscription and Assignment
 * (see consumer_proto.h), on kafka.h's writer and reader helpers. */
#include "consumer_proto.h"

#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "kafka.h"

uint8_t *grp_subscription_encode(const char *const *topics, size_t n, size_t *len)
{
    kf_writer_t w;
    kw_init_plain(&w);
    kw_i16(&w, 0);
    kw_i32(&w, (int32_t)n);
    for (size_t i = 0; i < n; i++) kw_str(&w, topics[i]);
    kw_bytes(&w, NULL, 0); /* user_data: null */
    return kw_take(&w, len);
}

uint8_t *grp_assignment_encode(const grp_assign_t *a, size_t *len)
{
    kf_writer_t w;
    kw_init_plain(&w);
    kw_i16(&w, 0);
    kw_i32(&w, (int32_t)a->ntopics);
    for (size_t i = 0; i < a->ntopics; i++) {
        kw_str(&w, a->topics[i].topic);
        kw_i32(&w, (int32_t)a->topics[i].nparts);
        for (size_t k = 0; k < a->topics[i].nparts; k++) kw_i32(&w, a->topics[i].parts[k]);
    }
    kw_bytes(&w, NULL, 0); /* user_data: null */
    return kw_take(&w, len);
}

/* A malloc'd NUL-terminated copy of the next string; NULL when it is
 * malformed or null (neither is a topic name) or memory is short. */
static char *take_str(const uint8_t **p, const uint8_t *end)
{
    const char *v;
    int16_t n;
    if (kr_str(p, end, &v, &n) != 0 || n < 0) return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s) return NULL;
    memcpy(s, v, (size_t)n);
    s[n] = '\0';
    return s;
}

/* The version and the topic count that open both structures. Each topic
 * takes at least min_topic bytes, so a count the bytes cannot hold fails
 * here, before anything is allocated for it. */
static int read_head(const uint8_t **p, const uint8_t *end, size_t min_topic, int32_t *count)
{
    int16_t version;
    if (kr_i16(p, end, &version) != 0 || version < 0 || kr_count(p, end, min_topic, count) != 0)
        return SL_ERR_INVALID_REQUEST;
    return SL_OK;
}

void grp_strings_free(char **s, size_t n)
{
    if (!s) return;
    for (size_t i = 0; i < n; i++) free(s[i]);
    free(s);
}

int grp_subscription_decode(const uint8_t *b, size_t len, char ***topics, size_t *n)
{
    const uint8_t *p = b, *end = len ? b + len : b;
    int32_t cnt;
    *topics = NULL;
    *n = 0;
    /* A topic is at least its i16 length. */
    if (read_head(&p, end, 2, &cnt) != SL_OK || cnt > GRP_MAX_TOPICS) return SL_ERR_INVALID_REQUEST;
    char **t = calloc((size_t)cnt + 1, sizeof *t);
    if (!t) return SL_ERR_INVALID_REQUEST;
    for (int32_t i = 0; i < cnt; i++)
        if (!(t[i] = take_str(&p, end))) {
            grp_strings_free(t, (size_t)i);
            return SL_ERR_INVALID_REQUEST;
        }
    *topics = t;
    *n = (size_t)cnt;
    return SL_OK;
}

void grp_assign_free(grp_assign_t *a)
{
    if (!a) return;
    for (size_t i = 0; i < a->ntopics; i++) {
        free(a->topics[i].topic);
        free(a->topics[i].parts);
    }
    free(a->topics);
    a->topics = NULL;
    a->ntopics = 0;
}

int grp_assignment_decode(const uint8_t *b, size_t len, grp_assign_t *out)
{
    memset(out, 0, sizeof *out);
    if (len == 0) return SL_OK;
    const uint8_t *p = b, *end = b + len;
    int32_t cnt;
    /* A topic is at least its i16 length and its i32 partition count. */
    if (read_head(&p, end, 6, &cnt) != SL_OK) return SL_ERR_INVALID_REQUEST;
    out->topics = calloc((size_t)cnt + 1, sizeof *out->topics);
    if (!out->topics) return SL_ERR_INVALID_REQUEST;
    for (int32_t i = 0; i < cnt; i++) {
        grp_tp_t *tp = &out->topics[i];
        int32_t np;
        out->ntopics = (size_t)i + 1; /* what is allocated so far is freed */
        if (!(tp->topic = take_str(&p, end)) || kr_count(&p, end, 4, &np) != 0)
            return SL_ERR_INVALID_REQUEST;
        tp->parts = malloc((size_t)np * sizeof *tp->parts + 1);
        if (!tp->parts) return SL_ERR_INVALID_REQUEST;
        /* kr_count checked that the np partitions are there. */
        for (int32_t k = 0; k < np; k++) (void)kr_i32(&p, end, &tp->parts[k]);
        tp->nparts = (size_t)np;
    }
    return SL_OK;
}
