/* peerlb from C: balance real HTTP requests across local servers.
 *
 * Starts three tiny HTTP servers (forked, on 127.0.0.1 ephemeral ports), builds a peer
 * list whose transport is written here in C (retain probes the port with a TCP connect
 * and reports the status; a failed request marks the peer unavailable), sends requests
 * through it, stops one server half-way, and shows that the rest of the traffic moves to
 * the live servers.
 *
 * Build: cc -std=c99 basic.c $(pkg-config --cflags --libs peerlb) -o basic
 * Run:   ./basic     (exits 0 when every request after the failover succeeded) */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <peerlb.h>

#define SERVERS 3
#define REQUESTS 30

/* ---- the servers ---- */

static void serve(int listener, int index) {
    for (;;) {
        int fd = accept(listener, NULL, NULL);
        if (fd < 0) continue;
        char buf[1024];
        size_t got = 0;
        while (got < sizeof buf - 1) {
            ssize_t n = read(fd, buf + got, sizeof buf - 1 - got);
            if (n <= 0) break;
            got += (size_t)n;
            buf[got] = '\0';
            if (strstr(buf, "\r\n\r\n")) break;
        }
        char body[64], resp[256];
        int blen = snprintf(body, sizeof body, "hello from server %d\n", index);
        int rlen = snprintf(resp, sizeof resp,
                            "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s",
                            blen, body);
        if (write(fd, resp, (size_t)rlen) < 0) perror("write");
        close(fd);
    }
}

static pid_t start_server(int index, int *port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0; /* ephemeral */
    socklen_t len = sizeof addr;
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 16) != 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &len) != 0) {
        perror("server socket");
        exit(2);
    }
    *port = ntohs(addr.sin_port);
    pid_t pid = fork();
    if (pid == 0) {
        serve(fd, index);
        _exit(0);
    }
    close(fd);
    return pid;
}

/* ---- a TCP client ---- */

static int connect_peer(const char *id, size_t len) {
    char host[64];
    const char *colon = memchr(id, ':', len);
    if (!colon || (size_t)(colon - id) >= sizeof host) return -1;
    memcpy(host, id, (size_t)(colon - id));
    host[colon - id] = '\0';
    int port = atoi(colon + 1);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) return -1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends GET / and reads the body into out; 0 on a 200 response. */
static int http_get(const char *id, size_t len, char *out, size_t cap) {
    int fd = connect_peer(id, len);
    if (fd < 0) return -1;
    char req[128];
    int n = snprintf(req, sizeof req, "GET / HTTP/1.0\r\nHost: %.*s\r\n\r\n", (int)len, id);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    char buf[1024];
    size_t got = 0;
    ssize_t r;
    while (got < sizeof buf - 1 && (r = read(fd, buf + got, sizeof buf - 1 - got)) > 0) got += (size_t)r;
    close(fd);
    buf[got] = '\0';
    if (strncmp(buf, "HTTP/1.0 200", 12) != 0) return -1;
    const char *body = strstr(buf, "\r\n\r\n");
    snprintf(out, cap, "%s", body ? body + 4 : "");
    out[strcspn(out, "\n")] = '\0';
    return 0;
}

/* ---- the transport: probe on retain, mark down on failed requests ---- */

typedef struct {
    pthread_mutex_t mu;
    char ids[SERVERS][32];
    peerlb_subscriber *subs[SERVERS]; /* owned, to report later from any thread */
    int n;
} probe_transport;

static int probe_retain(void *userdata, const char *id, size_t len, const peerlb_subscriber *sub) {
    probe_transport *t = userdata;
    peerlb_subscriber *owned = NULL;
    if (peerlb_subscriber_clone(sub, &owned) != PEERLB_OK) return PEERLB_INVALID_ARGUMENT;
    pthread_mutex_lock(&t->mu);
    if (t->n < SERVERS) {
        snprintf(t->ids[t->n], sizeof t->ids[t->n], "%.*s", (int)len, id);
        t->subs[t->n++] = owned;
        owned = NULL;
    }
    pthread_mutex_unlock(&t->mu);
    peerlb_subscriber_free(owned);
    int fd = connect_peer(id, len);
    if (fd >= 0) close(fd);
    return peerlb_subscriber_set_status(sub, fd >= 0 ? PEERLB_CONNECTION_AVAILABLE : PEERLB_CONNECTION_UNAVAILABLE,
                                        NULL);
}

static int probe_release(void *userdata, const char *id, size_t len, const peerlb_subscriber *sub) {
    (void)userdata; (void)id; (void)len; (void)sub;
    return PEERLB_OK;
}

