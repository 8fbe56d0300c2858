/* Sessions, the session listener, the backend administrator's data calls and the list
 * queries through the C API: bad input of every kind (NULL, non-UTF-8, closed sessions,
 * malformed JSON), re-entrant and self-freeing session callbacks, failovers racing
 * admin actions on several threads, and a session outliving its list's handle.
 * Ends with "sessions: N passed, M failed". */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "testutil.h"

#define LIT(s) (s), (sizeof(s) - 1)
#define SPEC(s) {(s), sizeof(s) - 1, 1}

static peerlb_list *make_list(const char *const *ids, size_t n) {
    peerlb_list_options *opts = NULL;
    peerlb_list *list = NULL;
    OK(peerlb_list_options_new(&opts));
    OK(peerlb_list_options_set_shuffle(opts, false));
    OK(peerlb_list_new(opts, NULL, &list));
    peerlb_list_options_free(opts);
    for (size_t i = 0; i < n; i++) {
        peerlb_peer_spec spec = {ids[i], strlen(ids[i]), 1};
        OK(peerlb_list_update(list, &spec, 1, NULL, 0));
    }
    OK(peerlb_list_start(list));
    return list;
}

static int peer_is(const peerlb_session *s, const char *want) {
    char *peer = NULL;
    if (peerlb_session_peer(s, &peer) != PEERLB_OK) return 0;
    int same = strcmp(peer, want) == 0;
    peerlb_string_free(peer);
    return same;
}

