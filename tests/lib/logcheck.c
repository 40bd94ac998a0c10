#include "logcheck.h"

#include <inttypes.h>
#include <stdlib.h>

#include "batch.h"
#include "check.h"

int64_t check_log(partition_t *p)
{
    int64_t next = partition_log_start(p), leo = partition_log_end(p);
    while (next < leo) {
        uint8_t *buf;
        size_t len;
        sl_err_t err;
        if (partition_read_copy(p, next, 1 << 16, &buf, &len, &err) != SL_OK || len == 0) {
            CHECK_MSG(0, "read at %" PRId64 ": %s", next, err.msg);
            free(buf);
            return -1;
        }
        for (size_t off = 0; off < len;) {
            size_t sz = (size_t)sl_batch_total_size(buf + off);
            sl_batch_hdr_t h;
            if (sl_batch_validate(buf + off, sz, NULL, &h, &err) != SL_OK ||
                h.base_offset != next) {
                CHECK_MSG(0, "batch at offset %" PRId64 ": %s", next, err.msg);
                free(buf);
                return -1;
            }
            next += h.last_offset_delta + 1;
            off += sz;
        }
        free(buf);
    }
    CHECK_EQ_INT(next, leo);
    return next - partition_log_start(p);
}

partition_t *check_open(const partition_opts_t *o, partition_recovery_t *rec)
{
    partition_t *p = NULL;
    sl_err_t err;
    int rc = partition_open(o, &p, rec, &err);
    CHECK_MSG(rc == SL_OK, "open: %s", err.msg);
    CHECK_FATAL(p != NULL);
    return p;
}
