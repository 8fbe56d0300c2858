/* peerlb inside libcurl: every request goes to the peer peerlb chooses, through
 * CURLOPT_CONNECT_TO (the URL, its Host header and its TLS name stay the service's), and
 * the request rule of the C API decides the outcome and whether to retry elsewhere.
 *
 *     CURL *h = curl_easy_init();
 *     long status;
 *     CURLcode rc = balanced_perform(h, list, rule, "GET", "http://service.test:8080/", &status);
 *
 * balanced_perform(), in libcurl_balanced.h beside this file, is the whole integration
 * (about 60 lines): choose a peer, point CURLOPT_CONNECT_TO at it, perform, report what
 * happened (status, or the CURLcode mapped to connect-failed / reset / timed-out /
 * failed), and perform again on another peer while the report says retry.
 *
 * Run without arguments, it checks the integration against four real HTTP servers it
 * forks on 127.0.0.1 (exit status 0 when every check passed):
 *   1. 400 GETs, one server killed (SIGKILL) halfway: 0 errors seen, the dead one ejected;
 *   2. the Host header is the URL's, not the peer's address;
 *   3. a POST answered 503 is not retried (the caller gets the 503);
 *   4. the retry budget stops a retry storm when every server fails;
 *   5. timeouts are honoured: a server that never answers costs CURLOPT_TIMEOUT_MS per
 *      attempt, and the rule's timeout bounds the whole request.
 *
 * Build: cc -std=c99 libcurl.c $(pkg-config --cflags --libs peerlb libcurl) -lpthread
 * Run:   ./libcurl [--requests N] */
#define _POSIX_C_SOURCE 200809L
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#endif
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <peerlb.h>

/* ---- the integration: balanced_perform(), in libcurl_balanced.h ---- */

#include "libcurl_balanced.h"

/* ---- four HTTP/1.1 servers (forked; keep-alive, a thread per connection) ---- */

#define SERVERS 4
#define MAX_REQUESTS 100000

/* Requests served, per server, in memory shared with the children. */
static volatile long *served;

struct conn {
    int fd;
    int index;
};

static void *serve_connection(void *arg) {
    struct conn conn = *(struct conn *)arg;
    free(arg);
    char buf[8192];
    size_t got = 0;
    for (;;) {
        char *end;
        while (!(end = strstr(buf, "\r\n\r\n"))) {
            if (got >= sizeof buf - 1) goto done;
            ssize_t n = read(conn.fd, buf + got, sizeof buf - 1 - got);
            if (n <= 0) goto done;
            got += (size_t)n;
            buf[got] = '\0';
        }
        size_t head = (size_t)(end - buf) + 4;
        long body_len = 0;
        const char *cl = strstr(buf, "Content-Length: ");
        if (cl && cl < end) body_len = strtol(cl + 16, NULL, 10);
        while (got < head + (size_t)body_len) { /* the request body, read and dropped */
            ssize_t n = read(conn.fd, buf + got, sizeof buf - 1 - got);
            if (n <= 0) goto done;
            got += (size_t)n;
        }
        __sync_fetch_and_add(&served[conn.index], 1);
        char host[256] = "";
        const char *h = strstr(buf, "\r\nHost: ");
        if (h && h < end) sscanf(h + 8, "%255[^\r]", host);
        int code = 200;
        if (strncmp(buf, "GET /fail ", 10) == 0 || strncmp(buf, "POST /fail ", 11) == 0) code = 503;
        if (strncmp(buf, "GET /hang ", 10) == 0) sleep(30);
        char body[400], resp[600];
        int blen = snprintf(body, sizeof body, "server=%d host=%s\n", conn.index, host);
        int rlen = snprintf(resp, sizeof resp, "HTTP/1.1 %d %s\r\nContent-Length: %d\r\n\r\n%s", code,
                            code == 200 ? "OK" : "Service Unavailable", blen, body);
        if (write(conn.fd, resp, (size_t)rlen) != rlen) goto done;
        memmove(buf, buf + head + (size_t)body_len, got - head - (size_t)body_len);
        got -= head + (size_t)body_len;
        buf[got] = '\0';
    }
done:
    close(conn.fd);
    return NULL;
}

