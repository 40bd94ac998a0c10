/* errors.c — names of libsluice's error codes. Local codes (negative) are
 * librdkafka's numbers and names; broker codes are Kafka's and named by
 * proto/errors.c. Static strings; thread-safe. */
#include "errors.h"

#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

SLUICE_API const char *sluice_err2str(int err)
{
    switch (err) {
    case SLUICE_ERR__BAD_MSG:
        return "BAD_MSG";
    case SLUICE_ERR__DESTROY:
        return "DESTROY";
    case SLUICE_ERR__TRANSPORT:
        return "TRANSPORT";
    case SLUICE_ERR__MSG_TIMED_OUT:
        return "MSG_TIMED_OUT";
    case SLUICE_ERR__PARTITION_EOF:
        return "PARTITION_EOF";
    case SLUICE_ERR__UNKNOWN_PARTITION:
        return "UNKNOWN_PARTITION";
    case SLUICE_ERR__UNKNOWN_TOPIC:
        return "UNKNOWN_TOPIC";
    case SLUICE_ERR__TIMED_OUT:
        return "TIMED_OUT";
    case SLUICE_ERR__QUEUE_FULL:
        return "QUEUE_FULL";
    case SLUICE_ERR__INVALID_ARG:
        return "INVALID_ARG";
    case SLUICE_ERR__NO_MEMORY:
        return "NO_MEMORY";
    case SLUICE_ERR__STATE:
        return "STATE";
    case SLUICE_OK:
        return "NO_ERROR";
    default:
        if (err >= -1) return sl_code_name(err); /* the broker's, Kafka-numbered */
        return "UNKNOWN_LOCAL_ERROR";
    }
}

SLUICE_API int sluice_err_is_retriable(int err)
{
    switch (err) {
    case SLUICE_ERR__TRANSPORT:
    case SLUICE_ERR_REQUEST_TIMED_OUT:
    case SLUICE_ERR_STORAGE_ERROR:
        return 1;
    default:
        return 0;
    }
}

int sl_client_code_from_wire(int code)
{
    return code;
}

void sl_errf(char *errstr, size_t size, const char *fmt, ...)
{
    if (!errstr || size == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errstr, size, fmt, ap);
    va_end(ap);
}
