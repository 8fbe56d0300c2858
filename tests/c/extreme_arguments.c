/* Every size, count, length, weight and duration the C API takes, at its extremes. None may
 * be trusted for an allocation or overflow a deadline: each must work or be
 * PEERLB_INVALID_ARGUMENT, never abort the process (a failed allocation aborts a Rust
 * program) and never come back as PEERLB_INTERNAL.
 *
 * Each case runs in a child process (fork, with an alarm against hangs), so a regression
 * that aborts fails its case and the other cases still run. The parent never calls into
 * peerlb, so it has no library threads when it forks. */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#define LIT(s) s, sizeof(s) - 1
#define BAD(call) EXPECT_STATUS(call, PEERLB_INVALID_ARGUMENT)

/* A length no array can have (more bytes than PTRDIFF_MAX), and the largest one that is
 * still possible for bytes. */
#define IMPOSSIBLE SIZE_MAX
#define HUGE_BYTES ((size_t)PTRDIFF_MAX + 1)

static peerlb_list *started_list(const char *strategy, size_t capacity, peerlb_status *created) {
    peerlb_list_options *opts = NULL;
    peerlb_list *list = NULL;
    OK(peerlb_list_options_new(&opts));
    OK(peerlb_list_options_set_shuffle(opts, false));
    if (strategy) OK(peerlb_list_options_set_strategy(opts, strategy));
    OK(peerlb_list_options_set_capacity(opts, capacity));
    *created = peerlb_list_new(opts, NULL, &list);
    peerlb_list_options_free(opts);
    if (*created == PEERLB_OK) OK(peerlb_list_start(list));
    return list;
}

/* Adds a:1 and b:1, chooses and finishes twice; the list must work normally. */
static void expect_working(peerlb_list *list) {
    peerlb_peer_spec peers[] = {{LIT("a:1"), 1}, {LIT("b:1"), 1}};
    OK(peerlb_list_update(list, peers, 2, NULL, 0));
    peerlb_request req = {1000, NULL, 0};
    for (int i = 0; i < 2; i++) {
        peerlb_choice c;
        OK(peerlb_list_choose(list, &req, &c));
        OK(peerlb_choice_finish(&c, PEERLB_OUTCOME_OK, -1));
    }
    size_t n = 0;
    OK(peerlb_list_len(list, &n));
    EXPECT(n == 2, "two peers (%zu)", n);
}

static void capacity_hints(void) {
    const size_t hints[] = {(size_t)1 << 40, SIZE_MAX, SIZE_MAX / 2, (size_t)1 << 20};
    for (size_t i = 0; i < sizeof hints / sizeof *hints; i++) {
        peerlb_status created;
        peerlb_list *list = started_list(NULL, hints[i], &created);
        EXPECT(created == PEERLB_OK, "capacity %zu: list_new returned %s", hints[i], peerlb_status_str(created));
        if (created == PEERLB_OK) expect_working(list);
        peerlb_list_free(list);
    }
}

