/* Operability from C: list names, metrics text, circuit breakers (PEERLB_OVERLOADED), the
 * admin endpoint (plain HTTP/1.1 over a socket) and the http-probe transport against a
 * small HTTP server this test runs on 127.0.0.1 and flips between 200 and 503. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "netutil.h"
#include "testutil.h"

static peerlb_list *running_list(const char *name, size_t max_pending, size_t per_peer) {
    peerlb_list_options *opts = NULL;
    peerlb_list *list = NULL;
    OK(peerlb_list_options_new(&opts));
    OK(peerlb_list_options_set_shuffle(opts, false));
    OK(peerlb_list_options_set_name(opts, name));
    if (max_pending) OK(peerlb_list_options_set_max_pending(opts, max_pending));
    if (per_peer) OK(peerlb_list_options_set_max_pending_per_peer(opts, per_peer));
    OK(peerlb_list_new(opts, NULL, &list));
    peerlb_list_options_free(opts);
    peerlb_peer_spec peers[] = {{"a:1", 3, 1}, {"b:1", 3, 1}};
    OK(peerlb_list_update(list, peers, 2, NULL, 0));
    OK(peerlb_list_start(list));
    return list;
}

static void test_metrics_and_names(void) {
    peerlb_list *list = running_list("c-metrics", 0, 0);
    peerlb_request req = {PEERLB_NO_TIMEOUT, NULL, 0};
    for (int i = 0; i < 3; i++) {
        peerlb_choice c;
        OK(peerlb_list_choose(list, &req, &c));
        OK(peerlb_choice_finish(&c, i == 2 ? PEERLB_OUTCOME_FAILURE : PEERLB_OUTCOME_OK, 2500));
    }
    char *text = NULL;
    OK(peerlb_list_metrics(list, &text));
    EXPECT(text && strstr(text, "peerlb_chosen_total{list=\"c-metrics\",peer=\"a:1\"} 2\n"), "%s", text);
    EXPECT(text && strstr(text, "peerlb_finished_total{list=\"c-metrics\",peer=\"a:1\",outcome=\"failure\"} 1\n"), "%s", text);
    EXPECT(text && strstr(text, "peerlb_request_duration_seconds_count{list=\"c-metrics\",peer=\"a:1\"} 2\n"), "%s", text);
    peerlb_string_free(text);
    text = NULL;
    OK(peerlb_metrics(&text));
    EXPECT(text && strstr(text, "peerlb_peers{list=\"c-metrics\"} 2\n"), "process-wide metrics");
    peerlb_string_free(text);
    text = NULL;
    OK(peerlb_list_introspect(list, &text));
    EXPECT(text && strstr(text, "\"name\":\"c-metrics\""), "%s", text);
    peerlb_string_free(text);

    /* Bad input: NULLs, a bad name, limits of 0 reach the core and fail the list. */
    EXPECT_STATUS(peerlb_list_metrics(NULL, &text), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_metrics(list, NULL), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_metrics(NULL), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_list_options_set_name(NULL, "x"), PEERLB_INVALID_ARGUMENT);
    peerlb_list_options *opts = NULL;
    OK(peerlb_list_options_new(&opts));
    EXPECT_STATUS(peerlb_list_options_set_name(opts, NULL), PEERLB_INVALID_ARGUMENT);
    peerlb_list *bad = NULL;
    OK(peerlb_list_options_set_name(opts, "two words"));
    EXPECT_STATUS(peerlb_list_new(opts, NULL, &bad), PEERLB_INVALID_ARGUMENT);
    OK(peerlb_list_options_set_name(opts, "fine"));
    OK(peerlb_list_options_set_max_pending(opts, 0));
    EXPECT_STATUS(peerlb_list_new(opts, NULL, &bad), PEERLB_INVALID_ARGUMENT);
    OK(peerlb_list_options_set_max_pending(opts, 5));
    OK(peerlb_list_options_set_max_pending_per_peer(opts, 0));
    EXPECT_STATUS(peerlb_list_new(opts, NULL, &bad), PEERLB_INVALID_ARGUMENT);
    EXPECT(bad == NULL, "no list on failure");
    OK(peerlb_list_options_set_max_pending_per_peer(opts, 2));
    OK(peerlb_list_options_set_metrics(opts, false));
    OK(peerlb_list_options_set_peer_labels(opts, false));
    OK(peerlb_list_new(opts, NULL, &bad));
    OK(peerlb_list_metrics(bad, &text));
    EXPECT(text && text[0] == '\0', "metrics off gives an empty text");
    peerlb_string_free(text);
    peerlb_list_free(bad);
    peerlb_list_options_free(opts);
    peerlb_list_free(list);
}