static void test_bad_input(void) {
    const char *ids[] = {"a:1"};
    peerlb_list *list = make_list(ids, 1);
    peerlb_session *s = NULL;
    EXPECT_STATUS(peerlb_session_open(NULL, NULL, &s), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_session_open(list, NULL, NULL), PEERLB_INVALID_ARGUMENT);
    peerlb_request bad_key = {10, NULL, 4};
    EXPECT_STATUS(peerlb_session_open(list, &bad_key, &s), PEERLB_INVALID_ARGUMENT);
    EXPECT(s == NULL, "out untouched on failure");
    uint64_t id = 0;
    char *peer = NULL;
    bool flag = false;
    EXPECT_STATUS(peerlb_session_id(NULL, &id), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_session_peer(NULL, &peer), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_session_ok(NULL), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_session_failover(NULL, "x", NULL, NULL, NULL), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_session_decline(NULL, "x", NULL), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_session_failover_requested(NULL, &flag), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_session_state(NULL, &flag, &flag), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_session_close(NULL), PEERLB_INVALID_ARGUMENT);

    OK(peerlb_session_open(list, NULL, &s));
    EXPECT_STATUS(peerlb_session_id(s, NULL), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_session_peer(s, NULL), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_session_failover_requested(s, NULL), PEERLB_INVALID_ARGUMENT);
    OK(peerlb_session_state(s, NULL, NULL));
    OK(peerlb_session_id(s, &id));
    EXPECT(id == 1, "first session id %llu", (unsigned long long)id);
    /* A reason that is not UTF-8 is shown with replacement characters, not refused. */
    int64_t code = 1006;
    EXPECT_STATUS(peerlb_session_failover(s, "\xff\xfe broken", &code, NULL, &peer), PEERLB_NO_PEER_AVAILABLE);
    EXPECT(strcmp(peerlb_last_error_peer(), "a:1") == 0, "failover error names the peer: %s", peerlb_last_error_peer());
    int64_t got_code = 0;
    EXPECT(peerlb_last_error_remote_code(&got_code) && got_code == 1006, "remote code %lld", (long long)got_code);
    EXPECT(peerlb_last_error_remote_code(NULL), "remote code without out");
    EXPECT(peer == NULL, "peer untouched on failure");
    bool open = false, bound = true;
    OK(peerlb_session_state(s, &open, &bound));
    EXPECT(open && !bound, "open and unbound after a failed failover");
    /* Failing over again binds it again (the peer it left is no longer excluded). */
    OK(peerlb_session_failover(s, NULL, NULL, NULL, &peer));
    EXPECT(peer && strcmp(peer, "a:1") == 0, "bound again");
    peerlb_string_free(peer);
    code = 401;
    EXPECT_STATUS(peerlb_session_decline(s, "unauthorized", &code), PEERLB_DECLINED);
    EXPECT(strstr(peerlb_last_error_message(), "unauthorized") != NULL, "message %s", peerlb_last_error_message());
    EXPECT(strcmp(peerlb_last_error_peer(), "a:1") == 0, "decline names the peer");
    EXPECT(peerlb_last_error_remote_code(&got_code) && got_code == 401, "decline's code");
    EXPECT_STATUS(peerlb_session_decline(s, NULL, NULL), PEERLB_ALREADY_FINISHED);
    EXPECT(!peerlb_last_error_remote_code(&got_code), "no code on already-finished");
    EXPECT(strcmp(peerlb_last_error_peer(), "") == 0, "no peer on already-finished");
    EXPECT_STATUS(peerlb_session_ok(s), PEERLB_ALREADY_FINISHED);
    EXPECT_STATUS(peerlb_session_failover(s, NULL, NULL, NULL, NULL), PEERLB_ALREADY_FINISHED);
    EXPECT_STATUS(peerlb_session_close(s), PEERLB_ALREADY_FINISHED); /* freed all the same */

    peerlb_peer_status ps;
    OK(peerlb_list_peer_status(list, LIT("a:1"), &ps));
    EXPECT(ps.pending == 0, "no pending left: %zu", ps.pending);

    /* Backend administrator: bad data is a failed answer, never a crash. */
    char *json = NULL;
    EXPECT_STATUS(peerlb_list_add_backend(NULL, LIT("{}"), &json), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_add_backend(list, NULL, 3, &json), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_add_backend(list, LIT("{\"id\":\"b:1\"}"), NULL), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_add_backend(list, LIT("\xff{"), &json), PEERLB_INVALID_ARGUMENT);
    EXPECT(json == NULL, "no answer for arguments that are not text");
    const char *bad[] = {"", "{", "null", "[]", "{\"id\":null}", "{\"id\":\"\"}", "{\"id\":\"x\",\"weight\":-1}",
                         "{\"id\":\"x\",\"weight\":1e30}", "{\"id\":\"x\",\"weight\":\"2\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        EXPECT_STATUS(peerlb_list_add_backend(list, bad[i], strlen(bad[i]), &json), PEERLB_INVALID_ARGUMENT);
        EXPECT(json && strstr(json, "\"code\":4") && strstr(json, "invalid-argument"), "answer %s", json);
        peerlb_string_free(json);
        json = NULL;
    }
    size_t n = 0;
    OK(peerlb_list_len(list, &n));
    EXPECT(n == 1, "list intact after bad backends");
    OK(peerlb_list_add_backend(list, LIT("{\"id\":\"b:1\",\"weight\":3}"), &json));
    EXPECT(json && strcmp(json, "{\"result\":\"success\",\"code\":1,\"id\":\"b:1\"}") == 0, "answer %s", json);
    peerlb_string_free(json);
    EXPECT_STATUS(peerlb_list_add_backend(list, LIT("{\"id\":\"b:1\"}"), &json), PEERLB_PEER_ALREADY_IN_LIST);
    EXPECT(json && strstr(json, "peer-already-in-list"), "answer %s", json);
    peerlb_string_free(json);
    json = NULL;
    EXPECT_STATUS(peerlb_list_backend_config(list, LIT("zz:1"), &json), PEERLB_PEER_NOT_IN_LIST);
    EXPECT_STATUS(peerlb_list_backend_config(list, NULL, 0, &json), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_backend_config(list, LIT("b:1"), NULL), PEERLB_INVALID_ARGUMENT);
    OK(peerlb_list_backend_config(list, LIT("b:1"), &json));
    EXPECT(json && strstr(json, "\"weight\":3") && strstr(json, "\"sessions\":0"), "config %s", json);
    peerlb_string_free(json);

    /* Queries. */
    EXPECT_STATUS(peerlb_list_available(NULL, LIT("a:1"), &flag), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_available(list, LIT("a:1"), NULL), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_uninitialized(list, LIT("\xff"), &flag), PEERLB_INVALID_ARGUMENT);
    OK(peerlb_list_available(list, LIT("b:1"), &flag));
    EXPECT(flag, "b available");
    OK(peerlb_list_available(list, LIT("nope"), &flag));
    EXPECT(!flag, "unknown id is not available");
    EXPECT_STATUS(peerlb_list_counts(NULL, NULL, NULL, NULL), PEERLB_INVALID_ARGUMENT);
    size_t av = 9, un = 9, ui = 9;
    OK(peerlb_list_counts(list, &av, &un, &ui));
    EXPECT(av == 2 && un == 0 && ui == 0, "counts %zu %zu %zu", av, un, ui);
    OK(peerlb_list_counts(list, NULL, NULL, NULL));
    EXPECT_STATUS(peerlb_list_peers(list, NULL), PEERLB_INVALID_ARGUMENT);
    OK(peerlb_list_peers(list, &json));
    EXPECT(json && strcmp(json, "[\"a:1\",\"b:1\"]") == 0, "peers %s", json);
    peerlb_string_free(json);
    size_t capacity = 0;
    OK(peerlb_list_capacity(list, &capacity));
    EXPECT(capacity == 10, "yarpc's default capacity: %zu", capacity);
    EXPECT(strcmp(peerlb_session_event_kind_str(PEERLB_SESSION_EVENT_FAILOVER_REQUESTED), "failover-requested") == 0,
           "kind name");
    EXPECT(strcmp(peerlb_session_event_kind_str(99), "unknown") == 0, "unknown kind");

    /* Retry attempts with codes. */
    peerlb_retry *retry = NULL;
    peerlb_choice c;
    OK(peerlb_retry_new(2, -1, NULL, &retry));
    OK(peerlb_retry_choose(retry, list, NULL, &c));
    EXPECT_STATUS(peerlb_retry_failed_with_code(retry, NULL, "x", 1, -1), PEERLB_INVALID_ARGUMENT);
    OK(peerlb_retry_failed_with_code(retry, &c, "e1", 503, -1));
    EXPECT_STATUS(peerlb_retry_failed_with_code(retry, &c, "again", 503, -1), PEERLB_ALREADY_FINISHED);
    OK(peerlb_retry_choose(retry, list, NULL, &c));
    EXPECT_STATUS(peerlb_retry_declined_with_code(retry, &c, "no", 429, -1), PEERLB_DECLINED);
    EXPECT(peerlb_last_error_remote_code(&got_code) && got_code == 429, "declined code");
    peerlb_retry_free(retry);
    peerlb_list_free(list);
}