static void array_lengths(void) {
    peerlb_status created;
    peerlb_list *list = started_list(NULL, 0, &created);
    peerlb_peer_spec two[] = {{LIT("a:1"), 1}, {LIT("b:1"), 1}};
    peerlb_peer_id ids[] = {{LIT("a:1")}};
    BAD(peerlb_list_update(list, two, IMPOSSIBLE, NULL, 0));
    BAD(peerlb_list_update(list, two, SIZE_MAX / sizeof(peerlb_peer_spec) + 1, NULL, 0));
    BAD(peerlb_list_update(list, NULL, 0, ids, IMPOSSIBLE));
    BAD(peerlb_list_update(list, NULL, 0, ids, SIZE_MAX / sizeof(peerlb_peer_id) + 1));
    peerlb_peer_spec huge_id[] = {{"x", IMPOSSIBLE, 1}, {"y", HUGE_BYTES, 1}};
    BAD(peerlb_list_update(list, huge_id, 1, NULL, 0));
    BAD(peerlb_list_update(list, huge_id + 1, 1, NULL, 0));
    peerlb_peer_id huge_rm[] = {{"x", HUGE_BYTES}};
    BAD(peerlb_list_update(list, NULL, 0, huge_rm, 1));
    peerlb_peer_status ps;
    BAD(peerlb_list_peer_status(list, "a:1", IMPOSSIBLE, &ps));
    peerlb_admin_result res;
    BAD(peerlb_list_disable(list, "a:1", HUGE_BYTES, &res));
    const uint8_t key = 7;
    peerlb_request huge_key = {100, &key, IMPOSSIBLE};
    peerlb_choice c;
    BAD(peerlb_list_choose(list, &huge_key, &c));
    huge_key.shard_key_len = HUGE_BYTES;
    BAD(peerlb_list_choose(list, &huge_key, &c));

    peerlb_updater *u = NULL;
    BAD(peerlb_updater_bind_static(list, two, IMPOSSIBLE, &u));
    peerlb_upstream_options o;
    OK(peerlb_upstream_options_default(&o));
    o.health_check_interval_ms = 0;
    peerlb_upstream *up = NULL;
    BAD(peerlb_upstream_new(ids, IMPOSSIBLE, &o, NULL, &up));
    BAD(peerlb_upstream_new(ids, SIZE_MAX / sizeof(peerlb_peer_id) + 1, &o, NULL, &up));
    EXPECT(u == NULL && up == NULL, "nothing made");
    OK(peerlb_upstream_new(ids, 1, &o, NULL, &up));
    BAD(peerlb_upstream_reconcile(up, ids, IMPOSSIBLE));
    BAD(peerlb_upstream_up(up, "a:1", HUGE_BYTES));
    peerlb_upstream_free(up);

    /* A capacity larger than the codes there are: only those are written. */
    peerlb_peer_id unknown[] = {{LIT("z:1")}, {LIT("z:2")}};
    EXPECT_STATUS(peerlb_list_update(list, NULL, 0, unknown, 2), PEERLB_PEER_NOT_IN_LIST);
    peerlb_status codes[4] = {PEERLB_OK, PEERLB_OK, PEERLB_OK, PEERLB_OK};
    EXPECT(peerlb_last_error_codes(codes, SIZE_MAX) == 2 && codes[2] == PEERLB_OK, "two codes written");
    expect_working(list); /* nothing above changed the list */
    peerlb_list_free(list);
}

static void weights(void) {
    const char *strategies[] = {"weighted-round-robin", "weighted-round-robin?slow_start_ms=1000", "round-robin"};
    for (size_t s = 0; s < sizeof strategies / sizeof *strategies; s++) {
        peerlb_status created;
        peerlb_list *list = started_list(strategies[s], 0, &created);
        peerlb_peer_spec peers[] = {{LIT("a:1"), UINT32_MAX}, {LIT("b:1"), UINT32_MAX - 1}, {LIT("c:1"), 1}};
        OK(peerlb_list_update(list, peers, 3, NULL, 0));
        peerlb_request req = {1000, NULL, 0};
        for (int i = 0; i < 10; i++) {
            peerlb_choice c;
            OK(peerlb_list_choose(list, &req, &c));
            OK(peerlb_choice_finish(&c, PEERLB_OUTCOME_OK, -1));
        }
        peerlb_list_free(list);
    }
}

