/* Bad input through the C API: every NULL argument, malformed ids, unknown enum values,
 * misuse of choices and lists. Each must return a clear status (never crash) and leave
 * the list as it was. Also: version macros, status names, thread-local last error. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peerlb.h"
#include "testutil.h"

#define LIT(s) s, sizeof(s) - 1
#define SPEC(s) {LIT(s), 1}

static peerlb_list *make_list(int start) {
    peerlb_list_options *opts = NULL;
    peerlb_list *list = NULL;
    OK(peerlb_list_options_new(&opts));
    OK(peerlb_list_options_set_shuffle(opts, false));
    OK(peerlb_list_new(opts, NULL, &list));
    peerlb_list_options_free(opts);
    if (start) OK(peerlb_list_start(list));
    return list;
}

/* How many peers the list has (from introspection). */
static long total_peers(peerlb_list *list) {
    char *json = NULL;
    if (peerlb_list_introspect(list, &json) != PEERLB_OK) return -1;
    const char *t = strstr(json, "\"total\":");
    long n = t ? strtol(t + 8, NULL, 10) : -1;
    peerlb_string_free(json);
    return n;
}

static size_t last_codes(peerlb_status *codes, size_t cap) { return peerlb_last_error_codes(codes, cap); }

static void test_version_and_names(void) {
    char want[64];
    snprintf(want, sizeof want, "%d.%d.%d", PEERLB_VERSION_MAJOR, PEERLB_VERSION_MINOR, PEERLB_VERSION_PATCH);
    EXPECT(strcmp(peerlb_version(), want) == 0, "version %s, macros say %s", peerlb_version(), want);
    EXPECT(strcmp(peerlb_version(), PEERLB_VERSION_STRING) == 0, "version string macro");
    EXPECT(strcmp(peerlb_status_str(PEERLB_OK), "ok") == 0, "ok");
    EXPECT(strcmp(peerlb_status_str(PEERLB_NO_PEER_AVAILABLE), "no-peer-available") == 0, "name");
    EXPECT(strcmp(peerlb_status_str(PEERLB_PANIC), "panic") == 0, "panic");
    EXPECT(strcmp(peerlb_status_str(PEERLB_SOURCE_FAILED), "source-failed") == 0, "source-failed");
    EXPECT(strcmp(peerlb_status_str(12), "unknown") == 0, "12 is unknown");
    EXPECT(strcmp(peerlb_status_str(0xFFFFFFFFu), "unknown") == 0, "huge is unknown");
    EXPECT(peerlb_last_error_message() != NULL, "never NULL");
}

static void test_options(void) {
    peerlb_list_options *opts = NULL;
    EXPECT_STATUS(peerlb_list_options_new(NULL), PEERLB_INVALID_ARGUMENT);
    peerlb_list_options_free(NULL);
    OK(peerlb_list_options_new(&opts));
    EXPECT_STATUS(peerlb_list_options_set_strategy(NULL, "random"), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_options_set_strategy(opts, NULL), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_options_set_strategy(opts, "no-such-strategy"), PEERLB_INVALID_ARGUMENT);
    EXPECT(strstr(peerlb_last_error_message(), "no-such-strategy") != NULL, "message names the strategy");
    EXPECT(last_codes(NULL, 0) == 1, "one code");
    EXPECT_STATUS(peerlb_list_options_set_strategy(opts, "\xff\xfe"), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_options_set_strategy(opts, ""), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_options_set_shuffle(NULL, true), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_options_set_seed(NULL, 1), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_options_set_fail_fast(NULL, true), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_options_set_capacity(NULL, 8), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_options_set_transport(NULL, "tcp-probe"), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_options_set_transport(opts, NULL), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_options_set_transport(opts, "udp-probe"), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_options_set_transport(opts, "tcp-probe?interval_ms=0"), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_options_set_transport(opts, "tcp-probe?nope=1"), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_options_set_transport(opts, "\xff"), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_options_set_transport(opts, ""), PEERLB_INVALID_ARGUMENT);
    OK(peerlb_list_options_set_strategy(opts, "fewest-pending"));
    /* A failed setter leaves the options as they were. */
    EXPECT_STATUS(peerlb_list_options_set_strategy(opts, "bogus"), PEERLB_INVALID_ARGUMENT);
    peerlb_list *list = NULL;
    OK(peerlb_list_new(opts, NULL, &list));
    char *json = NULL;
    OK(peerlb_list_introspect(list, &json));
    EXPECT(json && strstr(json, "\"strategy\":\"fewest-pending\""), "strategy kept: %s", json);
    peerlb_string_free(json);
    peerlb_list_free(list);
    peerlb_list_options_free(opts);
}