/* ---- the session listener ---- */

typedef struct {
    peerlb_list *list;
    peerlb_subscription *sub;
    char log[64][64];
    int n;
    int reentered;
    int free_self;
} ses_log;

static void record(const peerlb_session_event *e, void *u) {
    ses_log *l = u;
    if (l->n < 64)
        snprintf(l->log[l->n++], 64, "%s %llu %.*s %s", peerlb_session_event_kind_str(e->kind),
                 (unsigned long long)e->session, (int)e->peer_len, e->peer, e->reason);
    /* Re-entrant: the list's lock is not held while a listener runs. */
    char *json = NULL;
    if (peerlb_list_backend_config(l->list, e->peer, e->peer_len, &json) == PEERLB_OK) l->reentered++;
    peerlb_string_free(json);
    if (l->free_self) {
        peerlb_subscription_free(l->sub);
        l->sub = NULL;
        l->free_self = 0;
    }
}

static void test_listener(void) {
    const char *ids[] = {"a:1", "b:1"};
    peerlb_list *list = make_list(ids, 2);
    ses_log l = {.list = list};
    EXPECT_STATUS(peerlb_list_subscribe_sessions(NULL, record, &l, &l.sub), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_subscribe_sessions(list, NULL, &l, &l.sub), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_subscribe_sessions(list, record, &l, NULL), PEERLB_INVALID_ARGUMENT);
    OK(peerlb_list_subscribe_sessions(list, record, &l, &l.sub));
    peerlb_session *s = NULL;
    OK(peerlb_session_open(list, NULL, &s));
    EXPECT(peer_is(s, "a:1"), "opened on a");
    char *peer = NULL;
    OK(peerlb_session_failover(s, "reset", NULL, NULL, &peer));
    EXPECT(peer && strcmp(peer, "b:1") == 0, "moved to b");
    peerlb_string_free(peer);
    peerlb_admin_result res = 0;
    OK(peerlb_list_failover(list, LIT("b:1"), &res));
    EXPECT(res == PEERLB_RESULT_SUCCESS, "asked to move");
    bool requested = false;
    OK(peerlb_session_failover_requested(s, &requested));
    EXPECT(requested, "flag set");
    OK(peerlb_list_failover(list, LIT("b:1"), &res));
    EXPECT(res == PEERLB_RESULT_NO_ACTION_REQUIRED, "asked already");
    l.free_self = 1; /* the next event frees its own subscription from inside the callback */
    OK(peerlb_session_close(s));
    EXPECT(l.sub == NULL, "freed from inside");
    const char *want[] = {"created 1 a:1 opened", "terminated 1 a:1 reset", "created 1 b:1 failover",
                          "failover-requested 1 b:1 failover requested by admin", "terminated 1 b:1 closed"};
    EXPECT(l.n == 5, "%d events", l.n);
    for (int i = 0; i < 5 && i < l.n; i++) EXPECT(strcmp(l.log[i], want[i]) == 0, "event %d: %s", i, l.log[i]);
    EXPECT(l.reentered == l.n, "every callback re-entered the list");
    /* No more events after the subscription freed itself. */
    OK(peerlb_session_open(list, NULL, &s));
    OK(peerlb_session_close(s));
    EXPECT(l.n == 5, "no events after free: %d", l.n);
    peerlb_list_free(list);
}

