/* Outlier ejection, events and retry against real sockets: four TCP listeners on
 * 127.0.0.1, the always-available transport (no probe), and requests that are real TCP
 * connects. One listener is closed mid-run: the connects to it fail, the test reports
 * PEERLB_OUTCOME_FAILURE, and after 5 failures in a row the list ejects it (no request
 * reaches it any more); after the ejection time it is restored (manual clock, then the
 * real clock), and once it listens again it takes requests again. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "netutil.h"
#include "testutil.h"

#define N 4

typedef struct {
    int fd[N]; /* -1 when closed */
    int port[N];
    char id[N][32];
} servers;

static void start_servers(servers *s) {
    for (int i = 0; i < N; i++) {
        s->fd[i] = listen_on(0, s->id[i], sizeof s->id[i]);
        s->port[i] = atoi(strchr(s->id[i], ':') + 1);
    }
}

static void stop_servers(servers *s) {
    for (int i = 0; i < N; i++)
        if (s->fd[i] >= 0) close(s->fd[i]);
}

static int index_of(const servers *s, const char *peer, size_t len) {
    for (int i = 0; i < N; i++)
        if (strlen(s->id[i]) == len && memcmp(s->id[i], peer, len) == 0) return i;
    return -1;
}

/* The "request": a TCP connect to server i (accepted and closed on success). */
static bool request(servers *s, int i) {
    int c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((unsigned short)s->port[i]);
    bool ok = connect(c, (struct sockaddr *)&a, sizeof a) == 0;
    close(c);
    if (ok && s->fd[i] >= 0) {
        int got = accept(s->fd[i], NULL, NULL);
        if (got >= 0) close(got);
    }
    return ok;
}

/* Events of one kind for one peer, counted under a lock (restorations on the real clock
 * come from a peerlb timer thread). */
typedef struct {
    pthread_mutex_t mu;
    const servers *s;
    int ejected[N], restored[N];
    double restored_at[N];
    char detail[256];
} events;

static void on_event(const peerlb_event *e, void *u) {
    events *ev = u;
    int i = index_of(ev->s, e->peer, e->peer_len);
    if (i < 0) return;
    pthread_mutex_lock(&ev->mu);
    if (e->kind == PEERLB_EVENT_EJECTED) {
        ev->ejected[i]++;
        snprintf(ev->detail, sizeof ev->detail, "%s", e->detail);
    } else if (e->kind == PEERLB_EVENT_RESTORED) {
        ev->restored[i]++;
        ev->restored_at[i] = t_now_s();
    }
    pthread_mutex_unlock(&ev->mu);
}

static int count_of(events *ev, int *arr, int i) {
    pthread_mutex_lock(&ev->mu);
    int n = arr[i];
    pthread_mutex_unlock(&ev->mu);
    return n;
}

static peerlb_list *make_list(servers *s, const char *ejection, peerlb_manual_clock *clock) {
    peerlb_list_options *opts;
    peerlb_list *list = NULL;
    OK(peerlb_list_options_new(&opts));
    OK(peerlb_list_options_set_shuffle(opts, false));
    OK(peerlb_list_options_set_ejection(opts, ejection));
    if (clock) OK(peerlb_list_options_set_manual_clock(opts, clock));
    OK(peerlb_list_new(opts, NULL, &list));
    peerlb_list_options_free(opts);
    peerlb_peer_spec specs[N];
    for (int i = 0; i < N; i++) {
        specs[i].id = s->id[i];
        specs[i].id_len = strlen(s->id[i]);
        specs[i].weight = 1;
    }
    OK(peerlb_list_update(list, specs, N, NULL, 0));
    OK(peerlb_list_start(list));
    return list;
}

