/* protocol.c — the listener registry's table (protocol.h). */
#include "protocol.h"

const protocol_t *const protocols[PROTOCOLS] = {&protocol_sluice, &protocol_kafka};