/* ---- threads ---- */

typedef struct {
    peerlb_list *list;
    int failures;
} worker_arg;

static void *session_worker(void *p) {
    worker_arg *w = p;
    peerlb_request req = {5000, NULL, 0};
    for (int i = 0; i < 300; i++) {
        peerlb_session *s = NULL;
        if (peerlb_session_open(w->list, &req, &s) != PEERLB_OK) {
            w->failures++;
            continue;
        }
        bool requested = false;
        peerlb_session_failover_requested(s, &requested);
        if (requested || i % 3 == 0) {
            if (peerlb_session_failover(s, "churn", NULL, &req, NULL) != PEERLB_OK) w->failures++;
        }
        if (i % 5 == 0) peerlb_session_ok(s);
        if (peerlb_session_close(s) != PEERLB_OK) w->failures++;
    }
    return NULL;
}

static void *admin_worker(void *p) {
    worker_arg *w = p;
    const char *ids[] = {"a:1", "b:1", "c:1"};
    for (int i = 0; i < 300; i++) {
        peerlb_admin_result res;
        peerlb_list_failover(w->list, ids[i % 3], 3, &res);
        char *json = NULL;
        if (peerlb_list_backend_config(w->list, ids[i % 3], strlen(ids[i % 3]), &json) == PEERLB_OK)
            peerlb_string_free(json);
    }
    return NULL;
}

static void test_threads(void) {
    const char *ids[] = {"a:1", "b:1", "c:1"};
    peerlb_list *list = make_list(ids, 3);
    worker_arg args[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (worker_arg){list, 0};
        pthread_create(&th[i], NULL, i == 3 ? admin_worker : session_worker, &args[i]);
    }
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 3; i++) EXPECT(args[i].failures == 0, "worker %d: %d failures", i, args[i].failures);
    char *json = NULL;
    OK(peerlb_list_introspect(list, &json));
    /* The list's own count comes before the peers' (the first "sessions" key). */
    const char *open_sessions = json ? strstr(json, "\"sessions\":") : NULL;
    EXPECT(open_sessions && strncmp(open_sessions, "\"sessions\":0,", 13) == 0,
           "no session left open: %s", json);
    peerlb_string_free(json);
    for (int i = 0; i < 3; i++) {
        peerlb_peer_status ps;
        OK(peerlb_list_peer_status(list, ids[i], 3, &ps));
        EXPECT(ps.pending == 0, "%s pending %zu", ids[i], ps.pending);
    }
    peerlb_list_free(list);
}

/* A session keeps its list alive: freeing the list handle first is allowed. */
static void test_session_outlives_list_handle(void) {
    const char *ids[] = {"a:1", "b:1"};
    peerlb_list *list = make_list(ids, 2);
    peerlb_session *s = NULL;
    OK(peerlb_session_open(list, NULL, &s));
    peerlb_list_free(list);
    char *peer = NULL;
    OK(peerlb_session_failover(s, "after free", NULL, NULL, &peer));
    EXPECT(peer && strcmp(peer, "b:1") == 0, "failover after the list handle is freed");
    peerlb_string_free(peer);
    OK(peerlb_session_close(s));
}

int main(void) {
    test_bad_input();
    test_listener();
    test_threads();
    test_session_outlives_list_handle();
    return t_summary("sessions");
}