/* `count` requests through choose/finish; adds each server's requests and failures. */
static void run_requests(peerlb_list *list, servers *s, int count, int *hits, int *failures) {
    peerlb_request req = {1000, NULL, 0};
    for (int n = 0; n < count; n++) {
        peerlb_choice c;
        peerlb_status st = peerlb_list_choose(list, &req, &c);
        if (st != PEERLB_OK) {
            EXPECT(st == PEERLB_OK, "choose failed: %s", peerlb_status_str(st));
            return;
        }
        int i = index_of(s, c.peer, c.peer_len);
        bool ok = i >= 0 && request(s, i);
        if (i >= 0) {
            hits[i]++;
            failures[i] += !ok;
        }
        OK(peerlb_choice_finish(&c, ok ? PEERLB_OUTCOME_OK : PEERLB_OUTCOME_FAILURE, -1));
    }
}

static void test_manual_clock(void) {
    servers s;
    start_servers(&s);
    peerlb_manual_clock *clock = NULL;
    OK(peerlb_manual_clock_new(&clock));
    peerlb_list *list = make_list(&s, "failures=5&base_ms=200&max_ms=200", clock);
    events ev;
    memset(&ev, 0, sizeof ev);
    pthread_mutex_init(&ev.mu, NULL);
    ev.s = &s;
    peerlb_subscription *sub = NULL;
    OK(peerlb_list_subscribe(list, on_event, &ev, &sub));

    int hits[N] = {0}, fails[N] = {0};
    run_requests(list, &s, 40, hits, fails);
    for (int i = 0; i < N; i++) EXPECT(hits[i] == 10 && fails[i] == 0, "warm-up: server %d %d/%d", i, hits[i], fails[i]);

    const int down = 1;
    close(s.fd[down]);
    s.fd[down] = -1;
    memset(hits, 0, sizeof hits);
    memset(fails, 0, sizeof fails);
    run_requests(list, &s, 120, hits, fails);
    EXPECT(hits[down] == 5 && fails[down] == 5, "the closed server got exactly its 5 failing requests (%d, %d failed)",
           hits[down], fails[down]);
    EXPECT(count_of(&ev, ev.ejected, down) == 1, "one ejected event (%d)", ev.ejected[down]);
    printf("ejected: %s\n", ev.detail);
    for (int i = 0; i < N; i++)
        if (i != down) EXPECT(fails[i] == 0 && hits[i] > 30, "server %d took the load: %d", i, hits[i]);

    /* It listens again, but stays out until its ejection time is over. */
    s.fd[down] = listen_on(s.port[down], s.id[down], sizeof s.id[down]);
    OK(peerlb_manual_clock_advance_ms(clock, 199));
    memset(hits, 0, sizeof hits);
    run_requests(list, &s, 20, hits, fails);
    EXPECT(hits[down] == 0 && count_of(&ev, ev.restored, down) == 0, "still ejected at 199 ms (%d)", hits[down]);
    OK(peerlb_manual_clock_advance_ms(clock, 1));
    EXPECT(count_of(&ev, ev.restored, down) == 1, "restored inside advance (%d)", ev.restored[down]);
    memset(hits, 0, sizeof hits);
    memset(fails, 0, sizeof fails);
    run_requests(list, &s, 40, hits, fails);
    EXPECT(hits[down] == 10 && fails[down] == 0, "back in rotation: %d requests, %d failed", hits[down], fails[down]);

    char *json = NULL;
    OK(peerlb_list_introspect(list, &json));
    EXPECT(strstr(json, "\"ejections\":1") != NULL && strstr(json, "\"ejected\":0") != NULL, "introspection: %s",
           json);
    peerlb_string_free(json);
    peerlb_subscription_free(sub);
    peerlb_list_free(list);
    peerlb_manual_clock_free(clock);
    pthread_mutex_destroy(&ev.mu);
    stop_servers(&s);
}

/* The real clock, and the retry loop of the header's docs: every call succeeds (a failed
 * connect is retried on another server), and the failed attempts eject the closed one. */
