/* clock.h — the clocks every part of Sluice reads, in one place.
 *
 * Two clocks, never mixed:
 *   - wall (CLOCK_REALTIME): what goes on disk or on the wire — record
 *     timestamps, retention ages, segment.ms, Kafka's producer ids. It can
 *     jump (NTP, an operator), so never measure a wait with it.
 *   - monotonic (CLOCK_MONOTONIC): deadlines, timeouts, latencies. Its zero
 *     is arbitrary (boot), so its values mean nothing outside this process.
 *
 * Every value is a signed int64_t: a deadline minus now may go negative,
 * and unsigned arithmetic would turn "late" into "centuries left". int64_t
 * nanoseconds last 292 years from the clock's zero.
 *
 * clock_gettime cannot fail for these clocks on Linux, so nothing here
 * reports an error. Header-only (static inline): proto/ is linked into the
 * broker, storage and the client, and each of them reads clocks on hot paths.
 */
#ifndef SLUICE_PROTO_CLOCK_H
#define SLUICE_PROTO_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
static inline int64_t sl_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Monotonic milliseconds, microseconds and nanoseconds (CLOCK_MONOTONIC). */
static inline int64_t sl_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline int64_t sl_mono_us(void)
{
    return sl_mono_ns() / 1000;
}

static inline int64_t sl_mono_ms(void)
{
    return sl_mono_ns() / 1000000;
}

/* The absolute time ms_from_now (≥ 0) milliseconds from now on `clock`, for
 * pthread_cond_timedwait: CLOCK_REALTIME for a default condition variable,
 * CLOCK_MONOTONIC for one made with pthread_condattr_setclock. */
static inline struct timespec sl_abstime(clockid_t clock, int64_t ms_from_now)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    ts.tv_sec += (time_t)(ms_from_now / 1000);
    ts.tv_nsec += (long)(ms_from_now % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    return ts;
}

#endif
