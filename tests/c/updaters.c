/* peerlb_updater_* from C: static (weights, lifecycle, bad input), file (edit, bad line,
 * missing file keep the last good set) and DNS against a real UDP DNS server on 127.0.0.1
 * run by this program (a thread answering A questions from `zone_a`). */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "testutil.h"

static size_t list_len(peerlb_list *l) {
    size_t n = 0;
    peerlb_list_len(l, &n);
    return n;
}

static peerlb_list *new_list(const char *strategy) {
    peerlb_list_options *o;
    peerlb_list *l = NULL;
    peerlb_list_options_new(&o);
    peerlb_list_options_set_strategy(o, strategy);
    peerlb_list_options_set_shuffle(o, 0);
    peerlb_list_new(o, NULL, &l);
    peerlb_list_options_free(o);
    return l;
}

/* Whether the introspection JSON mentions `needle`. */
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
        while (!(cond) && t_now_s() < until_) t_sleep_ms(5);                       \
        EXPECT(cond, "waited 10 s");                                               \
    } while (0)

/* Replaces the file at once (write a temporary file, rename it over): a poll never sees
 * it truncated and half written, which would be an empty, valid set. */
static void write_file(const char *path, const char *text) {
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    fputs(text, f);
    fclose(f);
    rename(tmp, path);
}

static void test_static(void) {
    peerlb_list *l = new_list("weighted-round-robin");
    peerlb_peer_spec peers[] = {{"a:1", 3, 3}, {"b:1", 3, 1}};
    peerlb_peer_spec bad[] = {{"", 0, 1}};
    peerlb_updater *u = NULL, *ub = NULL;
    size_t n = 0;
    OK(peerlb_updater_bind_static(l, peers, 2, &u));
    EXPECT(list_len(l) == 0, "nothing before start");
    EXPECT_STATUS(peerlb_updater_stop(u), PEERLB_NOT_STARTED);
    OK(peerlb_updater_start(u));
    EXPECT(list_len(l) == 2, "applied on start");
    EXPECT(list_has(l, "\"weight\":3"), "weights kept");
    OK(peerlb_updater_len(u, &n));
    EXPECT(n == 2, "len %zu", n);
    EXPECT_STATUS(peerlb_updater_start(u), PEERLB_ALREADY_STARTED);
    OK(peerlb_updater_stop(u));
    EXPECT(list_len(l) == 2, "stop keeps the peers");
    /* bad input: clear errors, list intact */
    EXPECT_STATUS(peerlb_updater_bind_static(NULL, peers, 2, &ub), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_updater_bind_static(l, NULL, 2, &ub), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_updater_bind_static(l, peers, 2, NULL), PEERLB_INVALID_ARGUMENT);
    OK(peerlb_updater_bind_static(l, bad, 1, &ub));
    EXPECT_STATUS(peerlb_updater_start(ub), PEERLB_INVALID_ARGUMENT);
    EXPECT(list_len(l) == 2, "bad static set changes nothing");
    EXPECT_STATUS(peerlb_updater_start(NULL), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_updater_stop(NULL), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_updater_len(u, NULL), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_updater_bind_file(l, NULL, 0, &ub), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_updater_bind_dns(l, NULL, &ub), PEERLB_INVALID_ARGUMENT);
    /* etcd: an empty prefix is invalid (and a build without etcd refuses every call) */
    EXPECT_STATUS(peerlb_updater_bind_etcd(l, "http://127.0.0.1:1", "", 0, 0, &ub), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_updater_bind_etcd(l, NULL, "/p/", 0, 0, &ub), PEERLB_INVALID_ARGUMENT);
    /* xDS: bad options are invalid; this (plain) build refuses even good ones, saying why */
    {
        const char *clusters[] = {"a"};
        peerlb_xds_options xo;
        memset(&xo, 0, sizeof xo);
        EXPECT_STATUS(peerlb_updater_bind_xds(l, &xo, &ub), PEERLB_INVALID_ARGUMENT);
        EXPECT_STATUS(peerlb_updater_bind_xds(l, NULL, &ub), PEERLB_INVALID_ARGUMENT);
        xo.server = "127.0.0.1:1";
        xo.clusters = clusters;
        xo.n_clusters = 1;
        EXPECT_STATUS(peerlb_updater_bind_xds(l, &xo, &ub), PEERLB_INVALID_ARGUMENT);
        EXPECT(strstr(peerlb_last_error_message(), "without xDS support") != NULL, "%s",
               peerlb_last_error_message());
    }
    peerlb_updater_free(ub);
    peerlb_updater_free(u);
    peerlb_updater_free(NULL);
    peerlb_list_free(l);
}

static void test_file(void) {
    char dir[] = "/tmp/peerlb-upd-XXXXXX";
    char path[128];
    peerlb_list *l = new_list("round-robin");
    peerlb_updater *u = NULL;
    peerlb_status code = PEERLB_INTERNAL;
    char *msg = NULL;
    EXPECT(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(path, sizeof path, "%s/peers.txt", dir);
    write_file(path, "# backends\na:1 2\nb:1\n");
    OK(peerlb_updater_bind_file(l, path, 20, &u));
    OK(peerlb_updater_start(u));
    EXPECT(list_len(l) == 2, "read on start");
    OK(peerlb_updater_last_error(u, &code, &msg));
    EXPECT(code == PEERLB_OK && msg == NULL, "no error");
    write_file(path, "c:1\n");
    WAIT_FOR(list_len(l) == 1 && list_has(l, "\"c:1\""));
    write_file(path, "c:1\nnot a peer\n");
    for (double until = t_now_s() + 10; t_now_s() < until; t_sleep_ms(5)) {
        OK(peerlb_updater_last_error(u, &code, &msg));
        if (msg) break;
    }
    EXPECT(code == PEERLB_SOURCE_FAILED, "code %s", peerlb_status_str(code));
    EXPECT(msg && strstr(msg, "peers.txt:2"), "message names file and line: %s", msg ? msg : "(null)");
    peerlb_string_free(msg);
    EXPECT(list_len(l) == 1, "last good set kept");
    unlink(path);
    /* Wait for the poll that finds the file gone (its error says so), then check the set. */
    int missing = 0;
    for (double until = t_now_s() + 10; !missing && t_now_s() < until; t_sleep_ms(5)) {
        OK(peerlb_updater_last_error(u, &code, &msg));
        missing = msg && strstr(msg, "cannot read");
        peerlb_string_free(msg);
    }
    EXPECT(missing, "the missing file was reported");
    EXPECT(list_len(l) == 1, "missing file keeps the last good set");
    peerlb_updater_free(u); /* stops */
    rmdir(dir);
    peerlb_list_free(l);
}

/* ---- a DNS server ---- */
static volatile int dns_stop;
static volatile uint32_t zone_a = 0x0a000001; /* 10.0.0.1 */
static int dns_fd;

static void *dns_serve(void *arg) {
    unsigned char q[512], r[600];
    (void)arg;
    while (!dns_stop) {
        struct sockaddr_in peer;
        socklen_t plen = sizeof peer;
        ssize_t n = recvfrom(dns_fd, q, sizeof q, 0, (struct sockaddr *)&peer, &plen);
        size_t end = 12, len;
        uint16_t qtype;
        int answer;
        if (n < 17) continue;
        while (end < (size_t)n && q[end] != 0) end += q[end] + 1;
        if (end + 5 > (size_t)n) continue;
        qtype = (uint16_t)(q[end + 1] << 8 | q[end + 2]);
        answer = qtype == 1;
        memcpy(r, q, end + 5);
        r[2] = 0x84 | (q[2] & 0x01);
        r[3] = 0;
        r[4] = 0; r[5] = 1; r[6] = 0; r[7] = (unsigned char)answer;
        memset(r + 8, 0, 4);
        len = end + 5;
        if (answer) {
            uint32_t ip = htonl(zone_a);
            unsigned char rr[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4};
            memcpy(r + len, rr, sizeof rr);
            memcpy(r + len + sizeof rr, &ip, 4);
            len += sizeof rr + 4;
        }
        sendto(dns_fd, r, len, 0, (struct sockaddr *)&peer, plen);
    }
    return NULL;
}

static void test_dns(void) {
    struct sockaddr_in addr;
    socklen_t alen = sizeof addr;
    struct timeval tv = {0, 20000};
    pthread_t th;
    char ns[64];
    peerlb_list *l = new_list("round-robin");
    peerlb_updater *u = NULL;
    peerlb_dns_options o;
    double t0;
    dns_fd = socket(AF_INET, SOCK_DGRAM, 0);
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(dns_fd, (struct sockaddr *)&addr, sizeof addr);
    getsockname(dns_fd, (struct sockaddr *)&addr, &alen);
    setsockopt(dns_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    pthread_create(&th, NULL, dns_serve, NULL);
    snprintf(ns, sizeof ns, "127.0.0.1:%d", ntohs(addr.sin_port));

    memset(&o, 0, sizeof o);
    o.name = "backends.test";
    o.record = 42;
    EXPECT_STATUS(peerlb_updater_bind_dns(l, &o, &u), PEERLB_INVALID_ARGUMENT);
    o.record = PEERLB_DNS_A; /* port 0 */
    EXPECT_STATUS(peerlb_updater_bind_dns(l, &o, &u), PEERLB_INVALID_ARGUMENT);
    o.port = 8080;
    o.nameserver = "not an address";
    EXPECT_STATUS(peerlb_updater_bind_dns(l, &o, &u), PEERLB_INVALID_ARGUMENT);
    o.nameserver = ns;
    o.min_interval_ms = 30;
    o.timeout_ms = 300;
    OK(peerlb_updater_bind_dns(l, &o, &u));
    OK(peerlb_updater_start(u));
    WAIT_FOR(list_has(l, "\"10.0.0.1:8080\""));
    zone_a = 0x0a000002;
    t0 = t_now_s();
    WAIT_FOR(list_has(l, "\"10.0.0.2:8080\"") && list_len(l) == 1);
    printf("c: dns change reached the list in %.0f ms\n", (t_now_s() - t0) * 1000);
    /* server gone: once a poll has failed (it times out), the last good set is still there */
    dns_stop = 1;
    pthread_join(th, NULL);
    close(dns_fd);
    peerlb_status code = PEERLB_OK;
    char *msg = NULL;
    for (double until = t_now_s() + 10; code == PEERLB_OK && t_now_s() < until; t_sleep_ms(5)) {
        OK(peerlb_updater_last_error(u, &code, &msg));
        peerlb_string_free(msg);
    }
    EXPECT(code == PEERLB_SOURCE_FAILED, "the failed poll was reported (%s)", peerlb_status_str(code));
    EXPECT(list_len(l) == 1 && list_has(l, "\"10.0.0.2:8080\""), "kept while the server is down");
    OK(peerlb_updater_stop(u));
    peerlb_updater_free(u);
    peerlb_list_free(l);
}

int main(void) {
    test_static();
    test_file();
    test_dns();
    return t_summary("updaters");
}
