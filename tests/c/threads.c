/* Threads through the C API:
 *  - a foreign transport written in C whose own thread flips peers' statuses while four
 *    threads choose;
 *  - transport callbacks that re-enter the list (update, introspect, is_running) from
 *    inside retain and release;
 *  - four threads choosing concurrently on one list (counts add up, pending returns to 0);
 *  - stop wakes every waiting choose;
 *  - owned subscribers outlive the list safely;
 *  - ejection under four threads: events from choosing threads and from timer threads
 *    never overlap, and freeing the subscription waits for a running callback. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peerlb.h"
#include "testutil.h"

#define LIT(s) s, sizeof(s) - 1
#define NPEERS 4
#define CHOOSERS 4

static const char *const PEERS[NPEERS] = {"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80"};

static int peer_index(const char *id, size_t len) {
    for (int i = 0; i < NPEERS; i++)
        if (strlen(PEERS[i]) == len && memcmp(PEERS[i], id, len) == 0) return i;
    return -1;
}

static long all_pending(peerlb_list *list) {
    char *json = NULL;
    if (peerlb_list_introspect(list, &json) != PEERLB_OK) return -1;
    long sum = 0;
    for (const char *p = json; (p = strstr(p, "\"pending\":")) != NULL; p += 10) sum += strtol(p + 10, NULL, 10);
    peerlb_string_free(json);
    return sum;
}

/* ---------- 1. a C transport flipping statuses from its own thread ---------- */

typedef struct {
    pthread_mutex_t mu;
    peerlb_subscriber *subs[NPEERS]; /* owned clones */
    atomic_int stop;
    atomic_int flips;
    atomic_int retains, releases;
    atomic_int freed;
} flipper;

static int flip_retain(void *u, const char *id, size_t len, const peerlb_subscriber *s) {
    flipper *f = u;
    int i = peer_index(id, len);
    if (i < 0) return PEERLB_INVALID_ARGUMENT;
    peerlb_subscriber *copy = NULL;
    if (peerlb_subscriber_clone(s, &copy) != PEERLB_OK) return PEERLB_INVALID_ARGUMENT;
    pthread_mutex_lock(&f->mu);
    peerlb_subscriber *old = f->subs[i];
    f->subs[i] = copy;
    pthread_mutex_unlock(&f->mu);
    peerlb_subscriber_free(old);
    atomic_fetch_add(&f->retains, 1);
    return peerlb_subscriber_set_status(s, PEERLB_CONNECTION_CONNECTING, NULL);
}

static int flip_release(void *u, const char *id, size_t len, const peerlb_subscriber *s) {
    flipper *f = u;
    (void)s;
    if (peer_index(id, len) < 0) return PEERLB_INVALID_ARGUMENT;
    atomic_fetch_add(&f->releases, 1);
    return 0;
}

static void flip_free(void *u) {
    flipper *f = u;
    atomic_fetch_add(&f->freed, 1);
}

static void *flip_thread(void *arg) {
    flipper *f = arg;
    unsigned seed = 7;
    while (!atomic_load(&f->stop)) {
        seed = seed * 1103515245u + 12345u;
        int i = (int)((seed >> 16) % NPEERS);
        /* Peer 0 stays available so choosers never wait long. */
        peerlb_connection_status st = i == 0 ? PEERLB_CONNECTION_AVAILABLE
                                     : ((seed >> 8) & 1) ? PEERLB_CONNECTION_AVAILABLE
                                                         : PEERLB_CONNECTION_UNAVAILABLE;
        pthread_mutex_lock(&f->mu);
        peerlb_subscriber *sub = NULL;
        if (f->subs[i]) peerlb_subscriber_clone(f->subs[i], &sub); /* our own reference */
        pthread_mutex_unlock(&f->mu);
        if (sub) {
            if (peerlb_subscriber_set_status(sub, st, NULL) == PEERLB_OK) atomic_fetch_add(&f->flips, 1);
            peerlb_subscriber_free(sub);
        }
        t_sleep_ms(0);
    }
    return NULL;
}

typedef struct {
    peerlb_list *list;
    int iterations;
    long counts[NPEERS];
    int errors;
    char first_error[256];
} chooser;

static void *choose_thread(void *arg) {
    chooser *c = arg;
    peerlb_request req = {5000, NULL, 0};
    for (int n = 0; n < c->iterations; n++) {
        peerlb_choice choice;
        peerlb_status st = peerlb_list_choose(c->list, &req, &choice);
        if (st != PEERLB_OK) {
            if (c->errors++ == 0) snprintf(c->first_error, sizeof c->first_error, "%s", peerlb_last_error_message());
            continue;
        }
        int i = peer_index(choice.peer, choice.peer_len);
        if (i >= 0) c->counts[i]++;
        else c->errors++;
        if (peerlb_choice_finish(&choice, n % 2 ? PEERLB_OUTCOME_OK : PEERLB_OUTCOME_FAILURE, n) != PEERLB_OK)
            c->errors++;
    }
    return NULL;
}

