/* rlib.h — helpers shared by the crash-consistency tests (tests/recovery):
 * command-line options (--cycles, --seed), a seeded PRNG, libsluice handles
 * pointed at a harness_t's broker, self-checking message payloads, reading
 * partitions back with the libsluice consumer (dense offsets, every error
 * reported), and raw access to a partition's files (segments, batch headers,
 * the recovery-point checkpoint).
 *
 * Single-threaded use from the test's main thread unless a function says
 * otherwise (producers, payload helpers and the PRNG may be used by one thread per
 * handle/state). Every wait is bounded.
 */
#ifndef SLUICE_TESTS_RLIB_H
#define SLUICE_TESTS_RLIB_H

#include <stddef.h>
#include <stdint.h>

#include "clock.h"
#include "harness.h"
#include "sluice/sluice.h"

/* ---- options -------------------------------------------------------------- */

typedef struct rl_opts {
    int cycles;           /* --cycles N (default given by the test) */
    uint64_t seed;        /* --seed S, else $SLUICE_SEED, else time and pid */
    int long_run;         /* --long: the test's torture-size parameters */
    const char *flags[8]; /* other "--name" arguments, for rl_flag */
    int nflags;
} rl_opts_t;

/* Parses --cycles N / --cycles=N, --seed S / --seed=S, --long and up to 8
 * other "--name" flags; exits 2 on anything else. */
void rl_parse_args(int argc, char **argv, int default_cycles, rl_opts_t *o);
/* 1 when "--name" was given. */
int rl_flag(const rl_opts_t *o, const char *name);
/* Exits 2 naming the first flag not in allowed (NULL-terminated, may be NULL). */
void rl_allow_flags(const rl_opts_t *o, const char *const *allowed);

/* Makes sure h's broker does not outlive the test: an atexit handler
 * SIGKILLs it, so a CHECK_FATAL exit leaves no sluiced behind. One harness
 * per program (the last one given wins). */
void rl_guard(harness_t *h);

/* ---- PRNG (splitmix64; one state per thread) ------------------------------ */

typedef struct rl_rng {
    uint64_t s;
} rl_rng_t;

uint64_t rl_next(rl_rng_t *r);
/* Uniform in [lo, hi] (hi ≥ lo). */
uint64_t rl_range(rl_rng_t *r, uint64_t lo, uint64_t hi);

/* Monotonic seconds (sl_mono_ms() of clock.h for milliseconds). */
double rl_now_s(void);

/* ---- libsluice handles ------------------------------------------------------ */

/* A configuration with bootstrap.servers = 127.0.0.1:h->port plus the
 * key/value pairs of kv (NULL-terminated, may be NULL); fatal on a bad key. */
sluice_conf_t *rl_conf(const harness_t *h, const char *const *kv);
/* Producer with dr_cb/opaque (cb may be NULL); fatal if it cannot be made. */
sluice_producer_t *rl_producer(const harness_t *h, const char *const *kv, sluice_dr_cb_t *cb,
                               void *opaque);
sluice_consumer_t *rl_consumer(const harness_t *h, const char *const *kv);
sluice_admin_t *rl_admin(const harness_t *h);

/* Creates a topic (configs "key=value", n of them); returns the libsluice
 * error (0 = created). */
int rl_create_topic(const harness_t *h, const char *topic, int32_t partitions,
                    const char *const *configs, size_t n);

/* Partition count of topic (-1 when it does not exist or on error); with
 * leo != NULL (room for max entries) also the log end offsets. */
int rl_describe(const harness_t *h, const char *topic, int64_t *leo, int max);

/* ---- payloads ----------------------------------------------------------------- */

/* A value that names its producer and sequence number and checks itself:
 * "R<pid>:<seq>:<len>:" followed by filler derived from (pid, seq). len is
 * the total length (at least RL_PAYLOAD_MIN, at most cap). */
#define RL_PAYLOAD_MIN 40
size_t rl_payload(char *buf, size_t cap, uint32_t pid, uint64_t seq, size_t len);
/* 0 and (*pid, *seq) when v[0..len) is exactly such a value, -1 otherwise. */
int rl_payload_parse(const void *v, size_t len, uint32_t *pid, uint64_t *seq);

/* (pid, seq) packed into one word for maps; 0 is never a valid packing. */
static inline uint64_t rl_pack(uint32_t pid, uint64_t seq)
{
    return ((uint64_t)(pid + 1) << 40) | (seq & ((1ull << 40) - 1));
}

/* ---- reading back with the libsluice consumer --------------------------------- */

typedef struct rl_part {
    const char *topic;
    int32_t partition;
    int64_t from; /* first offset to read */
    int64_t to;   /* expected log end: reading stops at the end-of-partition there */
    /* filled by rl_read: */
    int64_t next;   /* offset after the last record delivered */
    int64_t eof_at; /* where the consumer reported the end, -1 if it did not */
    int64_t records, gaps, errors;
} rl_part_t;

/* Called for every delivered message that is not an end-of-partition event,
 * including errors (m->err != 0). idx indexes parts. */
typedef void (*rl_msg_fn)(void *arg, size_t idx, const sluice_message_t *m);

/* Reads parts[0..n) with one consumer (assign at each from; check.crcs on;
 * enable.partition.eof on) until every partition reported its end at or
 * beyond `to`, or timeout_ms passed. Every record's offset must follow the
 * previous one (counted in gaps, with the first ones printed); every error
 * message is counted in errors and printed. extra_kv adds consumer settings.
 * Returns 0 when every partition was read to its end, -1 on timeout (a
 * CHECK has failed then). */
int rl_read(const harness_t *h, rl_part_t *parts, size_t n, rl_msg_fn fn, void *arg, int timeout_ms,
            const char *const *extra_kv);

/* ---- files ----------------------------------------------------------------------- */

/* DATA/topics/<topic>/<partition> into buf. */
void rl_part_dir(const harness_t *h, const char *topic, int32_t partition, char *buf, size_t cap);

/* Base offsets of the "<20 digits>.log" files in dir, sorted; returns the
 * count (≤ max), -1 if dir cannot be read. */
int rl_segments(const char *dir, int64_t *bases, int max);
void rl_segment_path(const char *dir, int64_t base, char *buf, size_t cap);

/* The whole file (malloc'd; *len its size) or NULL. */
uint8_t *rl_slurp(const char *path, size_t *len);
/* Replaces the file's content with buf[0..len); 0 or -1. */
int rl_write_file(const char *path, const void *buf, size_t len);

/* One batch found in a segment file. */
typedef struct rl_batch {
    uint64_t pos, size;
    int64_t base, last; /* offsets */
} rl_batch_t;

/* Walks the batches of a segment's bytes from position 0 with full checks
 * (length, magic, CRC-32C, base offsets dense from first_offset). Returns the
 * number of good batches (*out is malloc'd, freed by the caller; may be NULL
 * when 0) and sets *end_pos to the position after the last good one. */
size_t rl_walk(const uint8_t *buf, size_t len, int64_t first_offset, rl_batch_t **out,
               uint64_t *end_pos);

/* The recovery-point checkpoint of a partition directory (docs/storage.md):
 * 1 and the winning slot's fields when a valid slot exists, else 0. */
int rl_checkpoint(const char *dir, int64_t *offset, int64_t *seg_base, uint64_t *pos);

/* Runs argv (argv[0] a path) with stdout+stderr captured into *out (malloc'd,
 * may be NULL), killing it after timeout_ms. Returns the exit status (0–255),
 * 128+signal when killed by one, -1 if it could not run. */
int rl_run(char *const argv[], char **out, int timeout_ms);

#endif
