/* kraw.h — a minimal, independent Kafka wire-protocol client for the tests
 * of sluiced's Kafka listener: a request builder, a bounded frame reader,
 * a response reader, and round trips for the few requests the tests need
 * byte by byte (ApiVersions, Metadata, Produce, Fetch, ListOffsets).
 *
 * Written from docs/kafka-protocol.md, not from proto/kafka.h, so that the
 * broker's codec is checked against a second implementation. Only
 * non-flexible versions (int16 string lengths, int32 array counts). Every
 * read is bounded by a timeout. Single-threaded per connection.
 */
#ifndef SLUICE_TESTS_KRAW_H
#define SLUICE_TESTS_KRAW_H

#include <stddef.h>
#include <stdint.h>

/* ---- request builder ------------------------------------------------------ */

typedef struct kt_buf {
    uint8_t *p;
    size_t len, cap;
} kt_buf_t;

/* Starts a request: size placeholder, header v1 (key, version, corr,
 * client_id; NULL = null). */
void kt_req(kt_buf_t *b, int16_t key, int16_t ver, int32_t corr, const char *client_id);
void kt_i8(kt_buf_t *b, int8_t v);
void kt_i16(kt_buf_t *b, int16_t v);
void kt_i32(kt_buf_t *b, int32_t v);
void kt_i64(kt_buf_t *b, int64_t v);
void kt_str(kt_buf_t *b, const char *s);                /* NULL = null (-1) */
void kt_bytes(kt_buf_t *b, const void *p, int32_t len); /* NULL = null (-1) */
void kt_raw(kt_buf_t *b, const void *p, size_t len);
/* Patches the size prefix to len - 4; returns b->p. */
uint8_t *kt_finish(kt_buf_t *b);
void kt_free(kt_buf_t *b);

/* ---- connection ----------------------------------------------------------- */

/* Connects to 127.0.0.1:port; fd or -1. */
int kt_connect(int port);
/* Writes everything; 0 or -1 (EPIPE is not fatal: SIGPIPE is ignored). */
int kt_send(int fd, const void *p, size_t len);

enum { KT_OK = 0, KT_EOF = 1, KT_TIMEOUT = 2, KT_PARTIAL = 3, KT_ERROR = 4 };

/* Reads one response frame: *out is a malloc'd copy of the bytes after the
 * size prefix (correlation id first), *len their count. Returns KT_OK, or
 * KT_EOF (closed before any byte), KT_PARTIAL (closed mid-frame),
 * KT_TIMEOUT, KT_ERROR; *out is NULL then. */
int kt_recv(int fd, int timeout_ms, uint8_t **out, size_t *len);

/* Reads until EOF: the number of bytes that arrived before it, or -1 when
 * the connection was still open after timeout_ms. */
long kt_closed_after(int fd, int timeout_ms);

/* ---- response reader ------------------------------------------------------ */

typedef struct kt_rd {
    const uint8_t *p, *end;
    int bad; /* set once a read ran past the end; later reads return 0 */
} kt_rd_t;

void kt_rd_init(kt_rd_t *r, const uint8_t *p, size_t len);
int8_t kt_r8(kt_rd_t *r);
int16_t kt_r16(kt_rd_t *r);
int32_t kt_r32(kt_rd_t *r);
int64_t kt_r64(kt_rd_t *r);
/* A string into out (NUL-terminated, truncated to cap - 1); returns its
 * length, -1 for null. */
int kt_rstr(kt_rd_t *r, char *out, size_t cap);
/* A bytes field: returns its length (-1 null), *p points at the bytes. */
int32_t kt_rbytes(kt_rd_t *r, const uint8_t **p);
/* Bytes left. */
size_t kt_left(const kt_rd_t *r);

/* ---- round trips ---------------------------------------------------------- */

/* Fetch of one partition. records is a malloc'd copy (free it). */
typedef struct kt_fetch_res {
    int rc; /* KT_OK, or the transport status of kt_recv; -1 = response did not parse */
    int16_t top_error;
    int16_t error;
    int64_t hwm, lso, log_start;
    int32_t preferred_replica;
    uint8_t *records;
    int32_t records_len; /* -1 null */
} kt_fetch_res_t;

/* Fetch (v0..v11) of topic/partition at offset: send and receive apart
 * (for long polls), or both. */
int kt_fetch_send(int fd, int16_t ver, int32_t corr, const char *topic, int32_t part,
                  int64_t offset, int32_t max_wait_ms, int32_t min_bytes, int32_t max_bytes);
void kt_fetch_recv(int fd, int16_t ver, int32_t corr, const char *topic, int32_t part,
                   int timeout_ms, kt_fetch_res_t *out);
void kt_fetch(int fd, int16_t ver, int32_t corr, const char *topic, int32_t part, int64_t offset,
              int32_t max_wait_ms, int32_t min_bytes, int32_t max_bytes, kt_fetch_res_t *out);

/* Produce v0..v7 of one batch (acks -1, 0 or 1); returns the per-partition
 * error code, -1000 - transport status when no response came, -2000 when it
 * did not parse. *base gets base_offset. With acks 0 no response is read
 * (returns 0). */
int kt_produce(int fd, int16_t ver, int32_t corr, int16_t acks, const char *topic, int32_t part,
               const void *records, int32_t len, int64_t *base);

/* ListOffsets v1 of one partition (ts -1 latest, -2 earliest, else ms);
 * returns the error code (or < -999 as above), *offset. */
int kt_list_offsets(int fd, int32_t corr, const char *topic, int32_t part, int64_t ts,
                    int64_t *offset);

/* CreateTopics v4 of one topic (parts/rf -1 = broker default); returns the
 * topic's error code (< -999 as above). */
int kt_create_topic(int fd, int32_t corr, const char *name, int32_t parts, int16_t rf);

#endif
