/* The libcurl integration's cost per request: plain libcurl against the same libcurl with
 * balanced_perform() (libcurl_balanced.h: the request rule of the C API, CURLOPT_CONNECT_TO),
 * against the same local keep-alive HTTP/1.1 servers, in the same run (the C row of
 * `make bench-integrations`; the Python and Node ones are
 * bindings/python/bench/bench_http_clients.py and bindings/node/bench/http_clients.js,
 * whose method this follows).
 *
 * Each request is a GET of a 2-byte body on a reused connection (curl_easy_perform on one
 * easy handle per variant). The servers are forked processes on 127.0.0.1, one per peer;
 * the balanced handle goes to http://svc.test/ over a round-robin list of both, and the
 * plain one alternates between their own URLs in the same order, so that both variants
 * make the same connections and wake the same processes. Rounds alternate the variants;
 * each variant's number is the median over rounds of the mean per request in a round, the
 * overhead the difference between the medians, and its ratio to plain libcurl.
 *
 * Two rows: wall time per request, and this process's CPU time per request (every thread:
 * libcurl's work, the integration's, peerlb's own threads), what the client itself spends.
 * `make bench-integrations` runs it on one CPU (taskset): unpinned, on a busy machine, the
 * wall time of a loopback round trip mostly measured how soon the scheduler ran the
 * server's thread, which stayed 3-8x slower for one variant or the other for a whole run.
 *
 * Build: cc -std=c99 libcurl_bench.c $(pkg-config --cflags --libs peerlb libcurl) -lpthread
 * Run:   ./libcurl_bench [--out target/bench/c-http.md] [--requests N] [--rounds R] */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <peerlb.h>

#include "libcurl_balanced.h"

#define SERVERS 2
#define MAX_ROUNDS 101

/* ---- the servers: HTTP/1.1, keep-alive, a thread per connection, "ok" to everything ---- */

