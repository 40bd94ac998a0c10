/* assign.c — the range and roundrobin assignors (see assign.h). */
#include "assign.h"

#include <stdlib.h>
#include <string.h>

#include "errors.h"

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int subscribed(const grp_assignor_member_t *m, const char *topic)
{
    for (size_t i = 0; i < m->ntopics; i++)
        if (strcmp(m->topics[i], topic) == 0) return 1;
    return 0;
}

/* Appends partition p of topic to a (topics are appended in order, so the
 * topic is either the last entry or new). */
static int assign_add(grp_assign_t *a, const char *topic, int32_t p)
{
    grp_tp_t *tp = a->ntopics ? &a->topics[a->ntopics - 1] : NULL;
    if (!tp || strcmp(tp->topic, topic) != 0) {
        grp_tp_t *t = realloc(a->topics, (a->ntopics + 1) * sizeof *t);
        if (!t) return SL_ERR_NOMEM;
        a->topics = t;
        tp = &t[a->ntopics];
        memset(tp, 0, sizeof *tp);
        if (!(tp->topic = strdup(topic))) return SL_ERR_NOMEM;
        a->ntopics++;
    }
    /* Grow by powers of two: nparts is the count, capacity implied. */
    size_t n = tp->nparts;
    if ((n & (n - 1)) == 0) {
        int32_t *q = realloc(tp->parts, (n ? n * 2 : 1) * sizeof *q);
        if (!q) return SL_ERR_NOMEM;
        tp->parts = q;
    }
    tp->parts[tp->nparts++] = p;
    return SL_OK;
}

/* What both assignors start from: member indexes in member-id order, and
 * the subscribed topics that exist, in name order, with their partition
 * counts. */
typedef struct plan {
    size_t *order;
    const char **topics;
    int32_t *nparts;
    size_t ntopics;
} plan_t;

/* A member's index beside the id it sorts by: qsort hands the comparison
 * only the two elements, so they carry everything it needs (no global to
 * point it at the members, no lock around that global). */
typedef struct keyed {
    const char *id;
    size_t index;
} keyed_t;

/* By id; equal ids (only a caller other than the coordinator can pass
 * them) keep their input order, so the result never depends on how the C
 * library's qsort treats ties. */
static int cmp_keyed(const void *a, const void *b)
{
    const keyed_t *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    if (c != 0) return c;
    return (x->index > y->index) - (x->index < y->index);
}

/* SL_OK, SL_ERR_NOMEM, or SL_ERR_INVALID_REQUEST when the topics hold more
 * than GRP_MAX_ASSIGNED partitions (checked before anything is assigned).
 * plan_free afterwards in every case. */
static int plan_make(const grp_assignor_member_t *m, size_t n, grp_partitions_fn parts, void *arg,
                     plan_t *pl)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) total += m[i].ntopics;
    pl->order = malloc((n + 1) * sizeof *pl->order);
    pl->topics = malloc((total + 1) * sizeof *pl->topics);
    pl->nparts = malloc((total + 1) * sizeof *pl->nparts);
    pl->ntopics = 0;
    keyed_t *byid = malloc((n + 1) * sizeof *byid);
    if (!pl->order || !pl->topics || !pl->nparts || !byid) {
        free(byid);
        return SL_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) byid[i] = (keyed_t){m[i].member_id, i};
    qsort(byid, n, sizeof *byid, cmp_keyed);
    for (size_t i = 0; i < n; i++) pl->order[i] = byid[i].index;
    free(byid);
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < m[i].ntopics; k++) pl->topics[pl->ntopics++] = m[i].topics[k];
    qsort(pl->topics, pl->ntopics, sizeof *pl->topics, cmp_str);
    /* Each distinct topic once (sorted: repeats are neighbours); those
     * without partitions (gone, or never created) drop out here. */
    size_t u = 0, handed = 0;
    const char *prev = NULL;
    for (size_t i = 0; i < pl->ntopics; i++) {
        const char *t = pl->topics[i];
        int repeat = prev && strcmp(prev, t) == 0;
        prev = t;
        if (repeat) continue;
        int32_t np = parts(arg, t);
        if (np <= 0) continue;
        if ((handed += (size_t)np) > GRP_MAX_ASSIGNED) return SL_ERR_INVALID_REQUEST;
        pl->nparts[u] = np;
        pl->topics[u++] = t;
    }
    pl->ntopics = u;
    return SL_OK;
}

static void plan_free(plan_t *pl)
{
    free(pl->order);
    free(pl->topics);
    free(pl->nparts);
}

int grp_assign_range(const grp_assignor_member_t *m, size_t n, grp_partitions_fn parts, void *arg,
                     grp_assign_t *out)
{
    plan_t pl;
    int rc = plan_make(m, n, parts, arg, &pl);
    size_t *subs = malloc((n + 1) * sizeof *subs);
    if (!subs) rc = SL_ERR_NOMEM;
    for (size_t t = 0; rc == SL_OK && t < pl.ntopics; t++) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (subscribed(&m[pl.order[i]], pl.topics[t])) subs[k++] = pl.order[i];
        /* k > 0: the topic is in the plan because someone subscribes. */
        size_t per = (size_t)pl.nparts[t] / k, extra = (size_t)pl.nparts[t] % k;
        int32_t p = 0;
        for (size_t i = 0; i < k && rc == SL_OK; i++) {
            size_t cnt = per + (i < extra);
            for (size_t j = 0; j < cnt && rc == SL_OK; j++)
                rc = assign_add(&out[subs[i]], pl.topics[t], p++);
        }
    }
    free(subs);
    plan_free(&pl);
    return rc;
}

int grp_assign_roundrobin(const grp_assignor_member_t *m, size_t n, grp_partitions_fn parts,
                          void *arg, grp_assign_t *out)
{
    plan_t pl;
    int rc = plan_make(m, n, parts, arg, &pl);
    size_t cursor = 0;
    for (size_t t = 0; rc == SL_OK && t < pl.ntopics; t++) {
        for (int32_t p = 0; p < pl.nparts[t] && rc == SL_OK; p++) {
            /* Someone subscribes to the topic (it is in the plan), so this
             * finds a member within n steps. */
            while (!subscribed(&m[pl.order[cursor % n]], pl.topics[t])) cursor++;
            rc = assign_add(&out[pl.order[cursor % n]], pl.topics[t], p);
            cursor++;
        }
    }
    plan_free(&pl);
    return rc;
}

grp_assignor_fn grp_assignor(const char *name)
{
    if (strcmp(name, "range") == 0) return grp_assign_range;
    if (strcmp(name, "roundrobin") == 0) return grp_assign_roundrobin;
    return NULL;
}
