/* tplist.c — topic-partition lists, shared by the consumer and admin APIs. */
#include <stdlib.h>
#include <string.h>

#include "sluice/sluice.h"

SLUICE_API sluice_tp_list_t *sluice_tp_list_new(size_t size)
{
    sluice_tp_list_t *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    if (size) {
        l->elems = calloc(size, sizeof *l->elems);
        if (!l->elems) {
            free(l);
            return NULL;
        }
        l->size = size;
    }
    return l;
}

SLUICE_API void sluice_tp_list_destroy(sluice_tp_list_t *l)
{
    if (!l) return;
    for (size_t i = 0; i < l->cnt; i++) free(l->elems[i].topic);
    free(l->elems);
    free(l);
}

SLUICE_API sluice_topic_partition_t *sluice_tp_list_add(sluice_tp_list_t *l, const char *topic,
                                                        int32_t partition)
{
    if (!l || !topic) return NULL;
    if (l->cnt == l->size) {
        size_t size = l->size ? l->size * 2 : 8;
        sluice_topic_partition_t *e = realloc(l->elems, size * sizeof *e);
        if (!e) return NULL;
        l->elems = e;
        l->size = size;
    }
    char *t = strdup(topic);
    if (!t) return NULL;
    sluice_topic_partition_t *e = &l->elems[l->cnt++];
    e->topic = t;
    e->partition = partition;
    e->offset = SLUICE_OFFSET_INVALID;
    e->err = 0;
    return e;
}
