/* The request rule through the C API (no network: the attempts' results are given):
 * outcomes, retries on other peers, the POST rule, classifier overrides, the budget, the
 * overall timeout, and every kind of bad input (a clear status, never a crash, the choice
 * left to be finished). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peerlb.h"
#include "testutil.h"

#define LIT(s) s, sizeof(s) - 1

static peerlb_list *make_list(void) {
    peerlb_list_options *opts = NULL;
    peerlb_list *list = NULL;
    OK(peerlb_list_options_new(&opts));
    OK(peerlb_list_options_set_shuffle(opts, false));
    OK(peerlb_list_options_set_ejection(opts, "off"));
    OK(peerlb_list_new(opts, NULL, &list));
    peerlb_list_options_free(opts);
    peerlb_peer_spec peers[] = {{LIT("a:1"), 1}, {LIT("b:1"), 1}, {LIT("c:1"), 1}, {LIT("d:1"), 1}};
    OK(peerlb_list_update(list, peers, 4, NULL, 0));
    OK(peerlb_list_start(list));
    return list;
}

static int is_peer(const peerlb_choice *c, const char *id) {
    return c->peer_len == strlen(id) && memcmp(c->peer, id, c->peer_len) == 0;
}

static void test_get_retried_on_other_peers(peerlb_list *list) {
    peerlb_request_rule *rule = NULL;
    OK(peerlb_request_rule_new(NULL, NULL, &rule));
    peerlb_request_call *call = NULL;
    OK(peerlb_request_call_new(rule, "GET", true, -1, &call));
    peerlb_request_rule_free(rule); /* the call keeps it */
    const char *want[] = {"a:1", "b:1", "c:1"};
    peerlb_request_report r;
    for (int i = 0; i < 3; i++) {
        peerlb_choice c;
        OK(peerlb_request_call_choose(call, list, NULL, &c));
        EXPECT(is_peer(&c, want[i]), "attempt %d went to %.*s", i, (int)c.peer_len, c.peer);
        OK(peerlb_request_call_report(call, &c, PEERLB_ATTEMPT_STATUS, 503, PEERLB_OUTCOME_UNCLASSIFIED, &r));
        EXPECT(c.token == NULL, "the report finished the choice");
        EXPECT(r.outcome == PEERLB_OUTCOME_FAILURE && r.latency_us >= 0, "503 is a failure");
    }
    EXPECT(!r.retry && r.stopped == PEERLB_STOP_ATTEMPTS_EXHAUSTED, "three attempts, then stop");
    uint32_t attempts = 0;
    OK(peerlb_request_call_attempts(call, &attempts));
    EXPECT(attempts == 3, "attempts %u", attempts);
    peerlb_choice c;
    EXPECT_STATUS(peerlb_request_call_choose(call, list, NULL, &c), PEERLB_RETRY_EXHAUSTED);
    EXPECT(strstr(peerlb_last_error_message(), "HTTP 503; HTTP 503; HTTP 503"), "the message lists the attempts");
    int64_t remaining = 0;
    OK(peerlb_request_call_remaining_ms(call, &remaining));
    EXPECT(remaining == -1, "no timeout: %lld", (long long)remaining);
    peerlb_request_call_free(call);
}