static int frees;
static int ok_cb(void *u, const char *id, size_t len, const peerlb_subscriber *s) {
    (void)u; (void)id; (void)len;
    return peerlb_subscriber_set_status(s, PEERLB_CONNECTION_AVAILABLE, NULL);
}
static void count_free(void *u) { (void)u; frees++; }

static void test_list_new(void) {
    peerlb_list *sentinel = (peerlb_list *)(uintptr_t)0x1;
    peerlb_list *list = sentinel;
    EXPECT_STATUS(peerlb_list_new(NULL, NULL, NULL), PEERLB_INVALID_ARGUMENT);
    peerlb_transport_vtable vt = {NULL, "t", NULL, ok_cb, count_free};
    EXPECT_STATUS(peerlb_list_new(NULL, &vt, &list), PEERLB_INVALID_ARGUMENT); /* no retain */
    EXPECT(list == sentinel, "out untouched on failure");
    vt.retain = ok_cb;
    vt.release = NULL;
    EXPECT_STATUS(peerlb_list_new(NULL, &vt, &list), PEERLB_INVALID_ARGUMENT); /* no release */
    vt.release = ok_cb;
    vt.name = "\xc3\x28";
    EXPECT_STATUS(peerlb_list_new(NULL, &vt, &list), PEERLB_INVALID_ARGUMENT); /* bad name */
    vt.name = NULL;
    EXPECT_STATUS(peerlb_list_new(NULL, &vt, NULL), PEERLB_INVALID_ARGUMENT);
    EXPECT(frees == 0, "free_userdata not called for failed list_new (%d)", frees);
    OK(peerlb_list_new(NULL, &vt, &list));
    char *json = NULL;
    OK(peerlb_list_introspect(list, &json));
    EXPECT(strstr(json, "\"transport\":\"c\"") != NULL, "NULL name is \"c\": %s", json);
    peerlb_string_free(json);
    peerlb_list_free(list);
    EXPECT(frees == 1, "free_userdata ran once (%d)", frees);
    peerlb_list_free(NULL);
}

static void test_lifecycle(void) {
    peerlb_list *list = make_list(0);
    EXPECT_STATUS(peerlb_list_start(NULL), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_stop(NULL), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_stop(list), PEERLB_NOT_STARTED);
    bool running = true;
    EXPECT_STATUS(peerlb_list_is_running(NULL, &running), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_is_running(list, NULL), PEERLB_INVALID_ARGUMENT);
    OK(peerlb_list_is_running(list, &running));
    EXPECT(!running, "idle");
    OK(peerlb_list_start(list));
    EXPECT_STATUS(peerlb_list_start(list), PEERLB_ALREADY_STARTED);
    OK(peerlb_list_is_running(list, &running));
    EXPECT(running, "running");
    peerlb_list_free(list); /* freed while running: releases its peers */
}

