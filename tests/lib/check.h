/* check.h — the assertions of Sluice's C tests.
 *
 * A test program is a main() that calls CHECK*() and returns check_exit().
 * A failed CHECK prints file:line and the expression (and values) to stderr,
 * counts the failure and carries on, so one run reports every failure; ctest
 * sees a non-zero exit. CHECK_FATAL stops the program at once (for set-up that
 * later checks depend on). Single-threaded use from the test's main thread;
 * REQUIRE-style macros are safe from other threads only in that they abort.
 */
#ifndef SLUICE_TESTS_CHECK_H
#define SLUICE_TESTS_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern int check_failures;
extern int check_count;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        check_count++;                                                                             \
        if (!(cond)) {                                                                             \
            check_failures++;                                                                      \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                       \
    do {                                                                                           \
        check_count++;                                                                             \
        if (!(cond)) {                                                                             \
            check_failures++;                                                                      \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);               \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
    do {                                                                                           \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                            \
        check_count++;                                                                             \
        if (check_a_ != check_b_) {                                                                \
            check_failures++;                                                                      \
            fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld != %lld)\n", __FILE__, __LINE__,  \
                    #a, #b, check_a_, check_b_);                                                   \
        }                                                                                          \
    } while (0)

#define CHECK_FATAL(cond)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: FATAL: %s\n", __FILE__, __LINE__, #cond);                      \
            exit(2);                                                                               \
        }                                                                                          \
    } while (0)

/* Prints "N checks, M failed" and returns the exit status for main(). A test
 * that ran no check at all fails: it proved nothing. */
int check_exit(void);

/* The whole file as a NUL-terminated malloc'd string; fatal if unreadable. */
char *check_slurp(const char *path);

/* A fresh directory under $TMPDIR (or /tmp) named sluice-<name>-XXXXXX; the
 * returned path is malloc'd. check_rmtree removes it recursively. */
char *check_tmpdir(const char *name);
void check_rmtree(const char *path);

#endif