static void test_post_and_classifier(peerlb_list *list) {
    peerlb_request_rule *rule = NULL;
    OK(peerlb_request_rule_new("failure_statuses=502-504", NULL, &rule));
    peerlb_request_report r;
    peerlb_choice c;

    peerlb_request_call *post = NULL;
    OK(peerlb_request_call_new(rule, "POST", true, -1, &post));
    OK(peerlb_request_call_choose(post, list, NULL, &c));
    OK(peerlb_request_call_report(post, &c, PEERLB_ATTEMPT_STATUS, 503, PEERLB_OUTCOME_UNCLASSIFIED, &r));
    EXPECT(!r.retry && r.stopped == PEERLB_STOP_NOT_RETRYABLE, "a POST answered 503 is not retried");
    peerlb_request_call_free(post);

    OK(peerlb_request_call_new(rule, "POST", true, -1, &post));
    OK(peerlb_request_call_choose(post, list, NULL, &c));
    OK(peerlb_request_call_report(post, &c, PEERLB_ATTEMPT_CONNECT_FAILED, 0, PEERLB_OUTCOME_UNCLASSIFIED, &r));
    EXPECT(r.retry, "a POST that never connected may go elsewhere");
    OK(peerlb_request_call_choose(post, list, NULL, &c));
    OK(peerlb_request_call_report(post, &c, PEERLB_ATTEMPT_STATUS, 201, PEERLB_OUTCOME_UNCLASSIFIED, &r));
    EXPECT(r.outcome == PEERLB_OUTCOME_OK && !r.retry && r.stopped == PEERLB_STOP_NONE, "201 is ok");
    peerlb_request_call_free(post);

    peerlb_request_call *opted = NULL;
    OK(peerlb_request_call_new(rule, "POST", true, 1, &opted));
    OK(peerlb_request_call_choose(opted, list, NULL, &c));
    OK(peerlb_request_call_report(opted, &c, PEERLB_ATTEMPT_RESET, 0, PEERLB_OUTCOME_UNCLASSIFIED, &r));
    EXPECT(r.retry, "an idempotent POST is retried after a reset");
    OK(peerlb_request_call_choose(opted, list, NULL, &c));
    OK(peerlb_request_call_report(opted, &c, PEERLB_ATTEMPT_STATUS, 500, PEERLB_OUTCOME_UNCLASSIFIED, &r));
    EXPECT(r.outcome == PEERLB_OUTCOME_OK, "500 is not in this rule's failure statuses");
    peerlb_request_call_free(opted);

    peerlb_request_call *get = NULL;
    OK(peerlb_request_call_new(rule, "GET", true, -1, &get));
    OK(peerlb_request_call_choose(get, list, NULL, &c));
    OK(peerlb_request_call_report(get, &c, PEERLB_ATTEMPT_STATUS, 429, PEERLB_OUTCOME_DECLINED, &r));
    EXPECT(r.outcome == PEERLB_OUTCOME_DECLINED && !r.retry, "the classifier declined a 429");
    peerlb_request_call_free(get);

    OK(peerlb_request_call_new(rule, "GET", false, -1, &get));
    OK(peerlb_request_call_choose(get, list, NULL, &c));
    OK(peerlb_request_call_report(get, &c, PEERLB_ATTEMPT_TIMED_OUT, 0, PEERLB_OUTCOME_UNCLASSIFIED, &r));
    EXPECT(!r.retry && r.stopped == PEERLB_STOP_NOT_RETRYABLE, "a body read once is never sent twice");
    peerlb_request_call_free(get);
    peerlb_request_rule_free(rule);
}

static void test_budget_and_timeout(peerlb_list *list) {
    peerlb_retry_budget *budget = NULL;
    OK(peerlb_retry_budget_new(0.0, 0, -1, NULL, &budget));
    peerlb_request_rule *rule = NULL;
    OK(peerlb_request_rule_new("max_attempts=5", budget, &rule));
    peerlb_retry_budget_free(budget);
    peerlb_request_call *call = NULL;
    OK(peerlb_request_call_new(rule, "GET", true, -1, &call));
    peerlb_choice c;
    peerlb_request_report r;
    OK(peerlb_request_call_choose(call, list, NULL, &c));
    OK(peerlb_request_call_report(call, &c, PEERLB_ATTEMPT_RESET, 0, PEERLB_OUTCOME_UNCLASSIFIED, &r));
    EXPECT(!r.retry && r.stopped == PEERLB_STOP_BUDGET_EXHAUSTED, "an empty budget refuses the retry");
    peerlb_request_call_free(call);
    peerlb_request_rule_free(rule);

    OK(peerlb_request_rule_new("timeout_ms=0&budget=off", NULL, &rule));
    OK(peerlb_request_call_new(rule, "GET", true, -1, &call));
    OK(peerlb_request_call_choose(call, list, NULL, &c));
    OK(peerlb_request_call_report(call, &c, PEERLB_ATTEMPT_TIMED_OUT, 0, PEERLB_OUTCOME_UNCLASSIFIED, &r));
    EXPECT(!r.retry && r.stopped == PEERLB_STOP_TIMED_OUT, "the overall timeout stops retries");
    int64_t remaining = -1;
    OK(peerlb_request_call_remaining_ms(call, &remaining));
    EXPECT(remaining == 0, "nothing left: %lld", (long long)remaining);
    peerlb_request_call_free(call);
    peerlb_request_rule_free(rule);
}

