/* assign.h — the partition assignors the coordinator runs itself for
 * broker-side assignment (GRP_MODE_BROKER, Sluice's protocol; group.h):
 * range and roundrobin, Kafka's two classic ones. In client mode (the Kafka
 * listener) the group's leader assigns and none of this runs.
 *
 * Pure functions: the result depends only on the arguments (members are
 * sorted by id, topics by name, so input order does not matter), there is
 * no global state, and any thread may run any number of them at once.
 * Memory: out[] receives malloc'd assignments the caller frees with
 * grp_assign_free (proto/consumer_proto.h), also after an error (ENOMEM
 * may leave them partly filled). Errors: SL_OK, SL_ERR_NOMEM, or
 * SL_ERR_INVALID_REQUEST when the subscribed topics add up to more than
 * GRP_MAX_ASSIGNED partitions (found before anything is assigned).
 */
#ifndef SLUICE_BROKER_ASSIGN_H
#define SLUICE_BROKER_ASSIGN_H

#include <stddef.h>
#include <stdint.h>

#include "consumer_proto.h" /* grp_assign_t */

/* Partitions one broker-side assignment may hand out: bounds the memory
 * and time of one rebalance, whatever the subscriptions name. */
#define GRP_MAX_ASSIGNED 100000

/* Partition count of `topic`, or 0 when it does not exist. The assignors
 * call it once per distinct subscribed topic, in name order, before they
 * assign anything; the coordinator passes the callback given to grp_new
 * (see there for its locking rule). */
typedef int32_t (*grp_partitions_fn)(void *arg, const char *topic);

/* One group member as an assignor sees it: its id and the topics of its
 * Subscription. Views; not modified. */
typedef struct grp_assignor_member {
    const char *member_id;
    char **topics;
    size_t ntopics;
} grp_assignor_member_t;

/* Assigns the partitions of every topic some member subscribes to.
 * Members are taken in member-id order (equal ids in their order in m[]),
 * topics in name order; topics the callback reports as 0 partitions are
 * skipped. out[0..n) (zeroed by the caller) receives member i's
 * assignment in out[i], topics in name order and each topic's partitions
 * ascending; every partition goes to exactly one member that subscribes
 * to its topic.
 *  range:      per topic, its subscribers get consecutive ranges; the
 *              first (partitions % subscribers) get one more (Kafka's
 *              RangeAssignor).
 *  roundrobin: all topic-partitions, in order, dealt one by one to the
 *              members in turn, skipping a member not subscribed to the
 *              topic at hand (Kafka's RoundRobinAssignor). */
typedef int (*grp_assignor_fn)(const grp_assignor_member_t *m, size_t n, grp_partitions_fn parts,
                               void *arg, grp_assign_t *out);

int grp_assign_range(const grp_assignor_member_t *m, size_t n, grp_partitions_fn parts, void *arg,
                     grp_assign_t *out);
int grp_assign_roundrobin(const grp_assignor_member_t *m, size_t n, grp_partitions_fn parts,
                          void *arg, grp_assign_t *out);

/* The assignor for a protocol name ("range", "roundrobin"), or NULL. */
grp_assignor_fn grp_assignor(const char *name);

#endif
