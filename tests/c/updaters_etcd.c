/* peerlb_updater_bind_etcd from C against a real etcd (the `etcd` binary: $PEERLB_ETCD or
 * "etcd" on PATH), started here on free loopback ports with a temp data dir. Keys are
 * written through etcd's JSON gateway with plain HTTP. Needs a libpeerlb built with the
 * `etcd` feature (make test-updaters-etcd builds one). Fails without etcd. */
#include <arpa/inet.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

static int free_port(void) {
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, (struct sockaddr *)&a, sizeof a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static void b64(const char *in, char *out) {
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(in), i, o = 0;
    for (i = 0; i + 2 < n; i += 3) {
        unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8 | (unsigned char)in[i + 2];
        out[o++] = t[v >> 18]; out[o++] = t[(v >> 12) & 63]; out[o++] = t[(v >> 6) & 63]; out[o++] = t[v & 63];
    }
    if (n - i == 1) {
        unsigned v = (unsigned char)in[i] << 16;
        out[o++] = t[v >> 18]; out[o++] = t[(v >> 12) & 63]; out[o++] = '='; out[o++] = '=';
    } else if (n - i == 2) {
        unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8;
        out[o++] = t[v >> 18]; out[o++] = t[(v >> 12) & 63]; out[o++] = t[(v >> 6) & 63]; out[o++] = '=';
    }
    out[o] = 0;
}

/* POSTs JSON to etcd's gateway; 0 on an HTTP 200. */
static int post(int port, const char *path, const char *body) {
    struct sockaddr_in a;
    char req[1024], resp[256];
    ssize_t n;
    int fd = socket(AF_INET, SOCK_STREAM, 0), ok;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) { close(fd); return -1; }
    snprintf(req, sizeof req,
             "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\nConnection: close\r\n\r\n%s", path, strlen(body), body);
    if (write(fd, req, strlen(req)) < 0) { close(fd); return -1; }
    n = read(fd, resp, sizeof resp - 1);
    close(fd);
    if (n <= 0) return -1;
    resp[n] = 0;
    ok = strncmp(resp, "HTTP/1.1 200", 12) == 0;
    return ok ? 0 : -1;
}

static int put(int port, const char *key, const char *value) {
    char k[256], v[256], body[600];
    b64(key, k);
    b64(value, v);
    snprintf(body, sizeof body, "{\"key\":\"%s\",\"value\":\"%s\"}", k, v);
    return post(port, "/v3/kv/put", body);
}

static int del(int port, const char *key) {
    char k[256], body[300];
    b64(key, k);
    snprintf(body, sizeof body, "{\"key\":\"%s\"}", k);
    return post(port, "/v3/kv/deleterange", body);
}

static size_t list_len(peerlb_list *l) {
    size_t n = 0;
    peerlb_list_len(l, &n);
    return n;
}

static int list_has(peerlb_list *l, const char *needle) {
    char *json = NULL;
    int found;
    if (peerlb_list_introspect(l, &json) != PEERLB_OK) return 0;
    found = strstr(json, needle) != NULL;
    peerlb_string_free(json);
    return found;
}

#define WAIT_FOR(cond)                                                             \
    do {                                                                           \
        double until_ = t_now_s() + 10.0;                                          \
        while (!(cond) && t_now_s() < until_) t_sleep_ms(2);                       \
        EXPECT(cond, "waited 10 s");                                               \
    } while (0)

int main(void) {
    const char *bin = getenv("PEERLB_ETCD") ? getenv("PEERLB_ETCD") : "etcd";
    char dir[] = "/tmp/peerlb-etcd-XXXXXX", client[64], peer[64], cluster[80], rm[128];
    int cp = free_port(), pp = free_port();
    pid_t pid;
    double deadline, t0;
    peerlb_list *l = NULL;
    peerlb_updater *u = NULL;
    peerlb_status code = PEERLB_OK;
    char *msg = NULL;

    if (!mkdtemp(dir)) return 1;
    snprintf(client, sizeof client, "http://127.0.0.1:%d", cp);
    snprintf(peer, sizeof peer, "http://127.0.0.1:%d", pp);
    snprintf(cluster, sizeof cluster, "t=%s", peer);
    pid = fork();
    if (pid == 0) {
        freopen("/dev/null", "w", stderr);
        freopen("/dev/null", "w", stdout);
        execlp(bin, bin, "--name", "t", "--data-dir", dir, "--listen-client-urls", client,
               "--advertise-client-urls", client, "--listen-peer-urls", peer,
               "--initial-advertise-peer-urls", peer, "--initial-cluster", cluster,
               "--log-level", "error", (char *)NULL);
        _exit(127);
    }
    deadline = t_now_s() + 30;
    while (put(cp, "/ready", "1") != 0) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid || t_now_s() > deadline) {
            fprintf(stderr, "FAIL: etcd (%s) did not start; install etcd-server or set PEERLB_ETCD\n", bin);
            return 1;
        }
        t_sleep_ms(50);
    }
    EXPECT(put(cp, "/svc/a", "10.0.0.1:80") == 0, "put");
    EXPECT(put(cp, "/svc/b", "{\"addr\":\"10.0.0.2:80\",\"weight\":4}") == 0, "put");

    {
        peerlb_list_options *o;
        peerlb_list_options_new(&o);
        peerlb_list_new(o, NULL, &l);
        peerlb_list_options_free(o);
    }
    EXPECT_STATUS(peerlb_updater_bind_etcd(l, "", "/svc/", 0, 0, &u), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_updater_bind_etcd(l, client, "", 0, 0, &u), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_updater_bind_etcd(l, NULL, "/svc/", 0, 0, &u), PEERLB_INVALID_ARGUMENT);
    OK(peerlb_updater_bind_etcd(l, client, "/svc/", 500, 100, &u));
    OK(peerlb_updater_start(u));
    WAIT_FOR(list_len(l) == 2 && list_has(l, "\"weight\":4"));
    t0 = t_now_s();
    EXPECT(put(cp, "/svc/10.0.0.3:80", "") == 0, "put");
    WAIT_FOR(list_len(l) == 3);
    printf("c: etcd put reached the list in %.1f ms\n", (t_now_s() - t0) * 1000);
    EXPECT(del(cp, "/svc/a") == 0, "delete");
    WAIT_FOR(list_len(l) == 2 && !list_has(l, "\"10.0.0.1:80\""));
    /* etcd killed: the last good set stays, the failure is reported */
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    deadline = t_now_s() + 10;
    do {
        OK(peerlb_updater_last_error(u, &code, &msg));
        if (msg) break;
        t_sleep_ms(10);
    } while (t_now_s() < deadline);
    EXPECT(code == PEERLB_SOURCE_FAILED, "code %s", peerlb_status_str(code));
    peerlb_string_free(msg);
    EXPECT(list_len(l) == 2, "last good set kept");
    peerlb_updater_free(u);
    peerlb_list_free(l);
    snprintf(rm, sizeof rm, "rm -rf %s", dir);
    if (system(rm) != 0) fprintf(stderr, "cannot remove %s\n", dir);
    return t_summary("updaters_etcd");
}
