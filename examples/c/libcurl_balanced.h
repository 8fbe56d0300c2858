/* The libcurl integration of examples/c/libcurl.c: balanced_perform() sends the request set
 * up on a CURL handle to the peer a peerlb list chooses (CURLOPT_CONNECT_TO), reports the
 * attempt to the request rule, and sends it again elsewhere while the rule says retry.
 * Shared by the example (which checks it against real servers) and
 * examples/c/libcurl_bench.c (which measures its cost per request), so both run the same
 * code. Include it after <curl/curl.h> and <peerlb.h>. */
#ifndef PEERLB_EXAMPLE_LIBCURL_BALANCED_H
#define PEERLB_EXAMPLE_LIBCURL_BALANCED_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <curl/curl.h>
#include <peerlb.h>

/* What the rule should know of a failed transfer. A transfer that never connected failed
 * to connect (nothing was sent: any method may go elsewhere). */
static peerlb_attempt_result attempt_result_of(CURL *h, CURLcode rc) {
    curl_off_t connected = 0;
    curl_easy_getinfo(h, CURLINFO_CONNECT_TIME_T, &connected);
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
        return PEERLB_ATTEMPT_CONNECT_FAILED;
    case CURLE_OPERATION_TIMEDOUT:
        return connected == 0 ? PEERLB_ATTEMPT_CONNECT_FAILED : PEERLB_ATTEMPT_TIMED_OUT;
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
        return PEERLB_ATTEMPT_RESET;
    default:
        return PEERLB_ATTEMPT_FAILED;
    }
}

/* Performs the request set up on `h` (URL, method, body, write callback) on the peer the
 * list chooses, retrying per `rule`. Returns the last attempt's CURLcode, with its status
 * in *status; CURLE_COULDNT_CONNECT when no peer could be chosen (the reason is in
 * peerlb_last_error_message()). `attempt_timeout_ms` (0: none) is capped by what is left
 * of the rule's timeout. */
static CURLcode balanced_perform(CURL *h, const peerlb_list *list, const peerlb_request_rule *rule,
                                 const char *method, bool body_replayable, long attempt_timeout_ms,
                                 long *status) {
    peerlb_request_call *call;
    if (peerlb_request_call_new(rule, method, body_replayable, -1, &call) != PEERLB_OK)
        return CURLE_FAILED_INIT;
    CURLcode rc = CURLE_COULDNT_CONNECT;
    *status = 0;
    peerlb_choice c;
    peerlb_status st = peerlb_request_call_choose(call, list, NULL, &c);
    while (st == PEERLB_OK) {
        /* "::host:port": connect every URL host and port to the chosen peer. */
        char target[1100];
        snprintf(target, sizeof target, "::%.*s", (int)c.peer_len, c.peer);
        struct curl_slist *connect_to = curl_slist_append(NULL, target);
        curl_easy_setopt(h, CURLOPT_CONNECT_TO, connect_to);
        int64_t remaining = -1;
        peerlb_request_call_remaining_ms(call, &remaining);
        long timeout = attempt_timeout_ms;
        if (remaining >= 0 && (timeout == 0 || remaining < timeout)) timeout = remaining > 0 ? (long)remaining : 1;
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout);
        rc = curl_easy_perform(h);
        curl_easy_setopt(h, CURLOPT_CONNECT_TO, NULL);
        curl_slist_free_all(connect_to);
        *status = 0;
        peerlb_attempt_result result = PEERLB_ATTEMPT_STATUS;
        if (rc == CURLE_OK)
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
        else
            result = attempt_result_of(h, rc);
        peerlb_request_report report;
        if (peerlb_request_call_report(call, &c, result, (uint32_t)*status, PEERLB_OUTCOME_UNCLASSIFIED,
                                       &report) != PEERLB_OK) {
            fprintf(stderr, "report: %s\n", peerlb_last_error_message());
            peerlb_choice_finish(&c, PEERLB_OUTCOME_CANCELLED, -1);
            break;
        }
        if (!report.retry) break;
        st = peerlb_request_call_choose(call, list, NULL, &c);
    }
    peerlb_request_call_free(call);
    return rc;
}

#endif