static void test_update(void) {
    peerlb_list *list = make_list(1);
    peerlb_peer_spec good[] = {SPEC("a:1"), SPEC("b:1")};
    OK(peerlb_list_update(list, good, 2, NULL, 0));
    OK(peerlb_list_update(list, NULL, 0, NULL, 0));
    EXPECT_STATUS(peerlb_list_update(NULL, good, 2, NULL, 0), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_update(list, NULL, 1, NULL, 0), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_update(list, NULL, 0, NULL, 1), PEERLB_INVALID_ARGUMENT);

    /* Malformed calls change nothing, not even their valid entries. */
    peerlb_peer_spec null_id[] = {SPEC("c:1"), {NULL, 3, 1}};
    EXPECT_STATUS(peerlb_list_update(list, null_id, 2, NULL, 0), PEERLB_INVALID_ARGUMENT);
    peerlb_peer_spec not_utf8[] = {SPEC("c:1"), {LIT("bad\xff"), 1}};
    EXPECT_STATUS(peerlb_list_update(list, not_utf8, 2, NULL, 0), PEERLB_INVALID_ARGUMENT);
    EXPECT(strstr(peerlb_last_error_message(), "UTF-8") != NULL, "says UTF-8: %s", peerlb_last_error_message());
    peerlb_peer_id rm_null[] = {{NULL, 1}};
    EXPECT_STATUS(peerlb_list_update(list, NULL, 0, rm_null, 1), PEERLB_INVALID_ARGUMENT);
    peerlb_peer_id rm_bad[] = {{LIT("\x80")}};
    EXPECT_STATUS(peerlb_list_update(list, NULL, 0, rm_bad, 1), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_update(list, good, SIZE_MAX, NULL, 0), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_update(list, NULL, 0, rm_bad, SIZE_MAX / 2), PEERLB_INVALID_ARGUMENT);
    peerlb_peer_spec huge_id[] = {{"x", SIZE_MAX, 1}};
    EXPECT_STATUS(peerlb_list_update(list, huge_id, 1, NULL, 0), PEERLB_INVALID_ARGUMENT);
    EXPECT(total_peers(list) == 2, "list unchanged (%ld)", total_peers(list));

    /* Per-peer problems are reported while the rest is applied (the core's rule). */
    peerlb_peer_spec empty[] = {SPEC("c:1"), {"", 0, 1}};
    EXPECT_STATUS(peerlb_list_update(list, empty, 2, NULL, 0), PEERLB_INVALID_ARGUMENT);
    EXPECT(total_peers(list) == 3, "c:1 added (%ld)", total_peers(list));
    peerlb_peer_spec null_empty[] = {{NULL, 0, 1}};
    EXPECT_STATUS(peerlb_list_update(list, null_empty, 1, NULL, 0), PEERLB_INVALID_ARGUMENT);
    char long_id[1026];
    memset(long_id, 'x', sizeof long_id);
    peerlb_peer_spec too_long[] = {{long_id, 1025, 1}};
    EXPECT_STATUS(peerlb_list_update(list, too_long, 1, NULL, 0), PEERLB_INVALID_ARGUMENT);
    EXPECT(strstr(peerlb_last_error_message(), "1024") != NULL, "names the limit");
    peerlb_peer_spec max_len[] = {{long_id, 1024, 1}};
    OK(peerlb_list_update(list, max_len, 1, NULL, 0));
    peerlb_peer_spec nul_inside[] = {{"d\0e", 3, 1}};
    EXPECT_STATUS(peerlb_list_update(list, nul_inside, 1, NULL, 0), PEERLB_INVALID_ARGUMENT);
    peerlb_peer_spec zero_weight[] = {{LIT("w:1"), 0}};
    EXPECT_STATUS(peerlb_list_update(list, zero_weight, 1, NULL, 0), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_update(list, good, 1, NULL, 0), PEERLB_PEER_ALREADY_IN_LIST);
    peerlb_peer_id unknown[] = {{LIT("zz:1")}, {LIT("zz:2")}};
    EXPECT_STATUS(peerlb_list_update(list, NULL, 0, unknown, 2), PEERLB_PEER_NOT_IN_LIST);
    EXPECT(last_codes(NULL, 0) == 2, "two individual errors");
    peerlb_status codes[4] = {PEERLB_OK, PEERLB_OK, PEERLB_OK, PEERLB_OK};
    EXPECT_STATUS(peerlb_list_update(list, good, 1, unknown, 1), PEERLB_MULTIPLE_ERRORS);
    EXPECT(last_codes(codes, 1) == 2, "count is the total even with a small buffer");
    EXPECT(codes[0] == PEERLB_PEER_NOT_IN_LIST && codes[1] == PEERLB_OK, "only capacity written");
    EXPECT(last_codes(codes, 4) == 2 && codes[1] == PEERLB_PEER_ALREADY_IN_LIST, "removals first");
    EXPECT(total_peers(list) == 4, "a, b, c, long (%ld)", total_peers(list));
    size_t len = 0;
    EXPECT_STATUS(peerlb_list_len(NULL, &len), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_len(list, NULL), PEERLB_INVALID_ARGUMENT);
    OK(peerlb_list_len(list, &len));
    EXPECT(len == 4, "len %zu", len);
    peerlb_peer_status ps = {99, 99};
    EXPECT_STATUS(peerlb_list_peer_status(NULL, LIT("a:1"), &ps), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_peer_status(list, NULL, 3, &ps), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_peer_status(list, LIT("a:1"), NULL), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_peer_status(list, LIT("\xff"), &ps), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_peer_status(list, LIT("nope:1"), &ps), PEERLB_PEER_NOT_IN_LIST);
    EXPECT(ps.connection_status == 99 && ps.pending == 99, "out untouched on failure");
    peerlb_choice held;
    peerlb_request req = {100, NULL, 0};
    OK(peerlb_list_choose(list, &req, &held));
    OK(peerlb_list_peer_status(list, held.peer, held.peer_len, &ps));
    EXPECT(ps.connection_status == PEERLB_CONNECTION_AVAILABLE && ps.pending == 1, "status %u pending %zu",
           ps.connection_status, ps.pending);
    OK(peerlb_choice_finish(&held, PEERLB_OUTCOME_OK, -1));
    OK(peerlb_list_stop(list));
    OK(peerlb_list_peer_status(list, LIT("a:1"), &ps));
    EXPECT(ps.connection_status == PEERLB_CONNECTION_UNAVAILABLE && ps.pending == 0, "idle peer is unavailable");
    peerlb_list_free(list);
}

