/* consumer_proto.h — Kafka's ConsumerProtocol: the Subscription a consumer
 * puts in JoinGroup's protocol metadata and the Assignment that SyncGroup
 * carries, as the byte strings Kafka clients exchange through the group
 * coordinator (broker/group.h stores both, and runs assignors over decoded
 * Subscriptions in broker-side mode).
 *
 * Layouts, in Kafka's classic encoding (kafka.h: big-endian; string = i16
 * length + bytes; bytes = i32 length + bytes, -1 null; array = i32 count):
 *   Subscription v0: i16 version | [string topic] | bytes user_data
 *                v1: ... | [string topic, [i32 partition]] owned_partitions
 *                v2: ... | i32 generation_id
 *                v3: ... | string rack_id (nullable)
 *   Assignment v0..v3: i16 version | [string topic, [i32 partition]]
 *                      | bytes user_data
 * The encoders write v0 with null user_data. The decoders accept any
 * version >= 0 and read the topics (and partitions) only: every later
 * version adds its fields after those, so what librdkafka or the Java
 * client sends at v1..v3 decodes the same as v0. user_data is not read.
 *
 * Ownership: encoders return a malloc'd buffer (free()); decoders fill
 * malloc'd results that the caller releases with grp_strings_free /
 * grp_assign_free, also after an error. Pure: no I/O, no shared state;
 * any thread. Errors: SL_OK or SL_ERR_INVALID_REQUEST (proto/errors.h),
 * which also stands for a failed allocation while decoding (the
 * coordinator answers both the same way).
 *
 * The names keep the coordinator's grp_ prefix: these were part of its API
 * and its callers (the group front ends, tests) use them as they are.
 */
#ifndef SLUICE_PROTO_CONSUMER_PROTO_H
#define SLUICE_PROTO_CONSUMER_PROTO_H

#include <stddef.h>
#include <stdint.h>

/* Topics one Subscription may name: a decoder bound, so that a member's
 * metadata cannot make the coordinator hold an unbounded list. */
#define GRP_MAX_TOPICS 1000

/* Encodes a v0 Subscription of topics[0..n) (each NUL-terminated; longer
 * than 32767 bytes is cut there). NULL on ENOMEM. */
uint8_t *grp_subscription_encode(const char *const *topics, size_t n, size_t *len);

/* Decodes b[0..len) into a malloc'd array of *n malloc'd NUL-terminated
 * topic names (a name holding a NUL byte ends there). SL_OK, or
 * SL_ERR_INVALID_REQUEST: malformed, truncated, a null topic, more than
 * GRP_MAX_TOPICS, or ENOMEM. */
int grp_subscription_decode(const uint8_t *b, size_t len, char ***topics, size_t *n);
/* Frees s[0..n) and s. NULL is ok. */
void grp_strings_free(char **s, size_t n);

/* One topic's partitions in an assignment. */
typedef struct grp_tp {
    char *topic;
    int32_t *parts;
    size_t nparts;
} grp_tp_t;

typedef struct grp_assign {
    grp_tp_t *topics;
    size_t ntopics;
} grp_assign_t;

/* Encodes a v0 Assignment of a, topics and partitions in the order given.
 * NULL on ENOMEM. */
uint8_t *grp_assignment_encode(const grp_assign_t *a, size_t *len);
/* Decodes b[0..len); an empty buffer is an empty assignment (what a member
 * left out of the leader's SyncGroup gets). SL_OK or
 * SL_ERR_INVALID_REQUEST; *out owned by the caller (grp_assign_free, also
 * after an error). */
int grp_assignment_decode(const uint8_t *b, size_t len, grp_assign_t *out);
/* Frees what a holds and leaves it empty; a itself is the caller's. NULL is
 * ok. */
void grp_assign_free(grp_assign_t *a);

#endif