static void test_breakers(void) {
    EXPECT(PEERLB_OVERLOADED == 16, "stable value");
    EXPECT(strcmp(peerlb_status_str(PEERLB_OVERLOADED), "overloaded") == 0, "name");
    peerlb_list *list = running_list("c-breakers", 3, 1);
    peerlb_request req = {2000, NULL, 0};
    peerlb_choice a, b, c;
    OK(peerlb_list_choose(list, &req, &a));
    OK(peerlb_list_choose(list, &req, &b));
    EXPECT_STATUS(peerlb_list_choose(list, &req, &c), PEERLB_OVERLOADED);
    EXPECT(strstr(peerlb_last_error_message(), "max_pending_per_peer") != NULL, "%s",
           peerlb_last_error_message());
    OK(peerlb_choice_finish(&a, PEERLB_OUTCOME_OK, -1));
    OK(peerlb_list_choose(list, &req, &c));
    char *text = NULL;
    OK(peerlb_list_introspect(list, &text));
    EXPECT(text && strstr(text, "\"max_pending\":3") && strstr(text, "\"max_pending_per_peer\":1") &&
               strstr(text, "\"overloaded\":1"),
           "%s", text);
    peerlb_string_free(text);
    OK(peerlb_choice_finish(&b, PEERLB_OUTCOME_OK, -1));
    OK(peerlb_choice_finish(&c, PEERLB_OUTCOME_OK, -1));
    peerlb_list_free(list);
}

/* One HTTP/1.1 request over a socket; returns the status code and fills body. */
static int http(int port, const char *method, const char *path, const char *headers, char *body, size_t cap) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((unsigned short)port);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    char req[1024];
    int n = snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s\r\n", method,
                     path, headers);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    static char buf[65536];
    size_t got = 0;
    ssize_t r;
    while (got < sizeof buf - 1 && (r = read(fd, buf + got, sizeof buf - 1 - got)) > 0) got += (size_t)r;
    buf[got] = '\0';
    close(fd);
    int status = 0;
    sscanf(buf, "HTTP/1.1 %d", &status);
    const char *start = strstr(buf, "\r\n\r\n");
    snprintf(body, cap, "%s", start ? start + 4 : "");
    return status;
}

static void test_admin_endpoint(void) {
    peerlb_list *list = running_list("c-admin", 0, 0);
    peerlb_admin_server *server = NULL;
    OK(peerlb_admin_serve("127.0.0.1:0", "t0ken", &server));
    uint16_t port = 0;
    OK(peerlb_admin_server_port(server, &port));
    char *url = NULL;
    OK(peerlb_admin_server_url(server, &url));
    EXPECT(url && strncmp(url, "http://127.0.0.1:", 17) == 0, "%s", url ? url : "");
    peerlb_string_free(url);
    char body[65536];
    EXPECT(http(port, "GET", "/lists", "", body, sizeof body) == 401, "no token: 401");
    EXPECT(http(port, "POST", "/lists/c-admin/backends/a:1/disable", "Authorization: Bearer t0ken\r\n", body,
                sizeof body) == 200,
           "disable");
    EXPECT(strstr(body, "\"result\":\"success\"") != NULL && strstr(body, "\"code\":1") != NULL, "%s", body);
    EXPECT(http(port, "GET", "/lists/c-admin/backends/zzz", "Authorization: Bearer t0ken\r\n", body, sizeof body) ==
               404,
           "unknown peer");
    EXPECT(strstr(body, "peer-not-in-list") != NULL, "%s", body);
    EXPECT(http(port, "GET", "/metrics", "Authorization: Bearer t0ken\r\n", body, sizeof body) == 200, "metrics");
    EXPECT(strstr(body, "peerlb_peer_disabled{list=\"c-admin\",peer=\"a:1\"} 1") != NULL, "metrics body");

    peerlb_admin_server *other = NULL;
    EXPECT_STATUS(peerlb_admin_serve("not an address", NULL, &other), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_admin_serve(NULL, "bad token", &other), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_admin_serve(":0", NULL, NULL), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_admin_server_port(NULL, &port), PEERLB_INVALID_ARGUMENT);
    EXPECT(other == NULL, "no server on failure");
    peerlb_admin_server_free(server);
    peerlb_admin_server_free(NULL);
    EXPECT(http(port, "GET", "/lists", "", body, sizeof body) == -1, "the port is closed after free");
    peerlb_list_free(list);
}