static void test_choose_and_finish(void) {
    peerlb_list *list = make_list(0);
    peerlb_peer_spec peers[] = {SPEC("a:1")};
    OK(peerlb_list_update(list, peers, 1, NULL, 0));
    peerlb_choice c = {(const char *)"sentinel", 8, NULL};
    peerlb_request req = {100, NULL, 0};
    EXPECT_STATUS(peerlb_list_choose(list, &req, &c), PEERLB_NOT_STARTED); /* before start */
    EXPECT(c.peer_len == 8 && c.token == NULL, "out untouched on failure");
    OK(peerlb_list_start(list));
    EXPECT_STATUS(peerlb_list_choose(NULL, &req, &c), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_choose(list, &req, NULL), PEERLB_INVALID_ARGUMENT);
    peerlb_request bad_key = {100, NULL, 5};
    EXPECT_STATUS(peerlb_list_choose(list, &bad_key, &c), PEERLB_INVALID_ARGUMENT);
    const uint8_t one = 1;
    peerlb_request huge_key = {100, &one, SIZE_MAX};
    EXPECT_STATUS(peerlb_list_choose(list, &huge_key, &c), PEERLB_INVALID_ARGUMENT);
    OK(peerlb_list_choose(list, NULL, &c)); /* NULL request: no deadline, no key */
    EXPECT(c.peer_len == 3 && memcmp(c.peer, "a:1", 3) == 0, "chose a:1");
    const char *id = NULL;
    size_t len = 0;
    EXPECT_STATUS(peerlb_choice_peer(NULL, &id, &len), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_choice_peer(&c, NULL, &len), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_choice_peer(&c, &id, NULL), PEERLB_INVALID_ARGUMENT);
    OK(peerlb_choice_peer(&c, &id, &len));
    EXPECT(id == c.peer && len == 3, "choice_peer");
    EXPECT_STATUS(peerlb_choice_finish(NULL, PEERLB_OUTCOME_OK, -1), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_choice_finish(&c, 4, -1), PEERLB_INVALID_ARGUMENT); /* unknown outcome */
    EXPECT_STATUS(peerlb_choice_finish(&c, 0xFFFFFFFFu, -1), PEERLB_INVALID_ARGUMENT);
    EXPECT(c.token != NULL, "a refused finish leaves the choice live");
    OK(peerlb_choice_finish(&c, PEERLB_OUTCOME_FAILURE, 1500));
    EXPECT(c.token == NULL && c.peer == NULL && c.peer_len == 0, "finish clears the choice");
    EXPECT_STATUS(peerlb_choice_finish(&c, PEERLB_OUTCOME_OK, -1), PEERLB_INVALID_ARGUMENT); /* twice */
    EXPECT_STATUS(peerlb_choice_peer(&c, &id, &len), PEERLB_INVALID_ARGUMENT);
    peerlb_choice zero = {0};
    EXPECT_STATUS(peerlb_choice_finish(&zero, PEERLB_OUTCOME_OK, -1), PEERLB_INVALID_ARGUMENT);

    /* A shard key is accepted (round-robin ignores it). */
    const uint8_t key[] = {0, 1, 2, 0xff};
    peerlb_request keyed = {100, key, sizeof key};
    OK(peerlb_list_choose(list, &keyed, &c));
    OK(peerlb_choice_finish(&c, PEERLB_OUTCOME_DECLINED, 0));

    /* Choose on a stopped list; finish after stop and after free. */
    peerlb_choice held1, held2;
    OK(peerlb_list_choose(list, &req, &held1));
    OK(peerlb_list_choose(list, &req, &held2));
    char *json = NULL;
    OK(peerlb_list_introspect(list, &json));
    EXPECT(strstr(json, "\"pending\":2") != NULL, "two pending: %s", json);
    peerlb_string_free(json);
    EXPECT_STATUS(peerlb_list_introspect(NULL, &json), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_introspect(list, NULL), PEERLB_INVALID_ARGUMENT);
    peerlb_string_free(NULL);
    OK(peerlb_list_stop(list));
    EXPECT_STATUS(peerlb_list_choose(list, &req, &c), PEERLB_NOT_STARTED);
    OK(peerlb_choice_finish(&held1, PEERLB_OUTCOME_OK, -1));
    peerlb_list_free(list);
    OK(peerlb_choice_finish(&held2, PEERLB_OUTCOME_CANCELLED, -1)); /* after free: safe */
    EXPECT_STATUS(peerlb_choice_finish(&held2, PEERLB_OUTCOME_CANCELLED, -1), PEERLB_INVALID_ARGUMENT);
}

