#include "errors.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *sl_code_name(int code)
{
    switch (code) {
    case SL_ERR_PARTIAL:
        return "PARTIAL";
    case SL_ERR_LOCKED:
        return "LOCKED";
    case SL_ERR_EXISTS:
        return "EXISTS";
    case SL_ERR_NOT_FOUND:
        return "NOT_FOUND";
    case SL_ERR_INVALID_ARG:
        return "INVALID_ARGUMENT";
    case SL_ERR_NOMEM:
        return "OUT_OF_MEMORY";
    case SL_ERR_UNKNOWN:
        return "UNKNOWN_SERVER_ERROR";
    case SL_OK:
        return "NONE";
    case SL_ERR_OFFSET_OUT_OF_RANGE:
        return "OFFSET_OUT_OF_RANGE";
    case SL_ERR_CORRUPT_MESSAGE:
        return "CORRUPT_MESSAGE";
    case SL_ERR_UNKNOWN_TOPIC_OR_PARTITION:
        return "UNKNOWN_TOPIC_OR_PARTITION";
    case SL_ERR_REQUEST_TIMED_OUT:
        return "REQUEST_TIMED_OUT";
    case SL_ERR_MESSAGE_TOO_LARGE:
        return "MESSAGE_TOO_LARGE";
    case SL_ERR_OFFSET_METADATA_TOO_LARGE:
        return "OFFSET_METADATA_TOO_LARGE";
    case SL_ERR_INVALID_TOPIC:
        return "INVALID_TOPIC_EXCEPTION";
    case SL_ERR_RECORD_LIST_TOO_LARGE:
        return "RECORD_LIST_TOO_LARGE";
    case SL_ERR_INVALID_REQUIRED_ACKS:
        return "INVALID_REQUIRED_ACKS";
    case SL_ERR_ILLEGAL_GENERATION:
        return "ILLEGAL_GENERATION";
    case SL_ERR_INCONSISTENT_GROUP_PROTOCOL:
        return "INCONSISTENT_GROUP_PROTOCOL";
    case SL_ERR_INVALID_GROUP_ID:
        return "INVALID_GROUP_ID";
    case SL_ERR_UNKNOWN_MEMBER_ID:
        return "UNKNOWN_MEMBER_ID";
    case SL_ERR_INVALID_SESSION_TIMEOUT:
        return "INVALID_SESSION_TIMEOUT";
    case SL_ERR_REBALANCE_IN_PROGRESS:
        return "REBALANCE_IN_PROGRESS";
    case SL_ERR_GROUP_ID_NOT_FOUND:
        return "GROUP_ID_NOT_FOUND";
    case SL_ERR_FETCH_SESSION_ID_NOT_FOUND:
        return "FETCH_SESSION_ID_NOT_FOUND";
    case SL_ERR_TOPIC_ALREADY_EXISTS:
        return "TOPIC_ALREADY_EXISTS";
    case SL_ERR_INVALID_PARTITIONS:
        return "INVALID_PARTITIONS";
    case SL_ERR_INVALID_CONFIG:
        return "INVALID_CONFIG";
    case SL_ERR_INVALID_REQUEST:
        return "INVALID_REQUEST";
    case SL_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT:
        return "UNSUPPORTED_FOR_MESSAGE_FORMAT";
    case SL_ERR_STORAGE:
        return "STORAGE_ERROR";
    case SL_ERR_UNSUPPORTED_COMPRESSION:
        return "UNSUPPORTED_COMPRESSION_TYPE";
    case SL_ERR_INVALID_RECORD:
        return "INVALID_RECORD";
    case SL_ERR_LEADER_NOT_AVAILABLE:
        return "LEADER_NOT_AVAILABLE";
    case SL_ERR_COORDINATOR_NOT_AVAILABLE:
        return "COORDINATOR_NOT_AVAILABLE";
    case SL_ERR_NOT_COORDINATOR:
        return "NOT_COORDINATOR";
    case SL_ERR_UNSUPPORTED_VERSION:
        return "UNSUPPORTED_VERSION";
    case SL_ERR_INVALID_REPLICATION_FACTOR:
        return "INVALID_REPLICATION_FACTOR";
    case SL_ERR_OUT_OF_ORDER_SEQUENCE:
        return "OUT_OF_ORDER_SEQUENCE_NUMBER";
    case SL_ERR_DUPLICATE_SEQUENCE:
        return "DUPLICATE_SEQUENCE_NUMBER";
    case SL_ERR_INVALID_PRODUCER_EPOCH:
        return "INVALID_PRODUCER_EPOCH";
    case SL_ERR_INVALID_TXN_STATE:
        return "INVALID_TXN_STATE";
    case SL_ERR_UNKNOWN_PRODUCER_ID:
        return "UNKNOWN_PRODUCER_ID";
    case SL_ERR_TRANSACTIONAL_ID_NOT_FOUND:
        return "TRANSACTIONAL_ID_NOT_FOUND";
    }
    return "UNKNOWN_CODE";
}

static void vset(sl_err_t *err, int code, const char *fmt, va_list ap)
{
    err->code = code;
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
}

int sl_err_set(sl_err_t *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vset(err, code, fmt, ap);
        va_end(ap);
    }
    return code;
}

int sl_err_sys(sl_err_t *err, int errnum, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vset(err, SL_ERR_STORAGE, fmt, ap);
        va_end(ap);
        size_t n = strlen(err->msg);
        if (n < sizeof err->msg)
            snprintf(err->msg + n, sizeof err->msg - n, ": %s", strerror(errnum));
    }
    return SL_ERR_STORAGE;
}

void sl_err_clear(sl_err_t *err)
{
    if (err) {
        err->code = SL_OK;
        err->msg[0] = '\0';
    }
}

size_t sl_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64) return 99;
    size_t row[65];
    for (size_t j = 0; j <= lb; j++) row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t prev = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cur = row[j];
            size_t sub = prev + (a[i - 1] != b[j - 1]);
            size_t del = row[j] + 1, ins = row[j - 1] + 1;
            row[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
            prev = cur;
        }
    }
    return row[lb];
}
