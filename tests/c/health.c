/* The tcp-probe transport (selected by spec string) against real listening sockets on
 * 127.0.0.1, and peerlb_upstream_* (when built). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testutil.h"

/* A listening socket on 127.0.0.1:port (0 = any); writes "127.0.0.1:port" into id. */
static int listen_on(int port, char *id, size_t cap) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((unsigned short)port);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 64) != 0) {
        perror("bind/listen");
        exit(2);
    }
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    snprintf(id, cap, "127.0.0.1:%d", ntohs(a.sin_port));
    return fd;
}

static int port_of(const char *id) { return atoi(strrchr(id, ':') + 1); }

static peerlb_connection_status status_of(peerlb_list *list, const char *id) {
    peerlb_peer_status st;
    if (peerlb_list_peer_status(list, id, strlen(id), &st) != PEERLB_OK) return 999;
    return st.connection_status;
}

/* Waits up to 5 s for the status; returns the seconds it took, or -1. */
static double wait_status(peerlb_list *list, const char *id, peerlb_connection_status want) {
    double t0 = t_now_s();
    while (t_now_s() - t0 < 5.0) {
        if (status_of(list, id) == want) return t_now_s() - t0;
        t_sleep_ms(5);
    }
    return -1;
}

static void test_tcp_probe(void) {
    char id[64];
    int fd = listen_on(0, id, sizeof id);
    peerlb_list_options *opts;
    peerlb_list *list = NULL;
    OK(peerlb_list_options_new(&opts));
    OK(peerlb_list_options_set_transport(opts, "tcp-probe?interval_ms=50&timeout_ms=50"));
    /* a spec and a vtable together are refused */
    peerlb_transport_vtable vt;
    memset(&vt, 0, sizeof vt);
    EXPECT_STATUS(peerlb_list_new(opts, &vt, &list), PEERLB_INVALID_ARGUMENT);
    OK(peerlb_list_new(opts, NULL, &list));
    peerlb_list_options_free(opts);
    char *json = NULL;
    OK(peerlb_list_introspect(list, &json));
    EXPECT(json && strstr(json, "\"transport\":\"tcp-probe\""), "introspection: %s", json);
    peerlb_string_free(json);

    peerlb_peer_spec spec = {id, strlen(id), 1};
    OK(peerlb_list_update(list, &spec, 1, NULL, 0));
    OK(peerlb_list_start(list));
    EXPECT(wait_status(list, id, PEERLB_CONNECTION_AVAILABLE) >= 0, "never available");
    peerlb_request req = {.timeout_ms = 1000};
    peerlb_choice c;
    OK(peerlb_list_choose(list, &req, &c));
    EXPECT(c.peer_len == strlen(id) && memcmp(c.peer, id, c.peer_len) == 0, "chose %s", id);
    OK(peerlb_choice_finish(&c, PEERLB_OUTCOME_OK, -1));

    close(fd); /* stops accepting */
    double down = wait_status(list, id, PEERLB_CONNECTION_UNAVAILABLE);
    EXPECT(down >= 0, "never unavailable");
    peerlb_request quick = {.timeout_ms = 20};
    EXPECT_STATUS(peerlb_list_choose(list, &quick, &c), PEERLB_TIMEOUT);

    fd = listen_on(port_of(id), id, sizeof id); /* accepts again */
    double up = wait_status(list, id, PEERLB_CONNECTION_AVAILABLE);
    EXPECT(up >= 0, "never available again");
    printf("tcp-probe (50 ms interval, 50 ms timeout): down detected in %.0f ms, up in %.0f ms\n",
           down * 1000, up * 1000);
    OK(peerlb_list_stop(list));
    peerlb_list_free(list);
    close(fd);
}

int main(void) {
    test_tcp_probe();
    return t_summary("health");
}