static void test_waiting_errors(void) {
    peerlb_list *list = make_list(1);
    peerlb_choice c;
    peerlb_request none = {PEERLB_NO_TIMEOUT, NULL, 0};
    EXPECT_STATUS(peerlb_list_choose(list, &none, &c), PEERLB_NO_DEADLINE);
    peerlb_request neg = {-12345, NULL, 0}; /* any negative timeout means none */
    EXPECT_STATUS(peerlb_list_choose(list, &neg, &c), PEERLB_NO_DEADLINE);
    peerlb_request zero = {0, NULL, 0};
    EXPECT_STATUS(peerlb_list_choose(list, &zero, &c), PEERLB_TIMEOUT);
    peerlb_request ten = {10, NULL, 0};
    EXPECT_STATUS(peerlb_list_choose(list, &ten, &c), PEERLB_TIMEOUT);
    peerlb_list_free(list);

    peerlb_list_options *opts;
    OK(peerlb_list_options_new(&opts));
    OK(peerlb_list_options_set_fail_fast(opts, true));
    OK(peerlb_list_new(opts, NULL, &list));
    peerlb_list_options_free(opts);
    OK(peerlb_list_start(list));
    EXPECT_STATUS(peerlb_list_choose(list, &ten, &c), PEERLB_NO_PEER_AVAILABLE);
    peerlb_list_free(list);
}