static void durations(void) {
    peerlb_status created;
    peerlb_list *list = started_list("peak-ewma", 0, &created); /* it uses latencies */
    peerlb_peer_spec a[] = {{LIT("a:1"), 1}};
    OK(peerlb_list_update(list, a, 1, NULL, 0));
    peerlb_request forever = {INT64_MAX, NULL, 0};
    peerlb_choice c;
    OK(peerlb_list_choose(list, &forever, &c));
    OK(peerlb_choice_finish(&c, PEERLB_OUTCOME_OK, INT64_MAX)); /* latency in us */
    peerlb_request never = {INT64_MIN, NULL, 0};                  /* negative: no deadline */
    OK(peerlb_list_choose(list, &never, &c));
    OK(peerlb_choice_finish(&c, PEERLB_OUTCOME_FAILURE, INT64_MIN));
    OK(peerlb_list_choose(list, &forever, &c)); /* after a latency of INT64_MAX us */
    OK(peerlb_choice_finish(&c, PEERLB_OUTCOME_OK, 0));

    peerlb_retry *retry = NULL;
    OK(peerlb_retry_new(UINT32_MAX, INT64_MAX, NULL, &retry));
    OK(peerlb_retry_choose(retry, list, &forever, &c));
    OK(peerlb_retry_succeeded(retry, &c, INT64_MAX));
    peerlb_retry_free(retry);
    peerlb_retry_budget *budget = NULL;
    BAD(peerlb_retry_budget_new(1.0, INT64_MAX, 10000, NULL, &budget));
    BAD(peerlb_retry_budget_new(1.0, 10, INT64_MAX, NULL, &budget));
    BAD(peerlb_retry_budget_new(1e308, 10, 10000, NULL, &budget));
    EXPECT(budget == NULL, "no budget made");

    peerlb_manual_clock *clock = NULL;
    OK(peerlb_manual_clock_new(&clock));
    OK(peerlb_manual_clock_advance_ms(clock, UINT64_MAX));
    OK(peerlb_manual_clock_advance_ms(clock, UINT64_MAX)); /* saturates */
    uint64_t ms = 0;
    OK(peerlb_manual_clock_elapsed_ms(clock, &ms));
    EXPECT(ms > 0, "elapsed %llu", (unsigned long long)ms);
    peerlb_manual_clock_free(clock);

    peerlb_list_options *opts = NULL;
    OK(peerlb_list_options_new(&opts));
    BAD(peerlb_list_options_set_ejection(opts, "base_ms=18446744073709551615"));
    BAD(peerlb_list_options_set_ejection(opts, "failures=99999999999999999999"));
    BAD(peerlb_list_options_set_transport(opts, "tcp-probe?interval_ms=18446744073709551615"));
    BAD(peerlb_list_options_set_strategy(opts, "maglev?table=18446744073709551615"));
    BAD(peerlb_list_options_set_strategy(opts, "hash-ring?vnodes=4294967296"));
    BAD(peerlb_list_options_set_strategy(opts, "peak-ewma?decay_ms=18446744073709551616"));
    peerlb_list_options_free(opts);

    peerlb_upstream_options o;
    OK(peerlb_upstream_options_default(&o));
    peerlb_peer_id ids[] = {{LIT("127.0.0.1:1")}};
    peerlb_upstream *up = NULL;
    o.health_check_interval_ms = UINT64_MAX;
    BAD(peerlb_upstream_new(ids, 1, &o, NULL, &up));
    OK(peerlb_upstream_options_default(&o));
    o.health_check_timeout_ms = UINT64_MAX;
    BAD(peerlb_upstream_new(ids, 1, &o, NULL, &up));
    EXPECT(up == NULL, "no upstream made");

    /* Updaters with the longest intervals: made, started and stopped without waiting. */
    char path[] = "/tmp/peerlb-extreme-XXXXXX";
    int fd = mkstemp(path);
    const char *text = "a:1\nb:1 4294967295\n";
    EXPECT(fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text), "temp file");
    if (fd >= 0) close(fd);
    peerlb_updater *u = NULL;
    OK(peerlb_updater_bind_file(list, path, INT64_MAX, &u));
    OK(peerlb_updater_start(u));
    size_t n = 0;
    OK(peerlb_updater_len(u, &n));
    EXPECT(n == 2, "file read on start (%zu peers)", n);
    OK(peerlb_updater_stop(u));
    peerlb_updater_free(u);
    unlink(path);
    peerlb_dns_options dns;
    memset(&dns, 0, sizeof dns);
    dns.name = "peerlb.invalid.";
    dns.record = PEERLB_DNS_A;
    dns.port = 65535;
    dns.nameserver = "127.0.0.1:9";
    dns.min_interval_ms = INT64_MAX;
    dns.max_interval_ms = INT64_MAX;
    dns.timeout_ms = INT64_MAX;
    dns.empty_threshold = UINT32_MAX;
    u = NULL;
    peerlb_status st = peerlb_updater_bind_dns(list, &dns, &u);
    EXPECT(st == PEERLB_OK || st == PEERLB_INVALID_ARGUMENT, "bind_dns returned %s", peerlb_status_str(st));
    if (st == PEERLB_OK) {
        OK(peerlb_updater_start(u));
        OK(peerlb_updater_stop(u));
    }
    peerlb_updater_free(u);
    peerlb_list_free(list);
}

typedef struct {
    const char *name;
    void (*run)(void);
} test_case;

/* Runs one case in a child; the child's own checks print their failures. */
static void run_case(const test_case *tc) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        EXPECT(pid >= 0, "fork failed");
        return;
    }
    if (pid == 0) {
        alarm(120); /* a hang is a failure too (SIGALRM) */
        t_passed = t_failed = 0; /* the child counts its own checks */
        tc->run();
        printf("  %s: %d checks passed, %d failed\n", tc->name, t_passed, t_failed);
        exit(t_failed == 0 ? 0 : 1); /* exit, not _exit: leak checkers run at exit */
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid) {
        EXPECT(0, "%s: waitpid failed", tc->name);
        return;
    }
    if (WIFSIGNALED(status))
        EXPECT(0, "%s: the child was killed by signal %d (%s)", tc->name, WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        EXPECT(WEXITSTATUS(status) == 0, "%s: the child exited with %d (its failed checks are above)", tc->name,
               WEXITSTATUS(status));
}

int main(void) {
    const test_case cases[] = {
        {"capacity hints", capacity_hints},
        {"array and id lengths", array_lengths},
        {"weights", weights},
        {"durations", durations},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) run_case(&cases[i]);
    return t_summary("extreme_arguments");
}