static void test_bad_input(peerlb_list *list) {
    peerlb_request_rule *rule = NULL;
    const char *bad_specs[] = {"max_attempts=0", "max_attempts=101", "timeout_ms=-1", "budget=maybe",
                               "failure_statuses=600", "failure_statuses=504-502", "retry_any_method=2",
                               "nope=1", "max_attempts", "max_attempts=1&max_attempts=2"};
    for (size_t i = 0; i < sizeof bad_specs / sizeof *bad_specs; i++) {
        EXPECT_STATUS(peerlb_request_rule_new(bad_specs[i], NULL, &rule), PEERLB_INVALID_ARGUMENT);
        EXPECT(strstr(peerlb_last_error_message(), "request rule"), "%s: %s", bad_specs[i],
               peerlb_last_error_message());
    }
    EXPECT(rule == NULL, "no rule written on failure");
    EXPECT_STATUS(peerlb_request_rule_new(NULL, NULL, NULL), PEERLB_INVALID_ARGUMENT);
    OK(peerlb_request_rule_new("default", NULL, &rule));

    peerlb_request_call *call = NULL;
    EXPECT_STATUS(peerlb_request_call_new(NULL, "GET", true, -1, &call), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_request_call_new(rule, NULL, true, -1, &call), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_request_call_new(rule, "", true, -1, &call), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_request_call_new(rule, "G\xff", true, -1, &call), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_request_call_new(rule, "GET", true, -1, NULL), PEERLB_INVALID_ARGUMENT);
    OK(peerlb_request_call_new(rule, "GET", true, -1, &call));

    peerlb_choice c;
    EXPECT_STATUS(peerlb_request_call_choose(NULL, list, NULL, &c), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_request_call_choose(call, NULL, NULL, &c), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_request_call_choose(call, list, NULL, NULL), PEERLB_INVALID_ARGUMENT);
    OK(peerlb_request_call_choose(call, list, NULL, &c));
    peerlb_request_report r;
    EXPECT_STATUS(peerlb_request_call_report(call, &c, 5, 0, -1, &r), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_request_call_report(call, &c, 0xFFFFFFFFu, 0, -1, &r), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_request_call_report(call, &c, PEERLB_ATTEMPT_STATUS, 0, -1, &r), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_request_call_report(call, &c, PEERLB_ATTEMPT_STATUS, 600, -1, &r), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_request_call_report(call, &c, PEERLB_ATTEMPT_STATUS, 70000, -1, &r),
                  PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_request_call_report(call, &c, PEERLB_ATTEMPT_STATUS, 200, 4, &r), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_request_call_report(call, &c, PEERLB_ATTEMPT_STATUS, 200, -1, NULL), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_request_call_report(NULL, &c, PEERLB_ATTEMPT_STATUS, 200, -1, &r), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_request_call_report(call, NULL, PEERLB_ATTEMPT_STATUS, 200, -1, &r), PEERLB_INVALID_ARGUMENT);
    EXPECT(c.token != NULL, "a refused report leaves the choice to be finished");
    OK(peerlb_request_call_report(call, &c, PEERLB_ATTEMPT_STATUS, 200, -1, &r));
    EXPECT_STATUS(peerlb_request_call_report(call, &c, PEERLB_ATTEMPT_STATUS, 200, -1, &r), PEERLB_ALREADY_FINISHED);
    EXPECT_STATUS(peerlb_choice_finish(&c, PEERLB_OUTCOME_OK, -1), PEERLB_ALREADY_FINISHED);
    EXPECT_STATUS(peerlb_request_call_attempts(NULL, NULL), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_request_call_remaining_ms(call, NULL), PEERLB_INVALID_ARGUMENT);
    peerlb_request_call_free(call);
    peerlb_request_call_free(NULL);
    peerlb_request_rule_free(NULL);

    /* A list that is not running: the list's own error. */
    peerlb_list_options *opts = NULL;
    peerlb_list *idle = NULL;
    OK(peerlb_list_options_new(&opts));
    OK(peerlb_list_new(opts, NULL, &idle));
    peerlb_list_options_free(opts);
    OK(peerlb_request_call_new(rule, "GET", true, -1, &call));
    EXPECT_STATUS(peerlb_request_call_choose(call, idle, NULL, &c), PEERLB_NOT_STARTED);
    peerlb_request_call_free(call);
    peerlb_list_free(idle);
    peerlb_request_rule_free(rule);
}

int main(void) {
    peerlb_list *list = make_list();
    test_get_retried_on_other_peers(list);
    test_post_and_classifier(list);
    test_budget_and_timeout(list);
    test_bad_input(list);
    char *json = NULL;
    OK(peerlb_list_introspect(list, &json));
    EXPECT(strstr(json, "\"pending\":1") == NULL, "no request left pending: %s", json);
    peerlb_string_free(json);
    peerlb_list_free(list);
    return t_summary("request_rule");
}
