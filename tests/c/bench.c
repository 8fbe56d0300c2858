/* choose+finish through the C API, for `make bench-c` (compare with
 * ffi/examples/choose_bench.rs, the same loop on the Rust API).
 * Prints "RESULT <strategy> <threads> <ns per choose+finish>" lines (best of 5 runs). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <peerlb.h>

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

typedef struct {
    peerlb_list *list;
    long n;
} job;

static void *loop(void *arg) {
    job *j = arg;
    peerlb_request req = {1000, NULL, 0};
    for (long i = 0; i < j->n; i++) {
        peerlb_choice c;
        if (peerlb_list_choose(j->list, &req, &c) != PEERLB_OK) abort();
        if (peerlb_choice_finish(&c, PEERLB_OUTCOME_OK, 100) != PEERLB_OK) abort();
    }
    return NULL;
}

static double run(const char *strategy, int threads, long n) {
    peerlb_list_options *opts;
    peerlb_list *list;
    peerlb_list_options_new(&opts);
    peerlb_list_options_set_strategy(opts, strategy);
    peerlb_list_options_set_seed(opts, 1);
    peerlb_list_new(opts, NULL, &list);
    peerlb_list_options_free(opts);
    char ids[8][32];
    peerlb_peer_spec specs[8];
    for (int i = 0; i < 8; i++) {
        snprintf(ids[i], sizeof ids[i], "10.0.0.%d:80", i + 1);
        specs[i].id = ids[i];
        specs[i].id_len = strlen(ids[i]);
        specs[i].weight = 1;
    }
    peerlb_list_update(list, specs, 8, NULL, 0);
    peerlb_list_start(list);
    double best = 1e18;
    for (int r = 0; r < 5; r++) {
        pthread_t th[16];
        job jobs[16];
        double t0 = now_ns();
        for (int t = 0; t < threads; t++) {
            jobs[t].list = list;
            jobs[t].n = n;
            pthread_create(&th[t], NULL, loop, &jobs[t]);
        }
        for (int t = 0; t < threads; t++) pthread_join(th[t], NULL);
        double per = (now_ns() - t0) / (double)(n * threads);
        if (per < best) best = per;
    }
    peerlb_list_free(list);
    return best;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    /* PEERLB_BENCH_ONLY=<strategy> runs just that strategy on one thread (for callgrind). */
    const char *only = getenv("PEERLB_BENCH_ONLY");
    const char *strategies[] = {"round-robin", "random", "fewest-pending", "two-random-choices"};
    for (int s = 0; s < 4; s++) {
        if (only && strcmp(only, strategies[s]) != 0) continue;
        printf("RESULT %s 1 %.1f\n", strategies[s], run(strategies[s], 1, n));
        if (!only) printf("RESULT %s 2 %.1f\n", strategies[s], run(strategies[s], 2, n / 2));
    }
    return 0;
}
