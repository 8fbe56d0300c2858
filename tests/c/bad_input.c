/* Bad input through the C API: every NULL argument, malformed ids, unknown enum values,
 * misuse of choices and lists. Each must return a clear status (never crash) and leave
 * the list as it was. Also: version macros, status names, thread-local last error. */
#include <math.h>
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
    EXPECT(strcmp(peerlb_status_str(PEERLB_INTERNAL), "internal") == 0, "internal");
    EXPECT(PEERLB_PANIC == PEERLB_INTERNAL, "PEERLB_PANIC is the old name of PEERLB_INTERNAL");
    EXPECT(strcmp(peerlb_status_str(PEERLB_ALREADY_FINISHED), "already-finished") == 0, "already-finished");
    EXPECT(strcmp(peerlb_status_str(PEERLB_SOURCE_FAILED), "source-failed") == 0, "source-failed");
    EXPECT(strcmp(peerlb_status_str(PEERLB_RETRY_EXHAUSTED), "retry-exhausted") == 0, "retry-exhausted");
    EXPECT(strcmp(peerlb_status_str(PEERLB_DECLINED), "declined") == 0, "declined");
    EXPECT(PEERLB_ALREADY_FINISHED == 14 && PEERLB_INTERNAL == 15, "stable values");
    EXPECT(PEERLB_OVERLOADED == 16 && strcmp(peerlb_status_str(PEERLB_OVERLOADED), "overloaded") == 0,
           "overloaded");
    EXPECT(strcmp(peerlb_status_str(17), "unknown") == 0, "17 is unknown");
    EXPECT(strcmp(peerlb_status_str(100), "unknown") == 0, "100 (the old panic value) is unknown");
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

static void test_update_placed(void) {
    peerlb_list *list = make_list(1);
    peerlb_placed_peer good[] = {{LIT("a:1"), 1, LIT("z1"), 0}, {LIT("b:1"), 2, NULL, 0, 1}};
    OK(peerlb_list_update_placed(list, good, 2, NULL, 0));
    char *json = NULL;
    OK(peerlb_list_introspect(list, &json));
    EXPECT(strstr(json, "\"zone\":\"z1\"") && strstr(json, "\"priority\":1"), "zone and priority: %s", json);
    peerlb_string_free(json);
    EXPECT_STATUS(peerlb_list_update_placed(NULL, good, 2, NULL, 0), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_update_placed(list, NULL, 1, NULL, 0), PEERLB_INVALID_ARGUMENT);
    /* Malformed zones fail the whole call. */
    peerlb_placed_peer null_zone[] = {{LIT("c:1"), 1, NULL, 0, 0}, {LIT("d:1"), 1, NULL, 2, 0}};
    EXPECT_STATUS(peerlb_list_update_placed(list, null_zone, 2, NULL, 0), PEERLB_INVALID_ARGUMENT);
    peerlb_placed_peer bad_zone[] = {{LIT("c:1"), 1, LIT("z\xff"), 0}};
    EXPECT_STATUS(peerlb_list_update_placed(list, bad_zone, 1, NULL, 0), PEERLB_INVALID_ARGUMENT);
    peerlb_placed_peer huge_zone[] = {{LIT("c:1"), 1, "z", SIZE_MAX, 0}};
    EXPECT_STATUS(peerlb_list_update_placed(list, huge_zone, 1, NULL, 0), PEERLB_INVALID_ARGUMENT);
    EXPECT(total_peers(list) == 2, "list unchanged (%ld)", total_peers(list));
    /* Over-long zones and zones with NUL fail that peer only. */
    char long_zone[1025];
    memset(long_zone, 'z', sizeof long_zone);
    peerlb_placed_peer per_peer[] = {{LIT("c:1"), 1, long_zone, 1025, 0}, {LIT("d:1"), 1, "a\0b", 3, 0}, {LIT("e:1"), 1, long_zone, 1024, 0}};
    EXPECT_STATUS(peerlb_list_update_placed(list, per_peer, 3, NULL, 0), PEERLB_INVALID_ARGUMENT);
    EXPECT(total_peers(list) == 3, "e:1 added (%ld)", total_peers(list));
    peerlb_list_options *opts = NULL;
    OK(peerlb_list_options_new(&opts));
    EXPECT_STATUS(peerlb_list_options_set_local_zone(NULL, "a"), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_options_set_local_zone(opts, NULL), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_options_set_local_zone(opts, "\xff"), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_options_set_min_cluster_size(NULL, 6), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_options_set_overprovisioning_factor(NULL, 1.4), PEERLB_INVALID_ARGUMENT);
    OK(peerlb_list_options_set_overprovisioning_factor(opts, 0.5));
    peerlb_list *bad = NULL;
    EXPECT_STATUS(peerlb_list_new(opts, NULL, &bad), PEERLB_INVALID_ARGUMENT);
    EXPECT(bad == NULL, "no list");
    OK(peerlb_list_options_set_overprovisioning_factor(opts, 1.4));
    OK(peerlb_list_options_set_local_zone(opts, "z1"));
    OK(peerlb_list_options_set_min_cluster_size(opts, 6));
    OK(peerlb_list_new(opts, NULL, &bad));
    peerlb_list_free(bad);
    peerlb_list_options_free(opts);
    peerlb_list_free(list);
}

