/* The tcp-probe transport (selected by spec string) against real listening sockets on
 * 127.0.0.1, and peerlb_upstream_* (when built). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "netutil.h"
#include "testutil.h"

static int port_of(const char *id) { return atoi(strrchr(id, ':') + 1); }

static peerlb_connection_status status_of(peerlb_list *list, const char *id) {
    peerlb_peer_status st;
    if (peerlb_list_peer_status(list, id, strlen(id), &st) != PEERLB_OK) return 999;
    return st.connection_status;
}

/* How long the tests wait for something that must happen: long enough for a loaded CI
 * machine or valgrind, and only ever spent when the test is failing anyway. */
#define WAIT_S 10.0

/* Waits up to WAIT_S for the status; returns the seconds it took, or -1. */
static double wait_status(peerlb_list *list, const char *id, peerlb_connection_status want) {
    double t0 = t_now_s();
    while (t_now_s() - t0 < WAIT_S) {
        if (status_of(list, id) == want) return t_now_s() - t0;
        t_sleep_ms(5);
    }
    return -1;
}

static void test_tcp_probe(void) {
    char id[64];
    int fd = listen_on(0, id, sizeof id);
    peerlb_list_options *opts;
    peerlb_list *list = NULL;
    OK(peerlb_list_options_new(&opts));
    /* A generous connect timeout: a closed loopback port is refused at once (detection stays
     * fast), and a slow machine does not turn an open one into a failed probe. */
    OK(peerlb_list_options_set_transport(opts, "tcp-probe?interval_ms=50&timeout_ms=2000"));
    /* a spec and a vtable together are refused */
    peerlb_transport_vtable vt;
    memset(&vt, 0, sizeof vt);
    EXPECT_STATUS(peerlb_list_new(opts, &vt, &list), PEERLB_INVALID_ARGUMENT);
    OK(peerlb_list_new(opts, NULL, &list));
    peerlb_list_options_free(opts);
    char *json = NULL;
    OK(peerlb_list_introspect(list, &json));
    EXPECT(json && strstr(json, "\"transport\":\"tcp-probe\""), "introspection: %s", json);
    peerlb_string_free(json);

    peerlb_peer_spec spec = {id, strlen(id), 1};
    OK(peerlb_list_update(list, &spec, 1, NULL, 0));
    OK(peerlb_list_start(list));
    EXPECT(wait_status(list, id, PEERLB_CONNECTION_AVAILABLE) >= 0, "never available");
    peerlb_request req = {.timeout_ms = 1000};
    peerlb_choice c;
    OK(peerlb_list_choose(list, &req, &c));
    EXPECT(c.peer_len == strlen(id) && memcmp(c.peer, id, c.peer_len) == 0, "chose %s", id);
    OK(peerlb_choice_finish(&c, PEERLB_OUTCOME_OK, -1));

    close(fd); /* stops accepting */
    double down = wait_status(list, id, PEERLB_CONNECTION_UNAVAILABLE);
    EXPECT(down >= 0, "never unavailable");
    /* The list's status changes under its lock; the strategy publishes the change right
     * after the lock is released (events are delivered after that). A thread that polls
     * the status can read it in between, so it may see one last choice of the peer. */
    peerlb_request quick = {.timeout_ms = 20};
    int stale = 0;
    peerlb_status st;
    while ((st = peerlb_list_choose(list, &quick, &c)) == PEERLB_OK && stale < 100) {
        OK(peerlb_choice_finish(&c, PEERLB_OUTCOME_CANCELLED, -1));
        stale++;
        t_sleep_ms(5);
    }
    EXPECT(st == PEERLB_TIMEOUT, "an unavailable peer was still chosen (%d times)", stale);

    fd = listen_on(port_of(id), id, sizeof id); /* accepts again */
    double up = wait_status(list, id, PEERLB_CONNECTION_AVAILABLE);
    EXPECT(up >= 0, "never available again");
    printf("tcp-probe (50 ms interval): down detected in %.0f ms, up in %.0f ms\n",
           down * 1000, up * 1000);
    OK(peerlb_list_stop(list));
    peerlb_list_free(list);
    close(fd);
}

static peerlb_peer_id pid(const char *s) {
    peerlb_peer_id p = {s, strlen(s)};
    return p;
}

static double score_of(peerlb_upstream *u, const char *id) {
    double s = -1000;
    if (peerlb_upstream_score(u, id, strlen(id), &s) != PEERLB_OK) return -1000;
    return s;
}