/* A tiny HTTP server: answers every request with 200 or 503 (atomic flag), then closes. */
static atomic_int healthy = 1;
static atomic_int serving = 1;
static int health_fd;

static void *serve_health(void *arg) {
    (void)arg;
    while (atomic_load(&serving)) {
        int c = accept(health_fd, NULL, NULL);
        if (c < 0) continue;
        char buf[2048];
        ssize_t n = read(c, buf, sizeof buf);
        (void)n;
        const char *answer = atomic_load(&healthy)
                                 ? "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                                 : "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        ssize_t w = write(c, answer, strlen(answer));
        (void)w;
        close(c);
    }
    return NULL;
}

static peerlb_connection_status status_of(peerlb_list *list, const char *id) {
    peerlb_peer_status s = {PEERLB_CONNECTION_UNAVAILABLE, 0};
    peerlb_list_peer_status(list, id, strlen(id), &s);
    return s.connection_status;
}

static int wait_status(peerlb_list *list, const char *id, peerlb_connection_status want) {
    double deadline = t_now_s() + 30;
    while (status_of(list, id) != want) {
        if (t_now_s() > deadline) return 0;
        t_sleep_ms(5);
    }
    return 1;
}

static void test_http_probe(void) {
    char id[64];
    health_fd = listen_on(0, id, sizeof id);
    pthread_t thread;
    pthread_create(&thread, NULL, serve_health, NULL);
    peerlb_list_options *opts = NULL;
    peerlb_list *list = NULL;
    OK(peerlb_list_options_new(&opts));
    EXPECT_STATUS(peerlb_list_options_set_transport(opts, "http-probe?path=healthz"), PEERLB_INVALID_ARGUMENT);
    OK(peerlb_list_options_set_transport(opts, "grpc-health?service=x"));
    OK(peerlb_list_options_set_transport(opts, "http-probe?path=/healthz&interval_ms=50&unhealthy_threshold=2"));
    OK(peerlb_list_new(opts, NULL, &list));
    peerlb_list_options_free(opts);
    peerlb_peer_spec peer = {id, strlen(id), 1};
    OK(peerlb_list_update(list, &peer, 1, NULL, 0));
    OK(peerlb_list_start(list));
    EXPECT(wait_status(list, id, PEERLB_CONNECTION_AVAILABLE), "available while the server answers 200");
    atomic_store(&healthy, 0);
    EXPECT(wait_status(list, id, PEERLB_CONNECTION_UNAVAILABLE), "unavailable once it answers 503");
    atomic_store(&healthy, 1);
    EXPECT(wait_status(list, id, PEERLB_CONNECTION_AVAILABLE), "available again");
    peerlb_list_free(list);
    atomic_store(&serving, 0);
    shutdown(health_fd, SHUT_RDWR);
    close(health_fd);
    pthread_join(thread, NULL);
}

int main(void) {
    test_metrics_and_names();
    test_breakers();
    test_admin_endpoint();
    test_http_probe();
    return t_summary("ops");
}