static void probe_free(void *userdata) {
    probe_transport *t = userdata;
    for (int i = 0; i < t->n; i++) peerlb_subscriber_free(t->subs[i]);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

static void mark_down(probe_transport *t, const char *id, size_t len) {
    pthread_mutex_lock(&t->mu);
    for (int i = 0; i < t->n; i++)
        if (strlen(t->ids[i]) == len && memcmp(t->ids[i], id, len) == 0)
            peerlb_subscriber_set_status(t->subs[i], PEERLB_CONNECTION_UNAVAILABLE, NULL);
    pthread_mutex_unlock(&t->mu);
}

static void die(const char *what, peerlb_status st) {
    fprintf(stderr, "%s: %s: %s\n", what, peerlb_status_str(st), peerlb_last_error_message());
    exit(1);
}

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    printf("peerlb %s\n", peerlb_version());
    pid_t pids[SERVERS];
    char ids[SERVERS][32];
    peerlb_peer_spec specs[SERVERS];
    for (int i = 0; i < SERVERS; i++) {
        int port;
        pids[i] = start_server(i, &port);
        snprintf(ids[i], sizeof ids[i], "127.0.0.1:%d", port);
        specs[i].id = ids[i];
        specs[i].id_len = strlen(ids[i]);
        specs[i].weight = 1;
        printf("server %d listening on %s\n", i, ids[i]);
    }

    probe_transport *t = calloc(1, sizeof *t);
    pthread_mutex_init(&t->mu, NULL);
    peerlb_transport_vtable vt = {t, "tcp-probe-c", probe_retain, probe_release, probe_free};
    peerlb_list_options *opts;
    peerlb_list *list;
    peerlb_status st;
    if ((st = peerlb_list_options_new(&opts)) != PEERLB_OK) die("options", st);
    if ((st = peerlb_list_options_set_strategy(opts, "fewest-pending")) != PEERLB_OK) die("strategy", st);
    if ((st = peerlb_list_new(opts, &vt, &list)) != PEERLB_OK) die("list_new", st);
    peerlb_list_options_free(opts);
    if ((st = peerlb_list_update(list, specs, SERVERS, NULL, 0)) != PEERLB_OK) die("update", st);
    if ((st = peerlb_list_start(list)) != PEERLB_OK) die("start", st);

    int served[SERVERS] = {0}, failures = 0, late_failures = 0;
    for (int n = 0; n < REQUESTS; n++) {
        if (n == REQUESTS / 2) {
            printf("-- stopping server 1 (%s)\n", ids[1]);
            kill(pids[1], SIGTERM);
            waitpid(pids[1], NULL, 0);
            pids[1] = 0;
        }
        peerlb_request req = {1000, NULL, 0};
        peerlb_choice c;
        if ((st = peerlb_list_choose(list, &req, &c)) != PEERLB_OK) die("choose", st);
        char body[128];
        double started = now_us();
        int rc = http_get(c.peer, c.peer_len, body, sizeof body);
        int64_t latency = (int64_t)(now_us() - started);
        if (rc == 0) {
            for (int i = 0; i < SERVERS; i++)
                if (strlen(ids[i]) == c.peer_len && memcmp(ids[i], c.peer, c.peer_len) == 0) served[i]++;
            printf("request %2d -> %.*s: %s (%lld us)\n", n, (int)c.peer_len, c.peer, body, (long long)latency);
            peerlb_choice_finish(&c, PEERLB_OUTCOME_OK, latency);
        } else {
            printf("request %2d -> %.*s: failed; marking it unavailable\n", n, (int)c.peer_len, c.peer);
            mark_down(t, c.peer, c.peer_len);
            peerlb_choice_finish(&c, PEERLB_OUTCOME_FAILURE, latency);
            failures++;
            if (failures > 1) late_failures++;
        }
    }
    char *json;
    if (peerlb_list_introspect(list, &json) == PEERLB_OK) {
        printf("introspection: %s\n", json);
        peerlb_string_free(json);
    }
    peerlb_list_stop(list);
    peerlb_list_free(list); /* runs probe_free */
    for (int i = 0; i < SERVERS; i++) {
        if (pids[i] > 0) {
            kill(pids[i], SIGTERM);
            waitpid(pids[i], NULL, 0);
        }
        printf("server %d served %d requests\n", i, served[i]);
    }
    int ok = late_failures == 0 && served[0] > 0 && served[2] > 0;
    printf("%s: %d requests, %d failed (at most 1 expected, at the failover)\n", ok ? "ok" : "FAILED", REQUESTS,
           failures);
    return ok ? 0 : 1;
}
