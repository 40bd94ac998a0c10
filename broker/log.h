/* log.h — the broker's log: one line per event on stderr,
 * "2026-11-27T03:48:59.123Z LEVEL subsystem: message".
 *
 * Thread-safe (one write(2) per line). Debug lines cost one comparison when
 * off. Never log payloads.
 */
#ifndef SLUICE_BROKER_LOG_H
#define SLUICE_BROKER_LOG_H

enum { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

extern int log_level;

/* Parses "error|warn|info|debug"; returns the level or -1. */
int log_level_parse(const char *s);

void log_write(int level, const char *sub, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_error(sub, ...) log_write(LOG_ERROR, sub, __VA_ARGS__)
#define log_warn(sub, ...)                                                                         \
    do {                                                                                           \
        if (log_level >= LOG_WARN) log_write(LOG_WARN, sub, __VA_ARGS__);                          \
    } while (0)
#define log_info(sub, ...)                                                                         \
    do {                                                                                           \
        if (log_level >= LOG_INFO) log_write(LOG_INFO, sub, __VA_ARGS__);                          \
    } while (0)
#define log_debug(sub, ...)                                                                        \
    do {                                                                                           \
        if (log_level >= LOG_DEBUG) log_write(LOG_DEBUG, sub, __VA_ARGS__);                        \
    } while (0)

#endif
