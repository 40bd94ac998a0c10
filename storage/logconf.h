/* logconf.h — per-topic log configuration: one static table of keys (Kafka's
 * names), types, bounds, defaults and descriptions.
 *
 * A sl_log_conf_t is a plain value: copy it freely. Parsing is pure and
 * thread-safe. Errors are SL_ERR_INVALID_CONFIG with a message naming the
 * key, the value and what was expected.
 */
#ifndef SLUICE_STORAGE_LOGCONF_H
#define SLUICE_STORAGE_LOGCONF_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"

typedef struct sl_log_conf {
    int64_t segment_bytes;        /* roll the active segment at this size */
    int64_t segment_ms;           /* ... or when it is this old (ms) */
    int64_t retention_ms;         /* delete segments older than this; -1 = forever */
    int64_t retention_bytes;      /* delete oldest segments beyond this size; -1 = no limit */
    int64_t index_interval_bytes; /* one offset-index entry per this many log bytes */
    int64_t flush_messages;       /* fdatasync after this many unflushed messages */
    int64_t flush_ms;             /* ... or when unflushed data is this old (ms) */
    int64_t max_message_bytes;    /* largest accepted batch, including its 12-byte overhead */
} sl_log_conf_t;

typedef struct sl_log_conf_def {
    const char *name;
    size_t offset; /* of the int64_t field in sl_log_conf_t */
    int64_t min, max, def;
    const char *unit; /* "bytes", "ms", "messages" */
    const char *doc;
} sl_log_conf_def_t;

/* The table; *n receives the number of entries. Static storage. */
const sl_log_conf_def_t *sl_log_conf_table(size_t *n);

/* Fills *c with every default. */
void sl_log_conf_defaults(sl_log_conf_t *c);

/* Sets one key from its text value. Returns SL_OK, or SL_ERR_INVALID_CONFIG
 * for an unknown key (the message suggests the closest known one) or a value
 * that is not an integer within the key's bounds. *c is unchanged on error. */
int sl_log_conf_set(sl_log_conf_t *c, const char *key, const char *value, sl_err_t *err);

/* Looks a key up; NULL when unknown. */
const sl_log_conf_def_t *sl_log_conf_find(const char *key);

/* Reads the value of `def` from *c. */
int64_t sl_log_conf_value(const sl_log_conf_t *c, const sl_log_conf_def_t *def);

/* Parses a strict decimal int64 (optional leading '-', no spaces, no
 * trailing junk, no overflow). Returns 0 on success, -1 otherwise. */
int sl_parse_int64(const char *s, int64_t *out);

#endif
