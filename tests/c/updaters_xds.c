/* peerlb_updater_bind_xds from C against a real ADS control plane: tests/xds/ads_server.py
 * (grpcio + xds-protos), run here as a child process driven by JSON lines on its stdin.
 * The Python is $PEERLB_PYTHON, else .venv/bin/python (run from the repository root).
 * Needs a libpeerlb built with the `xds` feature (make test-updaters-c-xds builds one). */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

static FILE *to_server, *from_server;
static pid_t server_pid;

/* Starts the control plane; returns its port (0 on failure). */
static int start_server(void) {
    const char *py = getenv("PEERLB_PYTHON") ? getenv("PEERLB_PYTHON") : ".venv/bin/python";
    int in[2], out[2], port = 0;
    char line[256];
    if (pipe(in) != 0 || pipe(out) != 0) return 0;
    server_pid = fork();
    if (server_pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[1]);
        close(out[0]);
        execl(py, py, "tests/xds/ads_server.py", (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    to_server = fdopen(in[1], "w");
    from_server = fdopen(out[0], "r");
    if (fgets(line, sizeof line, from_server) && sscanf(line, "port %d", &port) == 1) return port;
    return 0;
}

/* Sends one command and reads its one-line answer into `answer`. */
static void command(const char *json, char *answer, size_t size) {
    fprintf(to_server, "%s\n", json);
    fflush(to_server);
    if (!fgets(answer, (int)size, from_server)) answer[0] = 0;
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
        while (!(cond) && t_now_s() < until_) t_sleep_ms(1);                       \
        EXPECT(cond, "waited 10 s");                                               \
    } while (0)

int main(void) {
    char server[64], answer[65536];
    const char *clusters[] = {"a", "b"}, *empty[] = {""};
    int port = start_server();
    double t0, deadline;
    peerlb_list *l = NULL;
    peerlb_updater *u = NULL;
    peerlb_xds_options o;
    peerlb_status code = PEERLB_OK;
    char *msg = NULL;

    if (!port) {
        fprintf(stderr, "FAIL: tests/xds/ads_server.py did not start (grpcio, xds-protos in .venv?)\n");
        return 1;
    }
    snprintf(server, sizeof server, "127.0.0.1:%d", port);
    command("{\"op\":\"set\",\"version\":\"v1\",\"clusters\":{"
            "\"a\":[{\"addr\":\"10.0.0.1\",\"port\":80,\"weight\":4,\"region\":\"r\",\"zone\":\"z\"}],"
            "\"b\":[{\"addr\":\"10.0.0.2\",\"port\":80,\"priority\":1},"
            "{\"addr\":\"10.0.0.3\",\"port\":80,\"health\":\"DRAINING\"}]}}",
            answer, sizeof answer);
    {
        peerlb_list_options *lo;
        peerlb_list_options_new(&lo);
        peerlb_list_new(lo, NULL, &l);
        peerlb_list_options_free(lo);
    }
    memset(&o, 0, sizeof o);
    EXPECT_STATUS(peerlb_updater_bind_xds(l, &o, &u), PEERLB_INVALID_ARGUMENT); /* no server */
    o.server = server;
    EXPECT_STATUS(peerlb_updater_bind_xds(l, &o, &u), PEERLB_INVALID_ARGUMENT); /* no clusters */
    o.clusters = empty;
    o.n_clusters = 1;
    EXPECT_STATUS(peerlb_updater_bind_xds(l, &o, &u), PEERLB_INVALID_ARGUMENT); /* "" */
    o.clusters = NULL;
    o.n_clusters = 2;
    EXPECT_STATUS(peerlb_updater_bind_xds(l, &o, &u), PEERLB_INVALID_ARGUMENT); /* NULL array */
    o.clusters = clusters;
    o.server = "https://127.0.0.1:1";
    EXPECT_STATUS(peerlb_updater_bind_xds(l, &o, &u), PEERLB_INVALID_ARGUMENT); /* no TLS */
    o.server = server;
    EXPECT_STATUS(peerlb_updater_bind_xds(NULL, &o, &u), PEERLB_INVALID_ARGUMENT);
    EXPECT_STATUS(peerlb_updater_bind_xds(l, NULL, &u), PEERLB_INVALID_ARGUMENT);
    o.node_id = "c-node";
    o.backoff_initial_ms = 50;
    o.backoff_max_ms = 200;
    OK(peerlb_updater_bind_xds(l, &o, &u));
    OK(peerlb_updater_start(u));
    WAIT_FOR(list_len(l) == 2 && list_has(l, "\"weight\":4") && list_has(l, "\"r/z\""));
    EXPECT(!list_has(l, "10.0.0.3"), "a draining endpoint is not offered");

    t0 = t_now_s();
    command("{\"op\":\"set\",\"version\":\"v2\",\"clusters\":{"
            "\"a\":[{\"addr\":\"10.0.0.1\",\"port\":80,\"health\":\"DRAINING\"}],"
            "\"b\":[{\"addr\":\"10.0.0.4\",\"port\":81}]}}",
            answer, sizeof answer);
    WAIT_FOR(list_len(l) == 1 && list_has(l, "\"10.0.0.4:81\""));
    printf("c: xds change reached the list in %.1f ms\n", (t_now_s() - t0) * 1000);

    /* the ACK goes out after the apply: wait for it */
    WAIT_FOR((command("{\"op\":\"requests\"}", answer, sizeof answer),
              strstr(answer, "\"version\": \"v2\"") != NULL));
    EXPECT(strstr(answer, "\"node_id\": \"c-node\"") != NULL, "node id sent: %.200s", answer);

    /* the control plane goes away: the last good set stays, the failure is reported */
    command("{\"op\":\"quit\"}", answer, sizeof answer);
    waitpid(server_pid, NULL, 0);
    deadline = t_now_s() + 10;
    do {
        OK(peerlb_updater_last_error(u, &code, &msg));
        if (msg) break;
        t_sleep_ms(10);
    } while (t_now_s() < deadline);
    EXPECT(code == PEERLB_SOURCE_FAILED, "code %s", peerlb_status_str(code));
    peerlb_string_free(msg);
    EXPECT(list_len(l) == 1, "last good set kept");
    peerlb_updater_free(u);
    peerlb_list_free(l);
    fclose(to_server);
    fclose(from_server);
    return t_summary("updaters_xds");
}