static void test_deterministic_subset(void) {
    peerlb_peer_id backends[] = {{LIT("a:1")}, {LIT("b:1")}, {LIT("c:1")}, {LIT("d:1")}, {LIT("e:1")}, {LIT("f:1")}};
    char *json = NULL, *again = NULL;
    OK(peerlb_deterministic_subset(backends, 6, 4, 2, &json));
    OK(peerlb_deterministic_subset(backends, 6, 4, 2, &again));
    EXPECT(json[0] == '[' && strcmp(json, again) == 0, "deterministic: %s", json);
    size_t commas = 0;
    for (const char *c = json; *c; c++) commas += *c == ',';
    EXPECT(commas == 1, "two backends: %s", json);
    peerlb_string_free(json);
    peerlb_string_free(again);
    OK(peerlb_deterministic_subset(backends, 6, 0, 0, &json));
    EXPECT(strcmp(json, "[\"a:1\",\"b:1\",\"c:1\",\"d:1\",\"e:1\",\"f:1\"]") == 0, "size 0 is all: %s", json);
    peerlb_string_free(json);
    OK(peerlb_deterministic_subset(NULL, 0, 1, 3, &json));
    EXPECT(strcmp(json, "[]") == 0, "no backends: %s", json);
    peerlb_string_free(json);
    EXPECT_STATUS(peerlb_deterministic_subset(backends, 6, 0, 2, NULL), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_deterministic_subset(NULL, 2, 0, 2, &json), PEERLB_INVALID_ARGUMENT);
    peerlb_peer_id bad[] = {{LIT("a:1")}, {LIT("\xff")}};
    EXPECT_STATUS(peerlb_deterministic_subset(bad, 2, 0, 1, &json), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_deterministic_subset(backends, SIZE_MAX, 0, 1, &json), PEERLB_INVALID_ARGUMENT);
}

/* The subset list options: NULL options, a size without a client and a client without a
 * size fail with a code; bad updates of a subsetting list leave its retained peers. */
