/* Tiny assertion helpers shared by the C tests. Each test program ends with the line
 * "N passed, M failed" and exits non-zero when anything failed. */
#ifndef PEERLB_TESTUTIL_H
#define PEERLB_TESTUTIL_H

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "peerlb.h"

static int t_passed, t_failed;

#define EXPECT(cond, ...)                                                           \
    do {                                                                            \
        if (cond) {                                                                 \
            t_passed++;                                                             \
        } else {                                                                    \
            t_failed++;                                                             \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);         \
            fprintf(stderr, __VA_ARGS__);                                           \
            fprintf(stderr, " (last error: %s)\n", peerlb_last_error_message());    \
        }                                                                           \
    } while (0)

/* Expects a call to return `want`. */
#define EXPECT_STATUS(call, want)                                                   \
    do {                                                                            \
        peerlb_status got_ = (call);                                                \
        EXPECT(got_ == (want), "%s returned %s, want %s", #call,                    \
               peerlb_status_str(got_), peerlb_status_str(want));                   \
    } while (0)

#define OK(call) EXPECT_STATUS(call, PEERLB_OK)

static inline int t_summary(const char *name) {
    printf("%s: %d passed, %d failed\n", name, t_passed, t_failed);
    return t_failed == 0 ? 0 : 1;
}

static inline void t_sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static inline double t_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif
