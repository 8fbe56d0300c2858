/* peerlb from C: retries, outlier ejection, events and admin over real HTTP.
 *
 * Starts three tiny HTTP servers (forked, on 127.0.0.1 ephemeral ports) and sends 30
 * calls through peerlb_retry (the step-by-step retry loop: choose, run the attempt,
 * report it). Server 1 is stopped a third of the way through: attempts to it fail, the
 * retry moves the call to another server, and after 3 failures in a row the list ejects
 * server 1 (an event callback prints it). Server 2 answers 503 ("busy") to its 4th
 * request: the call reports that attempt as declined and ends there, without a retry or
 * a failure counted against the server. Then an admin disables server 2 for a few calls.
 *
 * Build: cc -std=c99 retry.c $(pkg-config --cflags --libs peerlb) -o retry
 * Run:   ./retry   (exits 0 when every call but the declined one succeeded) */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <peerlb.h>

#define SERVERS 3
#define CALLS 30

/* ---- the servers: 200 "hello from server N", except server 2's 4th answer: 503 ---- */

static void serve(int listener, int index) {
    for (int served = 1;; served++) {
        int fd = accept(listener, NULL, NULL);
        if (fd < 0) continue;
        char buf[1024];
        ssize_t n = read(fd, buf, sizeof buf); /* one small request; its content is ignored */
        (void)n;
        char resp[256];
        int len = index == 2 && served == 4
                      ? snprintf(resp, sizeof resp, "HTTP/1.0 503 Busy\r\nContent-Length: 5\r\n\r\nbusy\n")
                      : snprintf(resp, sizeof resp, "HTTP/1.0 200 OK\r\nContent-Length: 20\r\n\r\nhello from server %d\n",
                                 index);
        if (write(fd, resp, (size_t)len) < 0) perror("write");
        close(fd);
    }
}

static pid_t start_server(int index, char *id, size_t cap) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 16) != 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &len) != 0) {
        perror("server socket");
        exit(2);
    }
    snprintf(id, cap, "127.0.0.1:%d", ntohs(addr.sin_port));
    pid_t pid = fork();
    if (pid == 0) {
        serve(fd, index);
        _exit(0);
    }
    close(fd);
    return pid;
}

/* GET / from peer `id`; returns the HTTP status (200, 503), or -1 when the connection
 * failed. */
static int http_get(const char *id, size_t len) {
    const char *colon = memchr(id, ':', len);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)atoi(colon + 1));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close(fd);
        return -1;
    }
    const char req[] = "GET / HTTP/1.0\r\n\r\n";
    char buf[256] = "";
    ssize_t got = write(fd, req, sizeof req - 1) == (ssize_t)(sizeof req - 1) ? read(fd, buf, sizeof buf - 1) : -1;
    close(fd);
    if (got < 12 || strncmp(buf, "HTTP/1.0 ", 9) != 0) return -1;
    return atoi(buf + 9);
}

/* ---- events: printed as they happen (outside peerlb's locks) ---- */

static void print_event(const peerlb_event *e, void *user_data) {
    (void)user_data;
    printf("   event: %s %.*s%s%s\n", peerlb_event_kind_str(e->kind), (int)e->peer_len, e->peer, *e->detail ? ": " : "",
           e->detail);
}

static void die(const char *what, peerlb_status st) {
    fprintf(stderr, "%s: %s: %s\n", what, peerlb_status_str(st), peerlb_last_error_message());
    exit(1);
}

/* One call: the retry loop. Returns PEERLB_OK, PEERLB_DECLINED or the final error. */
static peerlb_status call(const peerlb_list *list, int n) {
    peerlb_retry *retry;
    peerlb_status st = peerlb_retry_new(3, 5000, NULL, &retry);
    if (st != PEERLB_OK) die("retry_new", st);
    peerlb_request req = {1000, NULL, 0};
    for (;;) {
        peerlb_choice c;
        st = peerlb_retry_choose(retry, list, &req, &c);
        if (st != PEERLB_OK) break; /* no attempt left: the message lists every error */
        int status = http_get(c.peer, c.peer_len);
        printf("call %2d -> %.*s: ", n, (int)c.peer_len, c.peer);
        if (status == 200) {
            printf("200\n");
            st = peerlb_retry_succeeded(retry, &c, -1);
            break;
        }
        if (status == 503) {
            printf("503, declined\n");
            st = peerlb_retry_declined(retry, &c, "503 busy", -1); /* PEERLB_DECLINED */
            break;
        }
        printf("connection failed, retrying elsewhere\n");
        peerlb_retry_failed(retry, &c, "connection refused", -1);
    }
    if (st != PEERLB_OK) printf("call %2d: %s: %s\n", n, peerlb_status_str(st), peerlb_last_error_message());
    peerlb_retry_free(retry);
    return st;
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    pid_t pids[SERVERS];
    char ids[SERVERS][32];
    peerlb_peer_spec specs[SERVERS];
    for (int i = 0; i < SERVERS; i++) {
        pids[i] = start_server(i, ids[i], sizeof ids[i]);
        specs[i].id = ids[i];
        specs[i].id_len = strlen(ids[i]);
        specs[i].weight = 1;
        printf("server %d listening on %s\n", i, ids[i]);
    }

    peerlb_list_options *opts;
    peerlb_list *list;
    peerlb_subscription *sub;
    peerlb_status st;
    if ((st = peerlb_list_options_new(&opts)) != PEERLB_OK) die("options", st);
    if ((st = peerlb_list_options_set_shuffle(opts, false)) != PEERLB_OK) die("shuffle", st);
    /* 3 failures in a row eject a server for 10 s; up to 50% of the servers may be out. */
    if ((st = peerlb_list_options_set_ejection(opts, "failures=3&base_ms=10000&max_percent=50")) != PEERLB_OK)
        die("ejection", st);
    if ((st = peerlb_list_new(opts, NULL, &list)) != PEERLB_OK) die("list_new", st);
    peerlb_list_options_free(opts);
    if ((st = peerlb_list_subscribe(list, print_event, NULL, &sub)) != PEERLB_OK) die("subscribe", st);
    if ((st = peerlb_list_update(list, specs, SERVERS, NULL, 0)) != PEERLB_OK) die("update", st);
    if ((st = peerlb_list_start(list)) != PEERLB_OK) die("start", st);

    int ok = 0, declined = 0, failed = 0;
    for (int n = 0; n < CALLS; n++) {
        if (n == CALLS / 3) {
            printf("-- stopping server 1 (%s)\n", ids[1]);
            kill(pids[1], SIGTERM);
            waitpid(pids[1], NULL, 0);
            pids[1] = 0;
        }
        if (n == 2 * CALLS / 3) {
            peerlb_admin_result res;
            if ((st = peerlb_list_disable(list, ids[2], strlen(ids[2]), &res)) != PEERLB_OK) die("disable", st);
            printf("-- admin: disable server 2: %s\n", peerlb_admin_result_str(res));
        }
        if (n == 2 * CALLS / 3 + 4) {
            peerlb_admin_result res;
            if ((st = peerlb_list_enable(list, ids[2], strlen(ids[2]), &res)) != PEERLB_OK) die("enable", st);
            printf("-- admin: enable server 2: %s\n", peerlb_admin_result_str(res));
        }
        st = call(list, n);
        ok += st == PEERLB_OK;
        declined += st == PEERLB_DECLINED;
        failed += st != PEERLB_OK && st != PEERLB_DECLINED;
    }
    char *json;
    if (peerlb_list_introspect(list, &json) == PEERLB_OK) {
        printf("introspection: %s\n", json);
        peerlb_string_free(json);
    }
    peerlb_subscription_free(sub);
    peerlb_list_free(list);
    for (int i = 0; i < SERVERS; i++)
        if (pids[i] > 0) {
            kill(pids[i], SIGTERM);
            waitpid(pids[i], NULL, 0);
        }
    int good = failed == 0 && declined <= 1 && ok + declined == CALLS;
    printf("%s: %d calls: %d ok, %d declined, %d failed\n", good ? "ok" : "FAILED", CALLS, ok, declined, failed);
    return good ? 0 : 1;
}