static int iterations(void) {
    const char *env = getenv("PEERLB_C_ITERATIONS");
    return env ? atoi(env) : 20000;
}

static void run_choosers(peerlb_list *list, chooser *cs, long *total) {
    pthread_t th[CHOOSERS];
    for (int t = 0; t < CHOOSERS; t++) {
        memset(&cs[t], 0, sizeof cs[t]);
        cs[t].list = list;
        cs[t].iterations = iterations();
        pthread_create(&th[t], NULL, choose_thread, &cs[t]);
    }
    *total = 0;
    for (int t = 0; t < CHOOSERS; t++) {
        pthread_join(th[t], NULL);
        EXPECT(cs[t].errors == 0, "chooser %d: %d errors, first: %s", t, cs[t].errors, cs[t].first_error);
        for (int i = 0; i < NPEERS; i++) *total += cs[t].counts[i];
    }
}

/* Adds every one of PEERS (weight 1) to `list`. */
static void add_all_peers(peerlb_list *list) {
    peerlb_peer_spec specs[NPEERS];
    for (int i = 0; i < NPEERS; i++) {
        specs[i].id = PEERS[i];
        specs[i].id_len = strlen(PEERS[i]);
        specs[i].weight = 1;
    }
    OK(peerlb_list_update(list, specs, NPEERS, NULL, 0));
}

static void test_flipping_transport(void) {
    flipper *f = calloc(1, sizeof *f);
    pthread_mutex_init(&f->mu, NULL);
    peerlb_transport_vtable vt = {f, "flipper", flip_retain, flip_release, flip_free};
    peerlb_list_options *opts;
    peerlb_list *list = NULL;
    OK(peerlb_list_options_new(&opts));
    OK(peerlb_list_options_set_strategy(opts, "fewest-pending"));
    OK(peerlb_list_new(opts, &vt, &list));
    peerlb_list_options_free(opts);
    add_all_peers(list);
    OK(peerlb_list_start(list));
    EXPECT(atomic_load(&f->retains) == NPEERS, "retained all");

    pthread_t flip;
    pthread_create(&flip, NULL, flip_thread, f);
    chooser cs[CHOOSERS];
    long total;
    run_choosers(list, cs, &total);
    /* On a loaded machine the choosers may finish before the flipper ran: give it time. */
    for (double until = t_now_s() + 10; atomic_load(&f->flips) == 0 && t_now_s() < until;) t_sleep_ms(1);
    atomic_store(&f->stop, 1);
    pthread_join(flip, NULL);
    EXPECT(total == (long)CHOOSERS * iterations(), "every choose succeeded (%ld)", total);
    EXPECT(atomic_load(&f->flips) > 0, "the transport thread flipped statuses (%d)", atomic_load(&f->flips));
    EXPECT(all_pending(list) == 0, "pending back to 0 (%ld)", all_pending(list));

    OK(peerlb_list_stop(list));
    EXPECT(atomic_load(&f->releases) == NPEERS, "released all (%d)", atomic_load(&f->releases));
    peerlb_list_free(list);
    EXPECT(atomic_load(&f->freed) == 1, "free_userdata once (%d)", atomic_load(&f->freed));

    /* Owned subscribers outlive the list: reports are ignored, nothing crashes. */
    for (int i = 0; i < NPEERS; i++) {
        bool accepted = true;
        OK(peerlb_subscriber_set_status(f->subs[i], PEERLB_CONNECTION_AVAILABLE, &accepted));
        EXPECT(!accepted, "report after free is not accepted");
        peerlb_subscriber_free(f->subs[i]);
    }
    pthread_mutex_destroy(&f->mu);
    free(f);
}

/* ---------- 2. callbacks re-entering the list ---------- */

typedef struct {
    peerlb_list *list;
    int reentered;
    int retains;
    int failures;
} reentrant;