static const char RESPONSE[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/* Answers the requests of one connection (GETs without bodies) until the client closes it. */
static void *serve_connection(void *arg) {
    int fd = *(int *)arg;
    free(arg);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char buf[8192];
    size_t got = 0;
    for (;;) {
        char *end;
        buf[got] = '\0';
        while ((end = strstr(buf, "\r\n\r\n")) != NULL) {
            size_t head = (size_t)(end - buf) + 4;
            if (write(fd, RESPONSE, sizeof RESPONSE - 1) != (ssize_t)(sizeof RESPONSE - 1)) goto done;
            memmove(buf, buf + head, got - head);
            got -= head;
            buf[got] = '\0';
        }
        if (got >= sizeof buf - 1) goto done;
        ssize_t n = read(fd, buf + got, sizeof buf - 1 - got);
        if (n <= 0) goto done;
        got += (size_t)n;
    }
done:
    close(fd);
    return NULL;
}

/* Forks a server on 127.0.0.1; its port in *port. */
static pid_t start_server(int *port) {
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
            int *conn = malloc(sizeof *conn);
            if (!conn) _exit(3);
            *conn = accept(fd, NULL, NULL);
            if (*conn < 0) {
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

/* ---- the clients ---- */

/* Counts the body's bytes (every response must be "ok"). */
static size_t count_body(char *data, size_t size, size_t n, void *out) {
    (void)data;
    *(size_t *)out += size * n;
    return size * n;
}

struct variant {
    CURL *h;
    size_t body_bytes;
    const peerlb_list *list; /* NULL: plain libcurl, to urls[0], urls[1], urls[0], ... */
    const peerlb_request_rule *rule;
    char urls[SERVERS][64];
    double us[MAX_ROUNDS];     /* wall time per request, per round */
    double cpu_us[MAX_ROUNDS]; /* this process's CPU time per request, per round */
};

static CURL *new_handle(size_t *body_bytes) {
    CURL *h = curl_easy_init();
    if (!h) exit(2);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, count_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, body_bytes);
    return h;
}

static double seconds(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sends n GETs one after the other; exits on any failure. When `round` is not negative,
 * records that round's wall and CPU time per request. */
static void run(struct variant *v, int n, int round) {
    double t0 = seconds(CLOCK_MONOTONIC), cpu0 = seconds(CLOCK_PROCESS_CPUTIME_ID);
    for (int i = 0; i < n; i++) {
        long status = 0;
        v->body_bytes = 0;
        CURLcode rc;
        if (v->list) {
            rc = balanced_perform(v->h, v->list, v->rule, "GET", true, 0, &status);
        } else {
            curl_easy_setopt(v->h, CURLOPT_URL, v->urls[i % SERVERS]);
            rc = curl_easy_perform(v->h);
            if (rc == CURLE_OK) curl_easy_getinfo(v->h, CURLINFO_RESPONSE_CODE, &status);
        }
        if (rc != CURLE_OK || status != 200 || v->body_bytes != 2) {
            fprintf(stderr, "request failed: %s, status %ld, %zu body bytes (%s)\n", curl_easy_strerror(rc),
                    status, v->body_bytes, v->list ? peerlb_last_error_message() : "plain");
            exit(1);
        }
    }
    if (round >= 0) {
        v->us[round] = (seconds(CLOCK_MONOTONIC) - t0) / n * 1e6;
        v->cpu_us[round] = (seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu0) / n * 1e6;
    }
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *xs, int n) {
    qsort(xs, (size_t)n, sizeof *xs, compare_doubles);
    return xs[n / 2];
}

int main(int argc, char **argv) {
    int requests = 2000, rounds = 7;
    const char *out = NULL;
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--requests") == 0) requests = atoi(argv[++i]);
        else if (strcmp(argv[i], "--rounds") == 0) rounds = atoi(argv[++i]);
        else if (strcmp(argv[i], "--out") == 0) out = argv[++i];
    }
    if (requests < 1 || rounds < 1 || rounds > MAX_ROUNDS) {
        fprintf(stderr, "usage: %s [--out FILE] [--requests N] [--rounds 1..%d]\n", argv[0], MAX_ROUNDS);
        return 2;
    }

    int ports[SERVERS];
    pid_t pids[SERVERS];
    for (int i = 0; i < SERVERS; i++) pids[i] = start_server(&ports[i]);

    peerlb_list_options *opts;
    peerlb_list *list;
    peerlb_list_options_new(&opts);
    peerlb_list_options_set_strategy(opts, "round-robin");
    peerlb_list_options_set_shuffle(opts, false);
    if (peerlb_list_new(opts, NULL, &list) != PEERLB_OK) {
        fprintf(stderr, "list: %s\n", peerlb_last_error_message());
        return 2;
    }
    peerlb_list_options_free(opts);
    char ids[SERVERS][32];
    peerlb_peer_spec specs[SERVERS];
    for (int i = 0; i < SERVERS; i++) {
        int len = snprintf(ids[i], sizeof ids[i], "127.0.0.1:%d", ports[i]);
        specs[i].id = ids[i];
        specs[i].id_len = (size_t)len;
        specs[i].weight = 1;
    }
    peerlb_list_update(list, specs, SERVERS, NULL, 0);
    peerlb_list_start(list);
    peerlb_request_rule *rule;
    if (peerlb_request_rule_new(NULL, NULL, &rule) != PEERLB_OK) {
        fprintf(stderr, "rule: %s\n", peerlb_last_error_message());
        return 2;
    }

    curl_global_init(CURL_GLOBAL_DEFAULT);
    static struct variant plain, balanced;
    plain.h = new_handle(&plain.body_bytes);
    for (int i = 0; i < SERVERS; i++)
        snprintf(plain.urls[i], sizeof plain.urls[i], "http://127.0.0.1:%d/", ports[i]);
    balanced.h = new_handle(&balanced.body_bytes);
    curl_easy_setopt(balanced.h, CURLOPT_URL, "http://svc.test/");
    balanced.list = list;
    balanced.rule = rule;

    run(&plain, 100, -1); /* warm: connections made */
    run(&balanced, 100, -1);
    for (int r = 0; r < rounds; r++) {
        run(&plain, requests, r);
        run(&balanced, requests, r);
    }
    double plain_us = median(plain.us, rounds), balanced_us = median(balanced.us, rounds);
    double plain_cpu = median(plain.cpu_us, rounds), balanced_cpu = median(balanced.cpu_us, rounds);

    char report[2048];
    snprintf(report, sizeof report,
             "### C HTTP integration: cost per request (libcurl %s)\n"
             "\n"
             "GET of 2 bytes over kept-alive connections to %d local HTTP/1.1 servers (forked "
             "processes; both variants alternate between them); median of %d rounds of %d "
             "requests, variants alternating; "
             "`examples/c/libcurl_bench.c`.\n"
             "\n"
             "| client | without peerlb (\xc2\xb5s/request) | with peerlb | overhead (\xc2\xb5s) | ratio |\n"
             "|---|---:|---:|---:|---:|\n"
             "| `curl_easy_perform` / `balanced_perform` (request rule + `CURLOPT_CONNECT_TO`) "
             "| %.1f | %.1f | %+.1f | %.2f\xc3\x97 |\n"
             "| the same, this process's CPU time per request "
             "| %.1f | %.1f | %+.1f | %.2f\xc3\x97 |\n",
             curl_version_info(CURLVERSION_NOW)->version, SERVERS, rounds, requests, plain_us, balanced_us,
             balanced_us - plain_us, balanced_us / plain_us, plain_cpu, balanced_cpu, balanced_cpu - plain_cpu,
             balanced_cpu / plain_cpu);
    fputs(report, stdout);
    int status = 0;
    if (out) {
        FILE *f = fopen(out, "w");
        if (!f || fputs(report, f) < 0 || fclose(f) != 0) {
            perror(out);
            status = 1;
        }
    }

    curl_easy_cleanup(plain.h);
    curl_easy_cleanup(balanced.h);
    curl_global_cleanup();
    peerlb_request_rule_free(rule);
    peerlb_list_free(list);
    for (int i = 0; i < SERVERS; i++) {
        kill(pids[i], SIGKILL);
        waitpid(pids[i], NULL, 0);
    }
    return status;
}