/* Waits up to WAIT_S until `id`'s score satisfies `ok`; returns the score that did (or the
 * last one seen). */
static double wait_score(peerlb_upstream *u, const char *id, bool (*ok)(double)) {
    double t0 = t_now_s(), s = score_of(u, id);
    while (!ok(s) && t_now_s() - t0 < WAIT_S) {
        t_sleep_ms(5);
        s = score_of(u, id);
    }
    return s;
}

static bool is_max(double s) { return s == 3; }
static bool is_negative(double s) { return s < 0; }
static bool is_not_negative(double s) { return s >= 0; }

static bool pick_is(peerlb_upstream *u, const char *want) {
    char *got = NULL;
    if (peerlb_upstream_pick(u, &got) != PEERLB_OK) return false;
    bool same = strcmp(got, want) == 0;
    if (!same) fprintf(stderr, "picked %s, want %s\n", got, want);
    peerlb_string_free(got);
    return same;
}

/* A scripted check: backends named in `down` fail. Counts calls; frees count on free. */
typedef struct {
    const char *down;
    int calls;
    int *freed;
} script;

static int script_check(void *ud, const char *backend, size_t len) {
    script *s = ud;
    __atomic_add_fetch(&s->calls, 1, __ATOMIC_SEQ_CST);
    EXPECT(strlen(backend) == len, "NUL-terminated");
    return s->down && strcmp(backend, s->down) == 0 ? 1 : 0;
}

static void script_free(void *ud) { (*((script *)ud)->freed)++; }