static int re_retain(void *u, const char *id, size_t len, const peerlb_subscriber *s) {
    reentrant *r = u;
    r->retains++;
    char *json = NULL;
    if (peerlb_list_introspect(r->list, &json) == PEERLB_OK) r->reentered++;
    else r->failures++;
    peerlb_string_free(json);
    bool running = false;
    if (peerlb_list_is_running(r->list, &running) != PEERLB_OK || !running) r->failures++;
    if (len == 6 && memcmp(id, "seed:1", 6) == 0) {
        /* Adding a peer from inside retain: the list holds no lock while calling us. */
        peerlb_peer_spec child[] = {{LIT("child:1"), 1}};
        if (peerlb_list_update(r->list, child, 1, NULL, 0) == PEERLB_OK) r->reentered++;
        else r->failures++;
        /* Choose from inside retain too (child:1 is available by now). */
        peerlb_choice c;
        peerlb_request req = {0, NULL, 0};
        if (peerlb_list_choose(r->list, &req, &c) == PEERLB_OK) {
            r->reentered++;
            peerlb_choice_finish(&c, PEERLB_OUTCOME_OK, -1);
        } else {
            r->failures++;
        }
    }
    return peerlb_subscriber_set_status(s, PEERLB_CONNECTION_AVAILABLE, NULL);
}

static int re_release(void *u, const char *id, size_t len, const peerlb_subscriber *s) {
    reentrant *r = u;
    (void)s;
    if (len == 7 && memcmp(id, "child:1", 7) == 0) {
        /* Removing another peer from inside release. */
        peerlb_peer_id other[] = {{LIT("seed:1")}};
        peerlb_status st = peerlb_list_update(r->list, NULL, 0, other, 1);
        if (st == PEERLB_OK || st == PEERLB_PEER_NOT_IN_LIST) r->reentered++;
        else r->failures++;
    }
    return 0;
}

static void test_reentrant_callbacks(void) {
    reentrant r = {0};
    peerlb_transport_vtable vt = {&r, "reentrant", re_retain, re_release, NULL};
    OK(peerlb_list_new(NULL, &vt, &r.list));
    peerlb_peer_spec seed[] = {{LIT("seed:1"), 1}};
    OK(peerlb_list_update(r.list, seed, 1, NULL, 0));
    OK(peerlb_list_start(r.list));
    EXPECT(r.retains == 2, "seed and child retained (%d)", r.retains);
    EXPECT(r.failures == 0, "no re-entrant call failed (%d)", r.failures);
    EXPECT(r.reentered == 4, "re-entered 4 times (%d)", r.reentered);
    char *json = NULL;
    OK(peerlb_list_introspect(r.list, &json));
    EXPECT(strstr(json, "\"child:1\"") && strstr(json, "\"available\":2"), "both available: %s", json);
    peerlb_string_free(json);
    peerlb_peer_id child[] = {{LIT("child:1")}};
    OK(peerlb_list_update(r.list, NULL, 0, child, 1)); /* its release removes seed:1 */
    OK(peerlb_list_introspect(r.list, &json));
    EXPECT(strstr(json, "\"total\":0") != NULL, "both gone: %s", json);
    peerlb_string_free(json);
    EXPECT(r.failures == 0, "no re-entrant call failed (%d)", r.failures);
    peerlb_list_free(r.list);
}

/* ---------- 3. four threads choosing concurrently ---------- */

static void test_concurrent_choose(void) {
    peerlb_list_options *opts;
    peerlb_list *list = NULL;
    OK(peerlb_list_options_new(&opts));
    OK(peerlb_list_options_set_shuffle(opts, false));
    /* The choosers' alternating failures would eject peers (on by default), and this test
     * measures how evenly round-robin spreads; test_ejection_threads covers ejection. */
    OK(peerlb_list_options_set_ejection(opts, "off"));
    OK(peerlb_list_new(opts, NULL, &list));
    peerlb_list_options_free(opts);
    add_all_peers(list);
    OK(peerlb_list_start(list));
    chooser cs[CHOOSERS];
    long total;
    run_choosers(list, cs, &total);
    EXPECT(total == (long)CHOOSERS * iterations(), "all chosen (%ld)", total);
    long per[NPEERS] = {0};
    for (int t = 0; t < CHOOSERS; t++)
        for (int i = 0; i < NPEERS; i++) per[i] += cs[t].counts[i];
    for (int i = 0; i < NPEERS; i++)
        EXPECT(per[i] * NPEERS > total * 8 / 10 && per[i] * NPEERS < total * 12 / 10,
               "round-robin spreads evenly: peer %d got %ld of %ld", i, per[i], total);
    EXPECT(all_pending(list) == 0, "pending back to 0");
    peerlb_list_free(list);
}

/* ---------- 4. stop wakes every waiting choose ---------- */

typedef struct {
    peerlb_list *list;
    peerlb_status status;
    atomic_int choosing; /* set just before the choose */
} stop_waiter;