/* A transport whose retain tries the subscriber functions with bad arguments. */
static int probes;
static int probing_retain(void *u, const char *id, size_t len, const peerlb_subscriber *s) {
    (void)u;
    (void)len;
    peerlb_subscriber *copy = NULL;
    probes += peerlb_subscriber_set_status(NULL, PEERLB_CONNECTION_AVAILABLE, NULL) == PEERLB_INVALID_ARGUMENT;
    probes += peerlb_subscriber_set_status(s, 3, NULL) == PEERLB_INVALID_ARGUMENT;
    probes += peerlb_subscriber_set_status(s, 0xFFFFFFFFu, NULL) == PEERLB_INVALID_ARGUMENT;
    probes += peerlb_subscriber_clone(NULL, &copy) == PEERLB_INVALID_ARGUMENT;
    probes += peerlb_subscriber_clone(s, NULL) == PEERLB_INVALID_ARGUMENT;
    peerlb_subscriber_free((peerlb_subscriber *)s); /* borrowed: ignored */
    peerlb_subscriber_free(NULL);
    if (strcmp(id, "fail:1") == 0) return 42; /* any non-zero fails */
    return peerlb_subscriber_set_status(s, PEERLB_CONNECTION_AVAILABLE, NULL);
}

static void test_subscriber_and_callbacks(void) {
    peerlb_transport_vtable vt = {NULL, "probe", probing_retain, ok_cb, count_free};
    peerlb_list *list = NULL;
    frees = 0;
    OK(peerlb_list_new(NULL, &vt, &list));
    OK(peerlb_list_start(list));
    peerlb_peer_spec peers[] = {SPEC("ok:1"), SPEC("fail:1")};
    EXPECT_STATUS(peerlb_list_update(list, peers, 2, NULL, 0), PEERLB_TRANSPORT_FAILED);
    EXPECT(strstr(peerlb_last_error_message(), "returned 42") != NULL, "message: %s", peerlb_last_error_message());
    EXPECT(probes == 10, "every bad subscriber call refused (%d/10)", probes);
    EXPECT(total_peers(list) == 1, "failed peer left out, list intact (%ld)", total_peers(list));
    peerlb_choice c;
    peerlb_request req = {1000, NULL, 0};
    OK(peerlb_list_choose(list, &req, &c));
    OK(peerlb_choice_finish(&c, PEERLB_OUTCOME_OK, -1));
    peerlb_list_free(list);
    EXPECT(frees == 1, "free_userdata once (%d)", frees);
}

static void *fail_in_thread(void *arg) {
    (void)arg;
    peerlb_list_options_new(NULL); /* fails on this thread only */
    return NULL;
}

static void test_thread_local_error(void) {
    EXPECT_STATUS(peerlb_list_start(NULL), PEERLB_INVALID_ARGUMENT);
    char before[256];
    snprintf(before, sizeof before, "%s", peerlb_last_error_message());
    pthread_t th;
    pthread_create(&th, NULL, fail_in_thread, NULL);
    pthread_join(th, NULL);
    EXPECT(strcmp(before, peerlb_last_error_message()) == 0, "another thread's error is not ours");
    EXPECT(strstr(before, "list is NULL") != NULL, "message: %s", before);
}

int main(void) {
    test_version_and_names();
    test_options();
    test_list_new();
    test_lifecycle();
    test_update();
    test_choose_and_finish();
    test_waiting_errors();
    test_subscriber_and_callbacks();
    test_thread_local_error();
    return t_summary("bad_input");
}
