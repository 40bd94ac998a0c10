/* logcheck.h — partitions in storage tests: opening one (a failed open
 * ends the test), and reading a whole partition back, every batch from the
 * log start to the log end, through partition_read_copy, each validated
 * with its CRC and at the offset it should have. Test thread only. */
#ifndef SLUICE_TESTS_LOGCHECK_H
#define SLUICE_TESTS_LOGCHECK_H

#include <stdint.h>

#include "partition.h"

/* The number of records read (offsets dense, every batch valid, ending at
 * the log end), or -1 after a failed CHECK naming the offset. */
int64_t check_log(partition_t *p);

/* partition_open(o, rec) that must succeed: a failed CHECK names the
 * error and the test stops. rec may be NULL. */
partition_t *check_open(const partition_opts_t *o, partition_recovery_t *rec);

#endif