static void test_subset_options(void) {
    EXPECT_STATUS(peerlb_list_options_set_subset(NULL, 4), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_options_set_subset_client(NULL, 7), PEERLB_INVALID_ARGUMENT);
    peerlb_list *list = NULL;
    peerlb_list_options *opts = NULL;
    OK(peerlb_list_options_new(&opts));
    OK(peerlb_list_options_set_subset(opts, 4));
    EXPECT_STATUS(peerlb_list_new(opts, NULL, &list), PEERLB_INVALID_ARGUMENT);
    EXPECT(list == NULL, "no list without a client");
    peerlb_list_options_free(opts);
    OK(peerlb_list_options_new(&opts));
    OK(peerlb_list_options_set_subset_client(opts, UINT64_MAX));
    EXPECT_STATUS(peerlb_list_new(opts, NULL, &list), PEERLB_INVALID_ARGUMENT);
    EXPECT(list == NULL, "no list without a size");
    OK(peerlb_list_options_set_subset(opts, SIZE_MAX)); /* retains everything offered */
    OK(peerlb_list_new(opts, NULL, &list));
    peerlb_list_free(list);
    list = NULL;
    OK(peerlb_list_options_set_subset(opts, 2));
    OK(peerlb_list_new(opts, NULL, &list));
    peerlb_list_options_free(opts);
    peerlb_peer_spec peers[] = {SPEC("a:1"), SPEC("b:1"), SPEC("c:1"), SPEC("d:1"), SPEC("e:1")};
    OK(peerlb_list_update(list, peers, 5, NULL, 0));
    EXPECT(total_peers(list) == 2, "two retained (%ld)", total_peers(list));
    char *before = NULL, *after = NULL;
    OK(peerlb_list_introspect(list, &before));
    EXPECT(strstr(before, "\"subset\":{\"size\":2,\"client\":18446744073709551615,\"offered\":5}") != NULL,
           "introspection shows the subset: %s", before);
    /* Duplicates, unknown and invalid ids, NULL and huge arrays: coded errors, nothing moves. */
    EXPECT_STATUS(peerlb_list_update(list, peers, 1, NULL, 0), PEERLB_PEER_ALREADY_IN_LIST);
    peerlb_peer_id unknown[] = {{LIT("zz:1")}};
    EXPECT_STATUS(peerlb_list_update(list, NULL, 0, unknown, 1), PEERLB_PEER_NOT_IN_LIST);
    peerlb_peer_spec bad[] = {{"", 0, 1}, {NULL, 0, 1}};
    EXPECT_STATUS(peerlb_list_update(list, bad, 1, NULL, 0), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_update(list, bad + 1, 1, NULL, 0), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_update(list, NULL, 3, NULL, 0), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_update(list, peers, SIZE_MAX, NULL, 0), PEERLB_INVALID_ARGUMENT);
    peerlb_peer_id bad_remove[] = {{LIT("\xff")}};
    EXPECT_STATUS(peerlb_list_update(list, NULL, 0, bad_remove, 1), PEERLB_INVALID_ARGUMENT);
    OK(peerlb_list_introspect(list, &after));
    EXPECT(strcmp(before, after) == 0, "list unchanged: %s", after);
    peerlb_string_free(before);
    peerlb_string_free(after);
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
    EXPECT_STATUS(peerlb_choice_finish(&c, PEERLB_OUTCOME_OK, -1), PEERLB_ALREADY_FINISHED); /* twice */
    EXPECT(strstr(peerlb_last_error_message(), "already finished") != NULL, "message: %s", peerlb_last_error_message());
    EXPECT_STATUS(peerlb_choice_finish(&c, 4, -1), PEERLB_ALREADY_FINISHED); /* finished wins over a bad outcome */
    EXPECT_STATUS(peerlb_choice_peer(&c, &id, &len), PEERLB_ALREADY_FINISHED);
    peerlb_choice zero = {0};
    EXPECT_STATUS(peerlb_choice_finish(&zero, PEERLB_OUTCOME_OK, -1), PEERLB_ALREADY_FINISHED);

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
    char *backends = (char *)"untouched";
    EXPECT_STATUS(peerlb_list_backends(NULL, &backends), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_backends(list, NULL), PEERLB_INVALID_ARGUMENT);
    EXPECT(strcmp(backends, "untouched") == 0, "out untouched on failure");
    OK(peerlb_list_backends(list, &backends));
    EXPECT(backends[0] == '[' && strstr(backends, "\"id\":\"a:1\"") && strstr(backends, "\"pending\":2"),
           "backends: %s", backends);
    peerlb_string_free(backends);
    peerlb_string_free(NULL);
    OK(peerlb_list_stop(list));
    EXPECT_STATUS(peerlb_list_choose(list, &req, &c), PEERLB_NOT_STARTED);
    OK(peerlb_choice_finish(&held1, PEERLB_OUTCOME_OK, -1));
    peerlb_list_free(list);
    OK(peerlb_choice_finish(&held2, PEERLB_OUTCOME_CANCELLED, -1)); /* after free: safe */
    EXPECT_STATUS(peerlb_choice_finish(&held2, PEERLB_OUTCOME_CANCELLED, -1), PEERLB_ALREADY_FINISHED);
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

/* ---------- ejection, manual clock, admin, events, retry ---------- */

static peerlb_list *make_list_with(const char *ejection, peerlb_manual_clock *clock) {
    peerlb_list_options *opts = NULL;
    peerlb_list *list = NULL;
    OK(peerlb_list_options_new(&opts));
    OK(peerlb_list_options_set_shuffle(opts, false));
    if (ejection) OK(peerlb_list_options_set_ejection(opts, ejection));
    if (clock) OK(peerlb_list_options_set_manual_clock(opts, clock));
    OK(peerlb_list_new(opts, NULL, &list));
    peerlb_list_options_free(opts);
    return list;
}

/* Chooses once and finishes with `outcome`; returns the first byte of the peer id. */
static char choose_finish(peerlb_list *list, peerlb_outcome outcome) {
    peerlb_choice c;
    peerlb_request req = {1000, NULL, 0};
    if (peerlb_list_choose(list, &req, &c) != PEERLB_OK) return '?';
    char first = c.peer[0];
    peerlb_choice_finish(&c, outcome, -1);
    return first;
}

static void test_ejection_options(void) {
    peerlb_list_options *opts = NULL;
    OK(peerlb_list_options_new(&opts));
    EXPECT_STATUS(peerlb_list_options_set_ejection(NULL, "off"), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_options_set_ejection(opts, NULL), PEERLB_INVALID_ARGUMENT);
    const char *bad[] = {"",           "on",           "failures",   "failures=",        "=3",
                         "failures=3&", "nope=1",       "failures=0", "max_percent=101", "failures=-1",
                         "failures=x", "base_ms=9&max_ms=1", "failures=1&failures=2", "\xff", "off?failures=1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        EXPECT_STATUS(peerlb_list_options_set_ejection(opts, bad[i]), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_options_set_ejection(opts, "nope=1"), PEERLB_INVALID_ARGUMENT);
    EXPECT(strstr(peerlb_last_error_message(), "nope") != NULL, "names the key: %s", peerlb_last_error_message());
    OK(peerlb_list_options_set_ejection(opts, "default"));
    OK(peerlb_list_options_set_ejection(opts, "default?failures=2"));
    OK(peerlb_list_options_set_ejection(opts, "failures=2&base_ms=100&max_ms=100&max_percent=50&panic_percent=0"));
    /* A failed setter leaves the options as they were: two failures still eject. */
    EXPECT_STATUS(peerlb_list_options_set_ejection(opts, "failures=0"), PEERLB_INVALID_ARGUMENT);
    OK(peerlb_list_options_set_shuffle(opts, false));
    peerlb_list *list = NULL;
    OK(peerlb_list_new(opts, NULL, &list));
    peerlb_list_options_free(opts);
    peerlb_peer_spec peers[] = {SPEC("a:1"), SPEC("b:1")};
    OK(peerlb_list_update(list, peers, 2, NULL, 0));
    OK(peerlb_list_start(list));
    EXPECT(choose_finish(list, PEERLB_OUTCOME_FAILURE) == 'a', "a first");
    EXPECT(choose_finish(list, PEERLB_OUTCOME_OK) == 'b', "then b");
    EXPECT(choose_finish(list, PEERLB_OUTCOME_FAILURE) == 'a', "a fails twice: ejected");
    int only_b = 1;
    for (int i = 0; i < 6; i++) only_b &= choose_finish(list, PEERLB_OUTCOME_OK) == 'b';
    EXPECT(only_b, "a is ejected");
    char *json = NULL;
    OK(peerlb_list_introspect(list, &json));
    EXPECT(strstr(json, "\"ejected\":1") != NULL, "introspection shows it: %s", json);
    peerlb_string_free(json);
    peerlb_list_free(list);

    /* "off": no failure ejects. */
    list = make_list_with("off", NULL);
    OK(peerlb_list_update(list, peers, 1, NULL, 0));
    OK(peerlb_list_start(list));
    for (int i = 0; i < 20; i++) choose_finish(list, PEERLB_OUTCOME_FAILURE);
    EXPECT(choose_finish(list, PEERLB_OUTCOME_OK) == 'a', "still chosen");
    OK(peerlb_list_introspect(list, &json));
    EXPECT(strstr(json, "\"ejected\":0") != NULL && strstr(json, "\"failures\":20") != NULL, "%s", json);
    peerlb_string_free(json);
    peerlb_list_free(list);
}

static void test_manual_clock(void) {
    peerlb_manual_clock *clock = NULL;
    uint64_t ms = 99;
    EXPECT_STATUS(peerlb_manual_clock_new(NULL), PEERLB_INVALID_ARGUMENT);
    OK(peerlb_manual_clock_new(&clock));
    EXPECT_STATUS(peerlb_manual_clock_advance_ms(NULL, 5), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_manual_clock_elapsed_ms(NULL, &ms), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_manual_clock_elapsed_ms(clock, NULL), PEERLB_INVALID_ARGUMENT);
    EXPECT(ms == 99, "out untouched");
    OK(peerlb_manual_clock_elapsed_ms(clock, &ms));
    EXPECT(ms == 0, "starts at 0 (%llu)", (unsigned long long)ms);
    OK(peerlb_manual_clock_advance_ms(clock, 1500));
    OK(peerlb_manual_clock_advance_ms(clock, 0));
    OK(peerlb_manual_clock_elapsed_ms(clock, &ms));
    EXPECT(ms == 1500, "advanced (%llu)", (unsigned long long)ms);
    OK(peerlb_manual_clock_advance_ms(clock, UINT64_MAX)); /* saturates, no crash */
    peerlb_manual_clock_free(clock);
    peerlb_manual_clock_free(NULL);

    peerlb_list_options *opts = NULL;
    OK(peerlb_list_options_new(&opts));
    OK(peerlb_manual_clock_new(&clock));
    EXPECT_STATUS(peerlb_list_options_set_manual_clock(NULL, clock), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_options_set_manual_clock(opts, NULL), PEERLB_INVALID_ARGUMENT);
    OK(peerlb_list_options_set_manual_clock(opts, clock));
    OK(peerlb_list_options_set_ejection(opts, "failures=1&base_ms=1000&max_ms=1000"));
    OK(peerlb_list_options_set_shuffle(opts, false));
    peerlb_list *list = NULL;
    OK(peerlb_list_new(opts, NULL, &list));
    peerlb_list_options_free(opts);
    peerlb_peer_spec peers[] = {SPEC("a:1"), SPEC("b:1"), SPEC("c:1")};
    OK(peerlb_list_update(list, peers, 3, NULL, 0));
    OK(peerlb_list_start(list));
    EXPECT(choose_finish(list, PEERLB_OUTCOME_FAILURE) == 'a', "a fails once: ejected for 1 s");
    EXPECT(choose_finish(list, PEERLB_OUTCOME_OK) == 'b', "b");
    EXPECT(choose_finish(list, PEERLB_OUTCOME_OK) == 'c', "c");
    EXPECT(choose_finish(list, PEERLB_OUTCOME_OK) == 'b', "a skipped");
    OK(peerlb_manual_clock_advance_ms(clock, 999));
    EXPECT(choose_finish(list, PEERLB_OUTCOME_OK) == 'c', "still ejected at 999 ms");
    /* The list keeps its own reference: the handle may go first. */
    peerlb_manual_clock *keep = clock;
    OK(peerlb_manual_clock_advance_ms(keep, 1));
    int saw_a = 0;
    for (int i = 0; i < 3; i++) saw_a |= choose_finish(list, PEERLB_OUTCOME_OK) == 'a';
    EXPECT(saw_a, "restored at 1000 ms");
    peerlb_manual_clock_free(clock);
    EXPECT(choose_finish(list, PEERLB_OUTCOME_OK) != '?', "list works after the clock handle is freed");
    peerlb_list_free(list);
}

static void test_admin(void) {
    peerlb_list *list = make_list(1);
    peerlb_peer_spec peers[] = {SPEC("a:1"), SPEC("b:1")};
    OK(peerlb_list_update(list, peers, 2, NULL, 0));
    peerlb_admin_result res = 77;
    peerlb_status (*ops[])(const peerlb_list *, const char *, size_t, peerlb_admin_result *) = {
        peerlb_list_disable, peerlb_list_enable, peerlb_list_reset, peerlb_list_delete, peerlb_list_failover};
    char long_id[1100];
    memset(long_id, 'x', sizeof long_id);
    for (size_t i = 0; i < 5; i++) {
        EXPECT_STATUS(ops[i](NULL, LIT("a:1"), &res), PEERLB_INVALID_ARGUMENT);
        EXPECT_STATUS(ops[i](list, NULL, 3, &res), PEERLB_INVALID_ARGUMENT);
        EXPECT_STATUS(ops[i](list, LIT("a:1"), NULL), PEERLB_INVALID_ARGUMENT);
        EXPECT_STATUS(ops[i](list, LIT("\xff\xfe"), &res), PEERLB_INVALID_ARGUMENT);
        EXPECT_STATUS(ops[i](list, "", 0, &res), PEERLB_INVALID_ARGUMENT);
        EXPECT_STATUS(ops[i](list, NULL, 0, &res), PEERLB_INVALID_ARGUMENT);
        EXPECT_STATUS(ops[i](list, long_id, 1025, &res), PEERLB_INVALID_ARGUMENT);
        EXPECT_STATUS(ops[i](list, "a:1\0x", 5, &res), PEERLB_INVALID_ARGUMENT);
        EXPECT_STATUS(ops[i](list, LIT("zz:9"), &res), PEERLB_PEER_NOT_IN_LIST);
        EXPECT(strstr(peerlb_last_error_message(), "zz:9") != NULL, "names the peer: %s", peerlb_last_error_message());
        EXPECT(res == PEERLB_RESULT_FAILED, "result is failed on failure (op %zu)", i);
    }
    EXPECT(total_peers(list) == 2, "list intact");
    OK(peerlb_list_disable(list, LIT("a:1"), &res));
    EXPECT(res == PEERLB_ADMIN_SUCCESS, "disabled");
    OK(peerlb_list_disable(list, LIT("a:1"), &res));
    EXPECT(res == PEERLB_ADMIN_NO_ACTION_REQUIRED, "already disabled");
    for (int i = 0; i < 4; i++) EXPECT(choose_finish(list, PEERLB_OUTCOME_OK) == 'b', "only b while a is disabled");
    OK(peerlb_list_reset(list, LIT("a:1"), &res));
    EXPECT(res == PEERLB_ADMIN_NO_ACTION_REQUIRED, "nothing to reset");
    OK(peerlb_list_enable(list, LIT("a:1"), &res));
    EXPECT(res == PEERLB_ADMIN_SUCCESS, "enabled");
    OK(peerlb_list_enable(list, LIT("a:1"), &res));
    EXPECT(res == PEERLB_ADMIN_NO_ACTION_REQUIRED, "already enabled");
    OK(peerlb_list_delete(list, LIT("b:1"), &res));
    EXPECT(res == PEERLB_ADMIN_SUCCESS && total_peers(list) == 1, "deleted");
    EXPECT_STATUS(peerlb_list_delete(list, LIT("b:1"), &res), PEERLB_PEER_NOT_IN_LIST);
    EXPECT(strcmp(peerlb_admin_result_str(PEERLB_ADMIN_SUCCESS), "success") == 0, "name");
    EXPECT(strcmp(peerlb_admin_result_str(PEERLB_ADMIN_NO_ACTION_REQUIRED), "no-action-required") == 0, "name");
    EXPECT(strcmp(peerlb_admin_result_str(PEERLB_RESULT_FAILED), "failed") == 0, "name");
    EXPECT(PEERLB_RESULT_SUCCESS == 1 && PEERLB_RESULT_NO_ACTION_REQUIRED == 3 && PEERLB_RESULT_FAILED == 4,
           "the balancer's numbers");
    EXPECT(strcmp(peerlb_admin_result_str(2), "unknown") == 0, "unknown");
    EXPECT(strcmp(peerlb_admin_result_str(0xFFFFFFFFu), "unknown") == 0, "unknown");
    peerlb_list_free(list);
}

/* ---- events ---- */

typedef struct {
    peerlb_list *list;
    peerlb_subscription *sub;
    char log[32][64];
    int n;
    int reentered;
} ev_log;

static void record_event(const peerlb_event *e, void *u) {
    ev_log *l = u;
    if (l->n < 32) {
        snprintf(l->log[l->n], sizeof l->log[l->n], "%s %.*s%s", peerlb_event_kind_str(e->kind), (int)e->peer_len,
                 e->peer, e->detail ? "" : " (NULL detail)");
        l->n++;
    }
}

static void test_events_bad_input(void) {
    peerlb_list *list = make_list(0);
    peerlb_subscription *sub = (peerlb_subscription *)(uintptr_t)0x1;
    ev_log l;
    memset(&l, 0, sizeof l);
    EXPECT_STATUS(peerlb_list_subscribe(NULL, record_event, &l, &sub), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_subscribe(list, NULL, &l, &sub), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_subscribe(list, record_event, &l, NULL), PEERLB_INVALID_ARGUMENT);
    EXPECT(sub == (peerlb_subscription *)(uintptr_t)0x1, "out untouched");
    peerlb_subscription_free(NULL);
    const char *names[] = {"unknown", "added", "removed", "available", "unavailable",
                           "ejected", "restored", "disabled", "enabled", "unknown"};
    for (uint32_t k = 0; k < 10; k++)
        EXPECT(strcmp(peerlb_event_kind_str(k), names[k]) == 0, "kind %u is %s", k, peerlb_event_kind_str(k));
    EXPECT(strcmp(peerlb_event_kind_str(0xFFFFFFFFu), "unknown") == 0, "huge kind");
    EXPECT(PEERLB_EVENT_ADDED == 1 && PEERLB_EVENT_ENABLED == 8, "stable values");
    /* user_data may be NULL; several subscribers each get every event. */
    peerlb_subscription *a = NULL, *b = NULL;
    OK(peerlb_list_subscribe(list, record_event, &l, &a));
    OK(peerlb_list_subscribe(list, record_event, &l, &b));
    peerlb_peer_spec p[] = {SPEC("a:1")};
    OK(peerlb_list_update(list, p, 1, NULL, 0));
    EXPECT(l.n == 2 && strcmp(l.log[0], "added a:1") == 0 && strcmp(l.log[1], "added a:1") == 0, "two subscribers (%d)",
           l.n);
    peerlb_subscription_free(a);
    OK(peerlb_list_start(list));
    EXPECT(l.n == 3 && strcmp(l.log[2], "available a:1") == 0, "only b after a is freed (%d)", l.n);
    peerlb_subscription_free(b);
    peerlb_list_free(list);
    EXPECT(l.n == 3, "nothing after free (%d)", l.n);
}

/* A callback that calls back into its own list: admin, update, introspection. The
 * events those calls cause come after it returns, in order. */
static void reentrant_event(const peerlb_event *e, void *u) {
    ev_log *l = u;
    record_event(e, u);
    if (e->kind == PEERLB_EVENT_ADDED && e->peer_len == 3 && memcmp(e->peer, "a:1", 3) == 0) {
        peerlb_admin_result res = 9;
        l->reentered += peerlb_list_disable(l->list, e->peer, e->peer_len, &res) == PEERLB_OK;
        l->reentered += res == PEERLB_ADMIN_SUCCESS;
        peerlb_peer_spec more[] = {SPEC("b:1")};
        l->reentered += peerlb_list_update(l->list, more, 1, NULL, 0) == PEERLB_OK;
        char *json = NULL;
        l->reentered += peerlb_list_introspect(l->list, &json) == PEERLB_OK;
        peerlb_string_free(json);
        size_t len = 0;
        l->reentered += peerlb_list_len(l->list, &len) == PEERLB_OK && len == 2;
        /* A bad call from inside a callback is an error too, not a crash. */
        l->reentered += peerlb_list_enable(l->list, LIT("nope:1"), &res) == PEERLB_PEER_NOT_IN_LIST;
    }
}

static void test_events_reentrant(void) {
    ev_log l;
    memset(&l, 0, sizeof l);
    l.list = make_list(1);
    OK(peerlb_list_subscribe(l.list, reentrant_event, &l, &l.sub));
    peerlb_peer_spec p[] = {SPEC("a:1")};
    OK(peerlb_list_update(l.list, p, 1, NULL, 0));
    EXPECT(l.reentered == 6, "every call from the callback worked (%d/6)", l.reentered);
    /* The callback ran between a's addition and its retain, so its changes come first. */
    const char *want[] = {"added a:1", "disabled a:1", "added b:1", "available b:1", "available a:1"};
    EXPECT(l.n == 5, "%d events", l.n);
    for (int i = 0; i < 5 && i < l.n; i++) EXPECT(strcmp(l.log[i], want[i]) == 0, "event %d: %s, want %s", i, l.log[i], want[i]);
    EXPECT(choose_finish(l.list, PEERLB_OUTCOME_OK) == 'b', "a disabled from inside the callback");
    peerlb_subscription_free(l.sub);
    peerlb_list_free(l.list);
}

/* A callback that frees its own subscription on its first event. */
static void self_freeing(const peerlb_event *e, void *u) {
    ev_log *l = u;
    record_event(e, u);
    peerlb_subscription_free(l->sub);
    l->sub = NULL;
}

static void test_events_free_order(void) {
    peerlb_peer_spec p[] = {SPEC("a:1"), SPEC("b:1")};
    /* Subscription freed after its list. */
    ev_log l;
    memset(&l, 0, sizeof l);
    peerlb_list *list = make_list(1);
    peerlb_subscription *sub = NULL;
    OK(peerlb_list_subscribe(list, record_event, &l, &sub));
    OK(peerlb_list_update(list, p, 1, NULL, 0));
    OK(peerlb_list_stop(list));
    EXPECT(l.n == 3 && strcmp(l.log[2], "unavailable a:1") == 0, "added, available, unavailable (%d)", l.n);
    peerlb_list_free(list);
    peerlb_subscription_free(sub);
    EXPECT(l.n == 3, "%d events", l.n);
    /* Subscription freed before its list. */
    memset(&l, 0, sizeof l);
    list = make_list(1);
    OK(peerlb_list_subscribe(list, record_event, &l, &sub));
    peerlb_subscription_free(sub);
    OK(peerlb_list_update(list, p, 1, NULL, 0));
    peerlb_list_free(list);
    EXPECT(l.n == 0, "no event after the subscription was freed (%d)", l.n);
    /* Freed from inside its own callback: no later event reaches it. */
    memset(&l, 0, sizeof l);
    list = make_list(1);
    OK(peerlb_list_subscribe(list, self_freeing, &l, &l.sub));
    OK(peerlb_list_update(list, p, 2, NULL, 0));
    EXPECT(l.n == 1 && l.sub == NULL, "one event, then gone (%d)", l.n);
    peerlb_list_free(list);
}

/* peerlb_subscription_free waits for a callback running on another thread. */
typedef struct {
    peerlb_list *list;
    volatile int entered, left;
    pthread_mutex_t mu;
} slow_cb;

static void slow_event(const peerlb_event *e, void *u) {
    slow_cb *s = u;
    (void)e;
    pthread_mutex_lock(&s->mu);
    int first = !s->entered;
    s->entered = 1;
    pthread_mutex_unlock(&s->mu);
    if (first) {
        t_sleep_ms(200);
        pthread_mutex_lock(&s->mu);
        s->left = 1;
        pthread_mutex_unlock(&s->mu);
    }
}

static void *update_in_thread(void *arg) {
    slow_cb *s = arg;
    peerlb_peer_spec p[] = {SPEC("a:1")};
    peerlb_list_update(s->list, p, 1, NULL, 0);
    return NULL;
}

static void test_subscription_free_waits(void) {
    slow_cb s;
    memset(&s, 0, sizeof s);
    pthread_mutex_init(&s.mu, NULL);
    s.list = make_list(0);
    peerlb_subscription *sub = NULL;
    OK(peerlb_list_subscribe(s.list, slow_event, &s, &sub));
    pthread_t th;
    pthread_create(&th, NULL, update_in_thread, &s);
    for (int i = 0; i < 5000; i++) {
        pthread_mutex_lock(&s.mu);
        int in = s.entered;
        pthread_mutex_unlock(&s.mu);
        if (in) break;
        t_sleep_ms(1);
    }
    peerlb_subscription_free(sub); /* the callback is inside its 200 ms sleep */
    pthread_mutex_lock(&s.mu);
    int entered = s.entered, left = s.left;
    pthread_mutex_unlock(&s.mu);
    EXPECT(entered && left, "free returned only after the running callback did (entered %d left %d)", entered, left);
    pthread_join(th, NULL);
    peerlb_list_free(s.list);
    pthread_mutex_destroy(&s.mu);
}

/* ---- retry ---- */

static void test_retry_bad_input(void) {
    peerlb_retry_budget *budget = NULL;
    EXPECT_STATUS(peerlb_retry_budget_new(0.2, 10, 10000, NULL, NULL), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_retry_budget_new(1.5, 10, 10000, NULL, &budget), PEERLB_INVALID_ARGUMENT);
    double zero = 0.0;
    EXPECT_STATUS(peerlb_retry_budget_new(zero / zero, 10, 10000, NULL, &budget), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_retry_budget_new(0.2, 10, 999, NULL, &budget), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_retry_budget_new(0.2, 10, 60001, NULL, &budget), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_retry_budget_new(0.2, (int64_t)UINT32_MAX + 1, 10000, NULL, &budget), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_retry_budget_new(0.2, INT64_MAX, INT64_MAX, NULL, &budget), PEERLB_INVALID_ARGUMENT);
    EXPECT(budget == NULL, "out untouched");
    uint64_t balance = 0;
    /* Not given (any negative value): the core's defaults, 10 retries/s over 10 s. */
    OK(peerlb_retry_budget_new(PEERLB_DEFAULT, PEERLB_DEFAULT, PEERLB_DEFAULT, NULL, &budget));
    OK(peerlb_retry_budget_balance(budget, &balance));
    EXPECT(balance == 100, "default budget allows 100 retries before any call (%llu)", (unsigned long long)balance);
    peerlb_retry_budget_free(budget);
    OK(peerlb_retry_budget_new(-0.5, 0, -7, NULL, &budget)); /* ratio and window default, 0 per second */
    OK(peerlb_retry_budget_balance(budget, &balance));
    EXPECT(balance == 0, "min_per_sec 0 is a value, not the default (%llu)", (unsigned long long)balance);
    peerlb_retry_budget_free(budget);
    budget = NULL;
    /* One retry per call; a first attempt that found no peer (the list not started, below)
     * gives its deposit back, so only the call that ran counts. */
    OK(peerlb_retry_budget_new(1.0, 0, 1000, NULL, &budget));
    EXPECT_STATUS(peerlb_retry_budget_balance(NULL, &balance), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_retry_budget_balance(budget, NULL), PEERLB_INVALID_ARGUMENT);
    OK(peerlb_retry_budget_balance(budget, &balance));
    EXPECT(balance == 0, "no calls yet, no retries (%llu)", (unsigned long long)balance);
    peerlb_retry_budget_free(NULL);

    peerlb_retry *retry = NULL;
    EXPECT_STATUS(peerlb_retry_new(3, -1, NULL, NULL), PEERLB_INVALID_ARGUMENT);
    OK(peerlb_retry_new(3, 5000, budget, &retry));
    peerlb_retry_budget_free(budget); /* the retry keeps its own reference */
    peerlb_list *list = make_list(0);
    peerlb_peer_spec p[] = {SPEC("a:1"), SPEC("b:1")};
    OK(peerlb_list_update(list, p, 2, NULL, 0));
    peerlb_choice c = {(const char *)"sentinel", 8, NULL};
    EXPECT_STATUS(peerlb_retry_choose(NULL, list, NULL, &c), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_retry_choose(retry, NULL, NULL, &c), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_retry_choose(retry, list, NULL, NULL), PEERLB_INVALID_ARGUMENT);
    peerlb_request bad_key = {100, NULL, 5};
    EXPECT_STATUS(peerlb_retry_choose(retry, list, &bad_key, &c), PEERLB_INVALID_ARGUMENT);
    peerlb_request quick = {50, NULL, 0};
    EXPECT_STATUS(peerlb_retry_choose(retry, list, &quick, &c), PEERLB_NOT_STARTED); /* list not started */
    EXPECT(c.token == NULL && c.peer_len == 8, "out untouched on failure");
    uint32_t attempts = 99;
    EXPECT_STATUS(peerlb_retry_attempts(NULL, &attempts), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_retry_attempts(retry, NULL), PEERLB_INVALID_ARGUMENT);
    OK(peerlb_list_start(list));
    OK(peerlb_retry_choose(retry, list, &quick, &c));
    EXPECT(c.peer_len == 3 && memcmp(c.peer, "a:1", 3) == 0, "first attempt a:1");
    /* Bad reports change nothing: the choice is still live. */
    EXPECT_STATUS(peerlb_retry_failed(NULL, &c, "boom", -1), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_retry_failed(retry, NULL, "boom", -1), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_retry_failed(retry, &c, NULL, -1), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_retry_declined(retry, &c, NULL, -1), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_retry_declined(NULL, &c, "busy", -1), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_retry_succeeded(NULL, &c, -1), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_retry_succeeded(retry, NULL, -1), PEERLB_INVALID_ARGUMENT);
    EXPECT(c.token != NULL, "still live after refused reports");
    OK(peerlb_retry_failed(retry, &c, "bad\xff bytes", 1000)); /* non-UTF-8 message: replaced */
    EXPECT(c.token == NULL && c.peer == NULL, "reported choice cleared");
    EXPECT_STATUS(peerlb_retry_failed(retry, &c, "again", -1), PEERLB_ALREADY_FINISHED); /* twice */
    EXPECT_STATUS(peerlb_retry_succeeded(retry, &c, -1), PEERLB_ALREADY_FINISHED);
    EXPECT_STATUS(peerlb_retry_declined(retry, &c, "x", -1), PEERLB_ALREADY_FINISHED);
    OK(peerlb_retry_attempts(retry, &attempts));
    EXPECT(attempts == 1, "one attempt (%u)", attempts);
    OK(peerlb_retry_choose(retry, list, &quick, &c));
    EXPECT(c.peer_len == 3 && memcmp(c.peer, "b:1", 3) == 0, "the retry goes to b:1");
    EXPECT_STATUS(peerlb_retry_declined(retry, &c, "overloaded", -1), PEERLB_DECLINED);
    EXPECT(strcmp(peerlb_last_error_message(), "peer \"b:1\" declined the request: overloaded") == 0, "message: %s",
           peerlb_last_error_message());
    EXPECT(c.token == NULL, "declined choice finished");
    EXPECT_STATUS(peerlb_retry_choose(retry, list, &quick, &c), PEERLB_INVALID_ARGUMENT); /* over */
    EXPECT(strstr(peerlb_last_error_message(), "over") != NULL, "says it is over: %s", peerlb_last_error_message());
    peerlb_retry_free(retry);
    peerlb_retry_free(NULL);

    /* Exhausted: the message lists every attempt's error (the non-UTF-8 byte replaced). */
    OK(peerlb_retry_new(2, -1, NULL, &retry));
    OK(peerlb_retry_choose(retry, list, &quick, &c));
    OK(peerlb_retry_failed(retry, &c, "e1\xff", -1));
    OK(peerlb_retry_choose(retry, list, &quick, &c));
    OK(peerlb_retry_failed(retry, &c, "e2", -1));
    EXPECT_STATUS(peerlb_retry_choose(retry, list, &quick, &c), PEERLB_RETRY_EXHAUSTED);
    EXPECT(strcmp(peerlb_last_error_message(), "retry attempts exceeded (e1\xef\xbf\xbd; e2)") == 0, "message: %s",
           peerlb_last_error_message());
    peerlb_retry_free(retry);

    /* max_attempts 0: the core's default, 3 attempts. */
    OK(peerlb_retry_new(0, PEERLB_NO_TIMEOUT, NULL, &retry));
    for (int i = 0; i < 3; i++) {
        OK(peerlb_retry_choose(retry, list, &quick, &c));
        OK(peerlb_retry_failed(retry, &c, "e", -1));
    }
    EXPECT_STATUS(peerlb_retry_choose(retry, list, &quick, &c), PEERLB_RETRY_EXHAUSTED);
    OK(peerlb_retry_attempts(retry, &attempts));
    EXPECT(attempts == 3, "default attempts: %u", attempts);
    peerlb_retry_free(retry);

    /* A retry freed with an unreported choice: the choice stays valid and is finished later. */
    OK(peerlb_retry_new(1, -1, NULL, &retry));
    OK(peerlb_retry_choose(retry, list, &quick, &c));
    peerlb_retry_free(retry);
    OK(peerlb_choice_finish(&c, PEERLB_OUTCOME_CANCELLED, -1));
    OK(peerlb_retry_new(1, -1, NULL, &retry));
    OK(peerlb_retry_choose(retry, list, &quick, &c));
    OK(peerlb_retry_succeeded(retry, &c, 250));
    EXPECT_STATUS(peerlb_retry_choose(retry, list, &quick, &c), PEERLB_INVALID_ARGUMENT); /* over */
    peerlb_retry_free(retry);
    char *json = NULL;
    OK(peerlb_list_introspect(list, &json));
    EXPECT(strstr(json, "\"pending\":1") == NULL, "nothing left pending: %s", json);
    peerlb_string_free(json);
    peerlb_list_free(list);
}

/* Load reports: init, ORCA text, finish_with_load; bad reports leave the choice live. */
static void test_load_reports(void) {
    peerlb_load_report r;
    EXPECT_STATUS(peerlb_load_report_init(NULL), PEERLB_INVALID_ARGUMENT);
    OK(peerlb_load_report_init(&r));
    EXPECT(r.requests_in_flight < 0 && r.utilization < 0 && r.qps < 0 && r.eps < 0, "all not given");
    EXPECT_STATUS(peerlb_load_report_parse(NULL, &r), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_load_report_parse("TEXT eps=1", NULL), PEERLB_INVALID_ARGUMENT);
    OK(peerlb_load_report_parse("TEXT cpu_utilization=0.5, application_utilization=0.25, "
                                "rps_fractional=200, eps=2, named_metrics.rif=7", &r));
    EXPECT(r.utilization == 0.25 && r.qps == 200 && r.eps == 2 && r.requests_in_flight == 7,
           "parsed %g %g %g %g", r.utilization, r.qps, r.eps, r.requests_in_flight);
    OK(peerlb_load_report_parse("TEXT rps_fractional=5", &r));
    EXPECT(r.qps == 5 && r.utilization < 0 && r.eps < 0 && r.requests_in_flight < 0, "missing fields not given");
    const char *bad[] = {"TEXT eps=-1", "TEXT eps=nan", "TEXT eps=1, eps=2", "TEXT colour=1",
                         "JSON {}", "TEXT named_metrics.rif=1.5", "TEXT \xff=1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r.qps = 42;
        EXPECT_STATUS(peerlb_load_report_parse(bad[i], &r), PEERLB_INVALID_ARGUMENT);
        EXPECT(r.qps == 42, "a failed parse leaves the report as it was (%s)", bad[i]);
    }
    char *huge = malloc(20000);
    memset(huge, ' ', 19999);
    huge[19999] = 0;
    EXPECT_STATUS(peerlb_load_report_parse(huge, &r), PEERLB_INVALID_ARGUMENT);
    free(huge);

    peerlb_list *list = make_list(1);
    peerlb_peer_spec peers[] = {SPEC("a:1")};
    OK(peerlb_list_update(list, peers, 1, NULL, 0));
    peerlb_choice c;
    OK(peerlb_list_choose(list, NULL, &c));
    peerlb_load_report nan_report;
    OK(peerlb_load_report_init(&nan_report));
    nan_report.qps = NAN;
    EXPECT_STATUS(peerlb_choice_finish_with_load(&c, PEERLB_OUTCOME_OK, -1, &nan_report), PEERLB_INVALID_ARGUMENT);
    peerlb_load_report fractional;
    OK(peerlb_load_report_init(&fractional));
    fractional.requests_in_flight = 2.5;
    EXPECT_STATUS(peerlb_choice_finish_with_load(&c, PEERLB_OUTCOME_OK, -1, &fractional), PEERLB_INVALID_ARGUMENT);
    fractional.requests_in_flight = 1e12;
    EXPECT_STATUS(peerlb_choice_finish_with_load(&c, PEERLB_OUTCOME_OK, -1, &fractional), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_choice_finish_with_load(&c, 9, -1, NULL), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_choice_finish_with_load(NULL, PEERLB_OUTCOME_OK, -1, NULL), PEERLB_INVALID_ARGUMENT);
    EXPECT(c.token != NULL, "a refused finish leaves the choice live");
    OK(peerlb_load_report_parse("TEXT cpu_utilization=0.5, rps_fractional=10", &r));
    OK(peerlb_choice_finish_with_load(&c, PEERLB_OUTCOME_OK, 1000, &r));
    EXPECT(c.token == NULL, "finish clears the choice");
    EXPECT_STATUS(peerlb_choice_finish_with_load(&c, PEERLB_OUTCOME_OK, -1, &r), PEERLB_ALREADY_FINISHED);
    OK(peerlb_list_choose(list, NULL, &c));
    OK(peerlb_choice_finish_with_load(&c, PEERLB_OUTCOME_OK, -1, NULL)); /* no report */
    peerlb_list_free(list);
}

int main(void) {
    test_version_and_names();
    test_options();
    test_list_new();
    test_lifecycle();
    test_update();
    test_update_placed();
    test_deterministic_subset();
    test_subset_options();
    test_choose_and_finish();
    test_waiting_errors();
    test_subscriber_and_callbacks();
    test_thread_local_error();
    test_ejection_options();
    test_manual_clock();
    test_admin();
    test_events_bad_input();
    test_events_reentrant();
    test_events_free_order();
    test_subscription_free_waits();
    test_retry_bad_input();
    test_load_reports();
    return t_summary("bad_input");
}
