/* errors.h — the one error enum of Sluice.
 *
 * 0 is success. Positive codes travel on the wire (Sluice's protocol uses the
 * same numbers as Kafka's protocol wherever Kafka has the same condition, so
 * the Kafka listener passes them through unchanged). Negative codes are local
 * to a process and never sent.
 *
 * Internal calls return 0 or one of these codes; where a human message
 * matters they also fill an sl_err_t (a code plus a message naming the
 * object: file, offset, key). sl_err_t is a plain value owned by the caller;
 * every function accepts err == NULL. Thread-safe: no shared state.
 */
#ifndef SLUICE_PROTO_ERRORS_H
#define SLUICE_PROTO_ERRORS_H

#include <stddef.h>

typedef enum sl_code {
    /* Local, never on the wire. */
    SL_ERR_PARTIAL = -7,     /* need more input bytes (a decoder's "later") */
    SL_ERR_LOCKED = -6,      /* data directory held by another process */
    SL_ERR_EXISTS = -5,      /* local object already exists */
    SL_ERR_NOT_FOUND = -4,   /* local object does not exist */
    SL_ERR_INVALID_ARG = -3, /* a caller passed an argument out of contract */
    SL_ERR_NOMEM = -2,       /* allocation failed */
    SL_ERR_UNKNOWN = -1,     /* unexpected failure (Kafka's UNKNOWN_SERVER_ERROR) */

    SL_OK = 0,

    /* Wire codes, Kafka-numbered. */
    SL_ERR_OFFSET_OUT_OF_RANGE = 1,
    SL_ERR_CORRUPT_MESSAGE = 2, /* CRC or length mismatch */
    SL_ERR_UNKNOWN_TOPIC_OR_PARTITION = 3,
    SL_ERR_LEADER_NOT_AVAILABLE = 5,
    SL_ERR_REQUEST_TIMED_OUT = 7,
    SL_ERR_MESSAGE_TOO_LARGE = 10,
    SL_ERR_OFFSET_METADATA_TOO_LARGE = 12,
    SL_ERR_COORDINATOR_NOT_AVAILABLE = 15,
    SL_ERR_NOT_COORDINATOR = 16,
    SL_ERR_INVALID_TOPIC = 17,
    SL_ERR_RECORD_LIST_TOO_LARGE = 18,
    SL_ERR_INVALID_REQUIRED_ACKS = 21,
    SL_ERR_ILLEGAL_GENERATION = 22,
    SL_ERR_INCONSISTENT_GROUP_PROTOCOL = 23,
    SL_ERR_INVALID_GROUP_ID = 24,
    SL_ERR_UNKNOWN_MEMBER_ID = 25,
    SL_ERR_INVALID_SESSION_TIMEOUT = 26,
    SL_ERR_REBALANCE_IN_PROGRESS = 27,
    SL_ERR_UNSUPPORTED_VERSION = 35,
    SL_ERR_TOPIC_ALREADY_EXISTS = 36,
    SL_ERR_INVALID_PARTITIONS = 37,
    SL_ERR_INVALID_REPLICATION_FACTOR = 38,
    SL_ERR_INVALID_CONFIG = 40,
    SL_ERR_INVALID_REQUEST = 42,
    SL_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT = 43,
    SL_ERR_OUT_OF_ORDER_SEQUENCE = 45,
    SL_ERR_DUPLICATE_SEQUENCE = 46,
    SL_ERR_INVALID_PRODUCER_EPOCH = 47,
    SL_ERR_INVALID_TXN_STATE = 48,
    SL_ERR_STORAGE = 56, /* Kafka's KAFKA_STORAGE_ERROR: disk I/O failed */
    SL_ERR_UNKNOWN_PRODUCER_ID = 59,
    SL_ERR_GROUP_ID_NOT_FOUND = 69,
    SL_ERR_FETCH_SESSION_ID_NOT_FOUND = 70,
    SL_ERR_UNSUPPORTED_COMPRESSION = 76,
    SL_ERR_INVALID_RECORD = 87,
    SL_ERR_TRANSACTIONAL_ID_NOT_FOUND = 105,
} sl_code_t;

/* A code plus a readable message. msg is always NUL-terminated. */
typedef struct sl_err {
    int code;
    char msg[256];
} sl_err_t;

/* Returns a static, constant name for `code` ("CORRUPT_MESSAGE"); never NULL. */
const char *sl_code_name(int code);

/* Records code and a printf-style message in *err (if err is not NULL) and
 * returns `code`, so callers can write `return sl_err_set(err, ...)`. */
int sl_err_set(sl_err_t *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Like sl_err_set with SL_ERR_STORAGE, appending ": strerror(errnum)". */
int sl_err_sys(sl_err_t *err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Levenshtein distance between two short strings (99 when either exceeds 64
 * characters), for "did you mean" suggestions on unknown keys. */
size_t sl_edit_distance(const char *a, const char *b);

/* Clears *err to SL_OK and an empty message. */
void sl_err_clear(sl_err_t *err);

#endif