static pid_t start_server(int index, int *port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 64) != 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &len) != 0) {
        perror("server socket");
        exit(2);
    }
    *port = ntohs(addr.sin_port);
    pid_t pid = fork();
    if (pid == 0) {
        for (;;) {
            struct conn *conn = malloc(sizeof *conn);
            if (!conn) _exit(3);
            conn->index = index;
            conn->fd = accept(fd, NULL, NULL);
            if (conn->fd < 0) {
                free(conn);
                continue;
            }
            pthread_t t;
            if (pthread_create(&t, NULL, serve_connection, conn) != 0) _exit(3);
            pthread_detach(t);
        }
    }
    close(fd);
    return pid;
}

/* ---- the checks ---- */

static int failed_checks = 0;

static void check(int ok, const char *what) {
    printf("%s: %s\n", ok ? "ok" : "FAIL", what);
    if (!ok) failed_checks++;
}

static size_t keep_body(char *data, size_t size, size_t n, void *out) {
    char *body = out;
    size_t have = strlen(body), add = size * n;
    if (have + add < 512) {
        memcpy(body + have, data, add);
        body[have + add] = '\0';
    }
    return size * n;
}

static long total_served(void) {
    long n = 0;
    for (int i = 0; i < SERVERS; i++) n += served[i];
    return n;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static peerlb_list *new_list(const int *ports, int n) {
    peerlb_list_options *opts;
    peerlb_list *list;
    peerlb_list_options_new(&opts);
    peerlb_list_options_set_strategy(opts, "round-robin");
    peerlb_list_options_set_shuffle(opts, false);
    if (peerlb_list_new(opts, NULL, &list) != PEERLB_OK) {
        fprintf(stderr, "list: %s\n", peerlb_last_error_message());
        exit(2);
    }
    peerlb_list_options_free(opts);
    char ids[SERVERS][32];
    peerlb_peer_spec specs[SERVERS];
    for (int i = 0; i < n; i++) {
        int len = snprintf(ids[i], sizeof ids[i], "127.0.0.1:%d", ports[i]);
        specs[i].id = ids[i];
        specs[i].id_len = (size_t)len;
        specs[i].weight = 1;
    }
    peerlb_list_update(list, specs, (size_t)n, NULL, 0);
    peerlb_list_start(list);
    return list;
}

static peerlb_request_rule *new_rule(const char *spec, const peerlb_retry_budget *budget) {
    peerlb_request_rule *rule;
    if (peerlb_request_rule_new(spec, budget, &rule) != PEERLB_OK) {
        fprintf(stderr, "rule: %s\n", peerlb_last_error_message());
        exit(2);
    }
    return rule;
}

int main(int argc, char **argv) {
    int requests = 400;
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--requests") == 0) requests = atoi(argv[++i]);
    served = mmap(NULL, sizeof(long) * SERVERS, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (served == MAP_FAILED) return 2;
    int ports[SERVERS];
    pid_t pids[SERVERS];
    for (int i = 0; i < SERVERS; i++) pids[i] = start_server(i, &ports[i]);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL *h = curl_easy_init();
    char body[512];
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, keep_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, body);
    long status;

    /* 1. GETs, one server killed halfway. */
    peerlb_list *list = new_list(ports, SERVERS);
    peerlb_request_rule *rule = new_rule(NULL, NULL);
    curl_easy_setopt(h, CURLOPT_URL, "http://service.test:8080/");
    int errors = 0, wrong_host = 0;
    const int dead = 2;
    for (int i = 0; i < requests; i++) {
        if (i == requests / 2) {
            kill(pids[dead], SIGKILL);
            waitpid(pids[dead], NULL, 0);
            pids[dead] = 0;
            printf("killed server %d (127.0.0.1:%d) after %d requests\n", dead, ports[dead], i);
        }
        body[0] = '\0';
        CURLcode rc = balanced_perform(h, list, rule, "GET", true, 5000, &status);
        if (rc != CURLE_OK || status != 200) {
            errors++;
            fprintf(stderr, "request %d: %s, status %ld (%s)\n", i, curl_easy_strerror(rc), status,
                    peerlb_last_error_message());
        } else if (!strstr(body, "host=service.test:8080\n")) {
            wrong_host++;
        }
    }
    printf("%d GETs: %d errors; served per server:", requests, errors);
    for (int i = 0; i < SERVERS; i++) printf(" %ld", served[i]);
    printf("\n");
    check(errors == 0, "every GET succeeded although a server was killed halfway");
    char *backends;
    peerlb_list_backends(list, &backends);
    char needle[64];
    snprintf(needle, sizeof needle, "\"id\":\"127.0.0.1:%d\"", ports[dead]);
    const char *entry = strstr(backends, needle);
    const char *end = entry ? strchr(entry, '}') : NULL;
    const char *ejected = entry ? strstr(entry, "\"ejected\":true") : NULL;
    check(ejected && ejected < end, "the killed server is ejected");
    peerlb_string_free(backends);

    /* 2. Host. */
    check(wrong_host == 0, "every server saw Host: service.test:8080 (the URL's), not its own address");
    int live[SERVERS - 1], n_live = 0;
    for (int i = 0; i < SERVERS; i++)
        if (i != dead) live[n_live++] = ports[i];
    peerlb_list_free(list);

    /* 3. A POST answered 503: not retried. */
    list = new_list(live, n_live);
    curl_easy_setopt(h, CURLOPT_URL, "http://service.test:8080/fail");
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, "order=1");
    long before = total_served();
    CURLcode rc = balanced_perform(h, list, rule, "POST", true, 5000, &status);
    check(rc == CURLE_OK && status == 503 && total_served() - before == 1,
          "a POST answered 503 reached one server once, and the caller got the 503");
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    before = total_served();
    rc = balanced_perform(h, list, rule, "GET", true, 5000, &status);
    check(rc == CURLE_OK && status == 503 && total_served() - before == 3,
          "a GET answered 503 was tried on 3 servers (max_attempts 3), the caller got the last 503");
    peerlb_list_free(list);

    /* 4. The budget: 10% retries (no minimum rate) for 100 failing GETs. */
    list = new_list(live, n_live);
    peerlb_retry_budget *budget;
    peerlb_retry_budget_new(0.1, 0, -1, NULL, &budget);
    peerlb_request_rule *budgeted = new_rule("max_attempts=3", budget);
    before = total_served();
    for (int i = 0; i < 100; i++) balanced_perform(h, list, budgeted, "GET", true, 5000, &status);
    long attempts = total_served() - before;
    printf("100 failing GETs under a 10%% budget: %ld attempts (300 without it)\n", attempts);
    check(attempts <= 110, "the budget held retries to 10% of the requests");
    peerlb_request_rule_free(budgeted);
    peerlb_retry_budget_free(budget);
    peerlb_list_free(list);

    /* 5. Timeouts: /hang never answers in time. */
    list = new_list(live, n_live);
    curl_easy_setopt(h, CURLOPT_URL, "http://service.test:8080/hang");
    double t0 = now_s();
    rc = balanced_perform(h, list, rule, "GET", true, 200, &status);
    double took = now_s() - t0;
    printf("GET /hang with a 200 ms attempt timeout, 3 attempts: %s after %.2f s\n", curl_easy_strerror(rc), took);
    check(rc == CURLE_OPERATION_TIMEDOUT && took < 5.0, "each attempt ended at CURLOPT_TIMEOUT_MS");
    peerlb_request_rule *bounded = new_rule("timeout_ms=300", NULL);
    t0 = now_s();
    rc = balanced_perform(h, list, bounded, "GET", true, 0, &status);
    took = now_s() - t0;
    printf("GET /hang under a rule timeout of 300 ms: %s after %.2f s\n", curl_easy_strerror(rc), took);
    check(rc == CURLE_OPERATION_TIMEDOUT && took < 5.0, "the rule's timeout bounded the whole request");
    peerlb_request_rule_free(bounded);
    peerlb_list_free(list);

    peerlb_request_rule_free(rule);
    curl_easy_cleanup(h);
    curl_global_cleanup();
    for (int i = 0; i < SERVERS; i++)
        if (pids[i]) {
            kill(pids[i], SIGKILL);
            waitpid(pids[i], NULL, 0);
        }
    printf("libcurl: %d passed, %d failed\n", 8 - failed_checks, failed_checks);
    return failed_checks == 0 ? 0 : 1;
}
