/* logcheck.h — reads a whole partition back in tests: every batch from the
 * log start to the log end, through partition_read_copy, each validated with
 * its CRC and at the offset it should have. Test thread only. */
#ifndef SLUICE_TESTS_LOGCHECK_H
#define SLUICE_TESTS_LOGCHECK_H

#include <stdint.h>

#include "partition.h"

/* The number of records read (offsets dense, every batch valid, ending at
 * the log end), or -1 after a failed CHECK naming the offset. */
int64_t check_log(partition_t *p);

#endif