static void *wait_thread(void *arg) {
    stop_waiter *w = arg;
    peerlb_request req = {30000, NULL, 0};
    atomic_store(&w->choosing, 1);
    peerlb_choice c;
    w->status = peerlb_list_choose(w->list, &req, &c);
    if (w->status == PEERLB_OK) peerlb_choice_finish(&c, PEERLB_OUTCOME_OK, -1);
    return NULL;
}

static void test_stop_wakes_waiters(void) {
    peerlb_list *list = NULL;
    OK(peerlb_list_new(NULL, NULL, &list));
    OK(peerlb_list_start(list));
    stop_waiter w[CHOOSERS];
    pthread_t th[CHOOSERS];
    for (int t = 0; t < CHOOSERS; t++) {
        w[t].list = list;
        w[t].status = PEERLB_OK;
        atomic_init(&w[t].choosing, 0);
        pthread_create(&th[t], NULL, wait_thread, &w[t]);
    }
    /* Every waiter is about to choose; the sleep lets them block inside it (a waiter that
     * is late still gets PEERLB_NOT_STARTED, so this cannot make the test fail). */
    for (int t = 0; t < CHOOSERS; t++)
        while (!atomic_load(&w[t].choosing)) t_sleep_ms(1);
    t_sleep_ms(50);
    double started = t_now_s();
    OK(peerlb_list_stop(list));
    for (int t = 0; t < CHOOSERS; t++) {
        pthread_join(th[t], NULL);
        EXPECT(w[t].status == PEERLB_NOT_STARTED, "waiter %d got %s", t, peerlb_status_str(w[t].status));
    }
    EXPECT(t_now_s() - started < 20.0, "woken by stop, not by their 30 s timeout");
    peerlb_list_free(list);
}

/* ---------- 5. ejection and events under threads ---------- */

typedef struct {
    atomic_int inside, overlaps, ejected, restored, after_free;
    atomic_int freed;
    peerlb_list *list;
} ev_counts;

static void count_event(const peerlb_event *e, void *u) {
    ev_counts *c = u;
    if (atomic_fetch_add(&c->inside, 1) != 0) atomic_fetch_add(&c->overlaps, 1);
    if (atomic_load(&c->freed)) atomic_fetch_add(&c->after_free, 1);
    if (e->kind == PEERLB_EVENT_EJECTED) atomic_fetch_add(&c->ejected, 1);
    if (e->kind == PEERLB_EVENT_RESTORED) atomic_fetch_add(&c->restored, 1);
    /* Re-enter the list from the callback, whichever thread runs it. */
    size_t len = 0;
    peerlb_list_len(c->list, &len);
    atomic_fetch_sub(&c->inside, 1);
}

static void test_ejection_threads(void) {
    peerlb_list_options *opts;
    peerlb_list *list = NULL;
    OK(peerlb_list_options_new(&opts));
    /* 3 failures eject for 1 ms (restored by peerlb's timer threads); no panic mode, so
     * peers really leave the rotation while the choosers keep going. */
    OK(peerlb_list_options_set_ejection(opts, "failures=3&base_ms=1&max_ms=1&max_percent=50&panic_percent=0"));
    OK(peerlb_list_new(opts, NULL, &list));
    peerlb_list_options_free(opts);
    ev_counts *c = calloc(1, sizeof *c);
    c->list = list;
    peerlb_subscription *sub = NULL;
    OK(peerlb_list_subscribe(list, count_event, c, &sub));
    add_all_peers(list);
    OK(peerlb_list_start(list));
    chooser cs[CHOOSERS];
    long total;
    run_choosers(list, cs, &total); /* half of the outcomes are failures */
    EXPECT(total == (long)CHOOSERS * iterations(), "every choose succeeded (%ld)", total);
    EXPECT(atomic_load(&c->ejected) > 0, "peers were ejected (%d)", atomic_load(&c->ejected));
    EXPECT(atomic_load(&c->overlaps) == 0, "callbacks never overlapped (%d)", atomic_load(&c->overlaps));
    EXPECT(all_pending(list) == 0, "pending back to 0");
    /* Restorations may still be firing on timer threads: the free waits for a running
     * callback, after it none runs, so the counters can be freed right away. */
    peerlb_subscription_free(sub);
    atomic_store(&c->freed, 1);
    t_sleep_ms(20);
    EXPECT(atomic_load(&c->after_free) == 0, "no callback after the free (%d)", atomic_load(&c->after_free));
    printf("ejection under %d threads: %d ejections, %d restorations\n", CHOOSERS, atomic_load(&c->ejected),
           atomic_load(&c->restored));
    free(c);
    peerlb_list_free(list);
}

int main(void) {
    test_flipping_transport();
    test_reentrant_callbacks();
    test_concurrent_choose();
    test_stop_wakes_waiters();
    test_ejection_threads();
    return t_summary("threads");
}