static void test_real_clock_with_retry(void) {
    servers s;
    start_servers(&s);
    peerlb_list *list = make_list(&s, "failures=5&base_ms=200&max_ms=200", NULL);
    events ev;
    memset(&ev, 0, sizeof ev);
    pthread_mutex_init(&ev.mu, NULL);
    ev.s = &s;
    peerlb_subscription *sub = NULL;
    OK(peerlb_list_subscribe(list, on_event, &ev, &sub));

    const int down = 2;
    close(s.fd[down]);
    s.fd[down] = -1;
    int hits[N] = {0}, failed_attempts = 0, calls_ok = 0;
    double failed_at[3 * 60]; /* when each failed report started (ejections happen inside) */
    peerlb_request req = {1000, NULL, 0};
    for (int n = 0; n < 60; n++) {
        peerlb_retry *retry = NULL;
        OK(peerlb_retry_new(3, 5000, NULL, &retry));
        for (;;) {
            peerlb_choice c;
            peerlb_status st = peerlb_retry_choose(retry, list, &req, &c);
            if (st != PEERLB_OK) {
                EXPECT(st == PEERLB_OK, "call %d gave up: %s", n, peerlb_last_error_message());
                break;
            }
            int i = index_of(&s, c.peer, c.peer_len);
            hits[i]++;
            if (request(&s, i)) {
                OK(peerlb_retry_succeeded(retry, &c, -1));
                calls_ok++;
                break;
            }
            if (failed_attempts < 3 * 60) failed_at[failed_attempts] = t_now_s();
            failed_attempts++;
            OK(peerlb_retry_failed(retry, &c, "connection refused", -1));
        }
        peerlb_retry_free(retry);
    }
    EXPECT(calls_ok == 60, "every call succeeded (%d)", calls_ok);
    /* The run may outlast the 200 ms ejection (slow machines, valgrind): then the closed
     * server is restored and ejected again after 5 more failures, never more (and the run
     * may end with up to 4 failures of a new streak). */
    int ejections = count_of(&ev, ev.ejected, down);
    EXPECT(ejections >= 1, "ejected (%d)", ejections);
    EXPECT(hits[down] == failed_attempts && failed_attempts >= 5 * ejections && failed_attempts < 5 * ejections + 5,
           "the closed server got 5 attempts per ejection (%d attempts, %d ejections)", hits[down], ejections);

    /* The restoration comes from a timer, no sooner than 200 ms after the ejection. The
     * last ejection happened inside the 5 * ejections-th failed report, so no earlier than
     * that call started (an event callback's own time may lag on a loaded machine). */
    double t0 = t_now_s();
    while (count_of(&ev, ev.restored, down) < ejections && t_now_s() - t0 < 10) t_sleep_ms(5);
    pthread_mutex_lock(&ev.mu);
    int restored = ev.restored[down];
    double restored_at = ev.restored_at[down];
    pthread_mutex_unlock(&ev.mu);
    int trigger = 5 * ejections - 1; /* the failed report inside which the last ejection happened */
    double after = trigger >= 0 && trigger < failed_attempts && trigger < 3 * 60 ? restored_at - failed_at[trigger] : 0;
    EXPECT(restored == ejections, "restored on the real clock (%d of %d)", restored, ejections);
    EXPECT(after >= 0.199, "restored %.0f ms after the ejection, not sooner than 200", after * 1000);
    printf("real clock: ejected after 5 failed attempts, restored %.0f ms later (base_ms=200)\n", after * 1000);

    s.fd[down] = listen_on(s.port[down], s.id[down], sizeof s.id[down]);
    memset(hits, 0, sizeof hits);
    int fails[N] = {0};
    run_requests(list, &s, 40, hits, fails);
    EXPECT(hits[down] == 10 && fails[down] == 0, "back in rotation: %d (%d failed)", hits[down], fails[down]);
    peerlb_list_free(list); /* the subscription after its list */
    peerlb_subscription_free(sub);
    pthread_mutex_destroy(&ev.mu);
    stop_servers(&s);
}

int main(void) {
    test_manual_clock();
    test_real_clock_with_retry();
    return t_summary("ejection");
}