static void test_upstream_scores(void) {
    peerlb_upstream_options o;
    OK(peerlb_upstream_options_default(&o));
    EXPECT(o.health_check_interval_ms == 1000 && o.health_check_timeout_ms == 100, "defaults");
    EXPECT(o.initial_score == 1 && o.low_score == -3 && o.high_score == 3, "default scores");
    EXPECT(o.fail_delta == -1 && o.success_delta == 1, "default deltas");
    o.health_check_interval_ms = 0; /* manual: rounds only via check_now */

    int freed = 0;
    script sc = {"two", 0, &freed};
    peerlb_health_check_vtable vt = {&sc, script_check, script_free};
    peerlb_peer_id ids[] = {pid("one"), pid("two"), pid("three")};
    peerlb_upstream *u = NULL;
    OK(peerlb_upstream_new(ids, 3, &o, &vt, &u));
    EXPECT(pick_is(u, "one") && pick_is(u, "two") && pick_is(u, "three") && pick_is(u, "one"), "rr");
    double want_two[] = {0, -1, -2, -3, -3};
    for (int i = 0; i < 5; i++) {
        OK(peerlb_upstream_check_now(u));
        EXPECT(score_of(u, "two") == want_two[i], "round %d: two = %g", i, score_of(u, "two"));
        EXPECT(score_of(u, "one") == (i < 2 ? 2 + i : 3), "round %d: one = %g", i, score_of(u, "one"));
    }
    EXPECT(sc.calls == 15, "calls %d", sc.calls);
    EXPECT(pick_is(u, "three") && pick_is(u, "one") && pick_is(u, "three"), "skips two");
    for (int i = 0; i < 3; i++) OK(peerlb_upstream_up(u, "two", 3));
    EXPECT(score_of(u, "two") == 0, "up x3 -> 0");
    EXPECT(pick_is(u, "one") && pick_is(u, "two"), "two back");
    OK(peerlb_upstream_down(u, "nobody", 6));
    EXPECT_STATUS(peerlb_upstream_score(u, "nobody", 6, &o.initial_score), PEERLB_PEER_NOT_IN_LIST);

    peerlb_peer_id next[] = {pid("two"), pid("four")};
    OK(peerlb_upstream_reconcile(u, next, 2));
    EXPECT(score_of(u, "two") == 0 && score_of(u, "four") == 1, "reconcile keeps scores");
    EXPECT(score_of(u, "one") == -1000, "one removed");
    for (int i = 0; i < 4; i++) OK(peerlb_upstream_down(u, "four", 4));
    OK(peerlb_upstream_down(u, "two", 3));
    char *got = (char *)"untouched";
    EXPECT_STATUS(peerlb_upstream_pick(u, &got), PEERLB_NO_PEER_AVAILABLE);
    EXPECT(strcmp(got, "untouched") == 0, "out untouched on failure");

    /* bad input */
    EXPECT_STATUS(peerlb_upstream_pick(NULL, &got), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_upstream_pick(u, NULL), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_upstream_up(u, NULL, 3), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_upstream_down(NULL, "a", 1), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_upstream_up(u, "\xff", 1), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_upstream_reconcile(u, NULL, 2), PEERLB_INVALID_ARGUMENT);
    peerlb_peer_id bad[] = {pid("ok"), {NULL, 3}};
    EXPECT_STATUS(peerlb_upstream_reconcile(u, bad, 2), PEERLB_INVALID_ARGUMENT);
    peerlb_peer_id empty[] = {pid("")};
    EXPECT_STATUS(peerlb_upstream_reconcile(u, empty, 1), PEERLB_INVALID_ARGUMENT);
    EXPECT(score_of(u, "two") == -1 && score_of(u, "ok") == -1000, "malformed reconcile changed nothing");
    EXPECT_STATUS(peerlb_upstream_score(u, "two", 3, NULL), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_upstream_check_now(NULL), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_upstream_shutdown(NULL), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_upstream_options_default(NULL), PEERLB_INVALID_ARGUMENT);
    OK(peerlb_upstream_shutdown(u));
    OK(peerlb_upstream_shutdown(u));
    EXPECT(freed == 0, "not freed before the upstream");
    peerlb_upstream_free(u);
    peerlb_upstream_free(NULL);
    EXPECT(freed == 1, "free_userdata ran once (%d)", freed);

    /* bad options and vtables take nothing */
    peerlb_upstream *v = NULL;
    peerlb_upstream_options b = o;
    b.low_score = 1;
    EXPECT_STATUS(peerlb_upstream_new(ids, 3, &b, &vt, &v), PEERLB_INVALID_ARGUMENT);
    b = o;
    b.success_delta = 0;
    EXPECT_STATUS(peerlb_upstream_new(ids, 3, &b, &vt, &v), PEERLB_INVALID_ARGUMENT);
    b = o;
    b.health_check_timeout_ms = 0;
    EXPECT_STATUS(peerlb_upstream_new(ids, 3, &b, &vt, &v), PEERLB_INVALID_ARGUMENT);
    peerlb_health_check_vtable novt = {NULL, NULL, NULL};
    EXPECT_STATUS(peerlb_upstream_new(ids, 3, &o, &novt, &v), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_upstream_new(ids, 3, &o, &vt, NULL), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_upstream_new(NULL, 3, &o, &vt, &v), PEERLB_INVALID_ARGUMENT);
    EXPECT(v == NULL && freed == 1, "nothing created or freed");
    OK(peerlb_upstream_new(NULL, 0, &o, NULL, &v));
    EXPECT_STATUS(peerlb_upstream_pick(v, &got), PEERLB_NO_PEER_AVAILABLE);
    peerlb_upstream_free(v);
}

static void test_upstream_tcp_probe(void) {
    char id[64];
    int fd = listen_on(0, id, sizeof id);
    peerlb_upstream_options o;
    OK(peerlb_upstream_options_default(&o));
    o.health_check_interval_ms = 20;
    o.health_check_timeout_ms = 2000; /* as above: refusals are immediate */
    peerlb_peer_id ids[] = {pid(id)};
    peerlb_upstream *u = NULL;
    OK(peerlb_upstream_new(ids, 1, &o, NULL /* TCP probe */, &u));
    double s = wait_score(u, id, is_max);
    EXPECT(s == 3, "healthy: %g", s);
    EXPECT(pick_is(u, id), "picked");
    close(fd); /* from now on every probe is refused */
    s = wait_score(u, id, is_negative);
    EXPECT(s < 0, "unhealthy: %g", s);
    char *got = NULL;
    EXPECT_STATUS(peerlb_upstream_pick(u, &got), PEERLB_NO_PEER_AVAILABLE);
    fd = listen_on(port_of(id), id, sizeof id);
    s = wait_score(u, id, is_not_negative);
    EXPECT(s >= 0, "healthy again: %g", s);
    EXPECT(pick_is(u, id), "picked again");
    peerlb_upstream_free(u);
    close(fd);
}

int main(void) {
    test_tcp_probe();
    test_upstream_scores();
    test_upstream_tcp_probe();
    return t_summary("health");
}
