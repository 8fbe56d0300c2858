/* Replays every tests/conformance/ JSON scenario through the C API (the format is in
 * tests/conformance/README.md; this runner behaves like core/tests/conformance.rs).
 *
 * The scripted transport is written here in C on top of peerlb_transport_vtable: it
 * reports its initial status from inside retain (re-entering peerlb), keeps an owned
 * subscriber per peer (peerlb_subscriber_clone) for set_status steps, and the
 * while_waiting steps run while another pthread blocks in peerlb_list_choose.
 *
 * Sessions are peerlb_session handles; peerlb_session_close frees one, so a step on a
 * session the scenario closed (or dropped) before is answered here as the closed session
 * it is (PEERLB_ALREADY_FINISHED, open and bound false) without touching freed memory.
 *
 * Usage: conformance DIR   (prints "conformance: N passed, M failed") */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "peerlb.h"

/* The fewest scenarios a run may find (the other runners use the same minimum). */
#define MIN_SCENARIOS 40

/* ---------- scripted transport ---------- */

typedef struct {
    char *id;
    peerlb_subscriber *sub; /* owned (peerlb_subscriber_clone) */
} sub_entry;

typedef struct run run;

typedef struct scripted {
    long initial; /* PEERLB_CONNECTION_*, or -1 for null */
    const json_value *fail_retain, *fail_release;
    pthread_mutex_t mu;
    char **calls;
    size_t n_calls;
    sub_entry *subs;
    size_t n_subs;
    run *owner;
} scripted;

struct run {
    const char *file;
    peerlb_list *list;
    scripted *transport; /* owned by list; NULL once freed */
    int transports_made, transports_freed;
    struct {
        char *name;
        peerlb_choice choice; /* cleared by finishing; kept so a second finish can be tried */
        int finished;         /* finished or dropped: finishing again is already-finished */
    } held[64];
    size_t n_held;
    char ctx[256];
    peerlb_manual_clock *clock;  /* `new` with clock: "manual" */
    peerlb_subscription *sub;    /* the list's events, logged into events[] */
    peerlb_retry_budget *budget; /* from a retry_budget step */
    pthread_mutex_t ev_mu;       /* callbacks may run on other threads (timers, waiters) */
    char **events;
    size_t n_events;
    struct {
        char *name;
        peerlb_session *session; /* NULL once closed (freed) */
    } sessions[64];
    size_t n_sessions;
    peerlb_subscription *session_sub; /* the list's session events, logged below */
    char **session_events;
    size_t n_session_events;
};

static int in_list(const json_value *arr, const char *id) {
    if (!arr || arr->type != JSON_ARRAY) return 0;
    for (size_t i = 0; i < arr->len; i++)
        if (arr->items[i]->type == JSON_STRING && strcmp(arr->items[i]->string, id) == 0) return 1;
    return 0;
}

static void record_call(scripted *s, const char *what, const char *id) {
    size_t n = strlen(what) + strlen(id) + 2;
    char *line = malloc(n);
    snprintf(line, n, "%s %s", what, id);
    pthread_mutex_lock(&s->mu);
    s->calls = realloc(s->calls, (s->n_calls + 1) * sizeof *s->calls);
    s->calls[s->n_calls++] = line;
    pthread_mutex_unlock(&s->mu);
}

static int scripted_retain(void *ud, const char *id, size_t len, const peerlb_subscriber *sub) {
    scripted *s = ud;
    if (strlen(id) != len) return PEERLB_INVALID_ARGUMENT; /* ids arrive NUL-terminated too */
    record_call(s, "retain", id);
    if (in_list(s->fail_retain, id)) return PEERLB_TRANSPORT_FAILED;
    peerlb_subscriber *owned = NULL;
    if (peerlb_subscriber_clone(sub, &owned) != PEERLB_OK) return PEERLB_INVALID_ARGUMENT;
    peerlb_subscriber *old = NULL;
    pthread_mutex_lock(&s->mu);
    size_t i;
    for (i = 0; i < s->n_subs; i++)
        if (strcmp(s->subs[i].id, id) == 0) break;
    if (i == s->n_subs) {
        s->subs = realloc(s->subs, (s->n_subs + 1) * sizeof *s->subs);
        s->subs[i].id = strdup(id);
        s->subs[i].sub = NULL;
        s->n_subs++;
    }
    old = s->subs[i].sub;
    s->subs[i].sub = owned;
    pthread_mutex_unlock(&s->mu);
    peerlb_subscriber_free(old);
    if (s->initial >= 0) {
        /* Re-enters peerlb from inside retain, through the borrowed subscriber. */
        peerlb_status st = peerlb_subscriber_set_status(sub, (peerlb_connection_status)s->initial, NULL);
        if (st != PEERLB_OK) return st;
    }
    return 0;
}

static int scripted_release(void *ud, const char *id, size_t len, const peerlb_subscriber *sub) {
    scripted *s = ud;
    (void)sub;
    if (strlen(id) != len) return PEERLB_INVALID_ARGUMENT;
    record_call(s, "release", id);
    return in_list(s->fail_release, id) ? PEERLB_TRANSPORT_FAILED : 0;
}

static void scripted_free(void *ud) {
    scripted *s = ud;
    for (size_t i = 0; i < s->n_calls; i++) free(s->calls[i]);
    free(s->calls);
    for (size_t i = 0; i < s->n_subs; i++) {
        free(s->subs[i].id);
        peerlb_subscriber_free(s->subs[i].sub);
    }
    free(s->subs);
    pthread_mutex_destroy(&s->mu);
    if (s->owner) {
        s->owner->transports_freed++;
        if (s->owner->transport == s) s->owner->transport = NULL;
    }
    free(s);
}

/* ---------- helpers ---------- */

static int failf(run *r, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "FAIL %s: %s: ", r->file, r->ctx);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    return -1;
}

static long num_or(const json_value *step, const char *key, long dflt) {
    const json_value *v = json_get(step, key);
    return v && v->type == JSON_NUMBER ? (long)v->number : dflt;
}

static int bool_or(const json_value *step, const char *key, int dflt) {
    const json_value *v = json_get(step, key);
    return v && v->type == JSON_BOOL ? v->boolean : dflt;
}

/* Checks a call's status against the step's "error"/"errors"; returns 1 when the call
 * succeeded as expected, 0 when it failed as expected, -1 on a mismatch. */
static int check_result(run *r, const json_value *step, peerlb_status st) {
    const char *want = json_get_str(step, "error");
    if (st == PEERLB_OK) {
        if (want) return failf(r, "expected error %s, got success", want);
        return 1;
    }
    const char *msg = peerlb_last_error_message();
    if (!want) return failf(r, "unexpected error %s: %s", peerlb_status_str(st), msg);
    if (strcmp(peerlb_status_str(st), want) != 0)
        return failf(r, "wrong error code %s, want %s (%s)", peerlb_status_str(st), want, msg);
    const json_value *errors = json_get(step, "errors");
    if (errors && errors->type == JSON_ARRAY) {
        peerlb_status codes[64];
        size_t n = peerlb_last_error_codes(codes, 64);
        if (n != errors->len) return failf(r, "%zu individual errors, want %zu (%s)", n, errors->len, msg);
        for (size_t i = 0; i < n; i++)
            if (strcmp(peerlb_status_str(codes[i]), errors->items[i]->string) != 0)
                return failf(r, "individual error %zu is %s, want %s", i, peerlb_status_str(codes[i]),
                             errors->items[i]->string);
    }
    return 0;
}

static long parse_status(const char *s) {
    if (!s) return -2;
    if (strcmp(s, "available") == 0) return PEERLB_CONNECTION_AVAILABLE;
    if (strcmp(s, "connecting") == 0) return PEERLB_CONNECTION_CONNECTING;
    if (strcmp(s, "unavailable") == 0) return PEERLB_CONNECTION_UNAVAILABLE;
    return -2;
}

static long parse_outcome(const char *s) {
    if (!s || strcmp(s, "ok") == 0) return PEERLB_OUTCOME_OK;
    if (strcmp(s, "failure") == 0) return PEERLB_OUTCOME_FAILURE;
    if (strcmp(s, "declined") == 0) return PEERLB_OUTCOME_DECLINED;
    if (strcmp(s, "cancelled") == 0) return PEERLB_OUTCOME_CANCELLED;
    return -1;
}

static void clear_events(run *r) {
    pthread_mutex_lock(&r->ev_mu);
    for (size_t i = 0; i < r->n_events; i++) free(r->events[i]);
    free(r->events);
    r->events = NULL;
    r->n_events = 0;
    pthread_mutex_unlock(&r->ev_mu);
}

/* The list's event callback: logs "<kind> <peer>". */
static void log_event(const peerlb_event *e, void *user_data) {
    run *r = user_data;
    const char *kind = peerlb_event_kind_str(e->kind);
    if (strlen(e->peer) != e->peer_len || e->detail == NULL) return; /* logged as missing */
    size_t n = strlen(kind) + e->peer_len + 2;
    char *line = malloc(n);
    snprintf(line, n, "%s %.*s", kind, (int)e->peer_len, e->peer);
    pthread_mutex_lock(&r->ev_mu);
    r->events = realloc(r->events, (r->n_events + 1) * sizeof *r->events);
    r->events[r->n_events++] = line;
    pthread_mutex_unlock(&r->ev_mu);
}

/* The session event callback: logs "<kind> <session> <peer>". */
static void log_session_event(const peerlb_session_event *e, void *user_data) {
    run *r = user_data;
    const char *kind = peerlb_session_event_kind_str(e->kind);
    if (strlen(e->peer) != e->peer_len || e->reason == NULL) return; /* logged as missing */
    size_t n = strlen(kind) + e->peer_len + 32;
    char *line = malloc(n);
    snprintf(line, n, "%s %llu %.*s", kind, (unsigned long long)e->session, (int)e->peer_len, e->peer);
    pthread_mutex_lock(&r->ev_mu);
    r->session_events = realloc(r->session_events, (r->n_session_events + 1) * sizeof *r->session_events);
    r->session_events[r->n_session_events++] = line;
    pthread_mutex_unlock(&r->ev_mu);
}

static void clear_session_events(run *r) {
    pthread_mutex_lock(&r->ev_mu);
    for (size_t i = 0; i < r->n_session_events; i++) free(r->session_events[i]);
    free(r->session_events);
    r->session_events = NULL;
    r->n_session_events = 0;
    pthread_mutex_unlock(&r->ev_mu);
}

static void close_sessions(run *r) {
    for (size_t i = 0; i < r->n_sessions; i++) {
        if (r->sessions[i].session) peerlb_session_close(r->sessions[i].session);
        free(r->sessions[i].name);
    }
    r->n_sessions = 0;
}

static void free_list(run *r) {
    close_sessions(r); /* sessions keep their list alive; closing them first is tidier */
    peerlb_list_free(r->list); /* releases peers, then runs scripted_free */
    r->list = NULL;
    peerlb_subscription_free(r->session_sub);
    r->session_sub = NULL;
    clear_session_events(r);
    /* After the list: either order is allowed (bad_input tests the other one). Once this
     * returns, log_event is not running and never runs again. */
    peerlb_subscription_free(r->sub);
    r->sub = NULL;
    peerlb_retry_budget_free(r->budget);
    r->budget = NULL;
    peerlb_manual_clock_free(r->clock);
    r->clock = NULL;
    clear_events(r);
}

static void cancel_held(run *r) {
    for (size_t i = 0; i < r->n_held; i++) {
        /* Finishing after the list was freed is safe by design. */
        if (!r->held[i].finished) peerlb_choice_finish(&r->held[i].choice, PEERLB_OUTCOME_CANCELLED, -1);
        free(r->held[i].name);
    }
    r->n_held = 0;
}

/* The held choice called `name`, or NULL. */
static size_t held_index(run *r, const char *name) {
    for (size_t i = 0; i < r->n_held; i++)
        if (strcmp(r->held[i].name, name) == 0) return i;
    return SIZE_MAX;
}

/* Holds `choice` as `name` (a name used before is reused, like the Rust runner's map: a
 * live choice there is dropped, i.e. cancelled). */
static int hold(run *r, const char *name, peerlb_choice choice) {
    size_t i = held_index(r, name);
    if (i == SIZE_MAX) {
        if (r->n_held == 64) {
            peerlb_choice_finish(&choice, PEERLB_OUTCOME_CANCELLED, -1);
            return failf(r, "too many held choices");
        }
        i = r->n_held++;
        r->held[i].name = strdup(name);
    } else if (!r->held[i].finished) {
        peerlb_choice_finish(&r->held[i].choice, PEERLB_OUTCOME_CANCELLED, -1);
    }
    r->held[i].choice = choice;
    r->held[i].finished = 0;
    return 0;
}

static int need_list(run *r) {
    if (!r->list) return failf(r, "scenario must start with a successful `new` step");
    return 0;
}

/* ---------- steps ---------- */

static int step(run *r, const char *ctx, const json_value *s);
static int check_remote(run *r, const json_value *s);

static int op_new(run *r, const json_value *s) {
    free_list(r);
    cancel_held(r);
    peerlb_list_options *opts = NULL;
    if (peerlb_list_options_new(&opts) != PEERLB_OK) return failf(r, "options_new failed");
    peerlb_status st = peerlb_list_options_set_shuffle(opts, bool_or(s, "shuffle", 0));
    const json_value *seed = json_get(s, "seed");
    if (st == PEERLB_OK && seed && seed->type == JSON_NUMBER)
        st = peerlb_list_options_set_seed(opts, (uint64_t)seed->number);
    if (st == PEERLB_OK && json_get(s, "fail_fast"))
        st = peerlb_list_options_set_fail_fast(opts, bool_or(s, "fail_fast", 0));
    if (st == PEERLB_OK && json_get(s, "capacity"))
        st = peerlb_list_options_set_capacity(opts, (size_t)num_or(s, "capacity", 0));
    if (st == PEERLB_OK && json_get_str(s, "local_zone"))
        st = peerlb_list_options_set_local_zone(opts, json_get_str(s, "local_zone"));
    if (st == PEERLB_OK && json_get(s, "min_cluster_size"))
        st = peerlb_list_options_set_min_cluster_size(opts, (size_t)num_or(s, "min_cluster_size", 0));
    const json_value *factor = json_get(s, "overprovisioning_factor");
    if (st == PEERLB_OK && factor && factor->type == JSON_NUMBER)
        st = peerlb_list_options_set_overprovisioning_factor(opts, factor->number);
    const char *strategy = json_get_str(s, "strategy");
    if (st == PEERLB_OK) st = peerlb_list_options_set_strategy(opts, strategy ? strategy : "round-robin");
    const char *name = json_get_str(s, "name");
    if (st == PEERLB_OK && name) st = peerlb_list_options_set_name(opts, name);
    const json_value *max_pending = json_get(s, "max_pending");
    if (st == PEERLB_OK && max_pending && max_pending->type == JSON_NUMBER)
        st = peerlb_list_options_set_max_pending(opts, (size_t)max_pending->number);
    const json_value *per_peer = json_get(s, "max_pending_per_peer");
    if (st == PEERLB_OK && per_peer && per_peer->type == JSON_NUMBER)
        st = peerlb_list_options_set_max_pending_per_peer(opts, (size_t)per_peer->number);
    if (st == PEERLB_OK && json_get(s, "metrics"))
        st = peerlb_list_options_set_metrics(opts, bool_or(s, "metrics", 1));
    if (st == PEERLB_OK && json_get(s, "peer_labels"))
        st = peerlb_list_options_set_peer_labels(opts, bool_or(s, "peer_labels", 1));

    /* ejection: absent = the default policy; false = off; or an object of options, passed
     * as the spec string "key=value&key=value". */
    const json_value *ej = json_get(s, "ejection");
    if (st == PEERLB_OK && ej) {
        char spec[512] = "";
        if (ej->type == JSON_BOOL) {
            snprintf(spec, sizeof spec, "%s", ej->boolean ? "default" : "off");
        } else if (ej->type == JSON_OBJECT) {
            size_t used = 0;
            for (size_t k = 0; k < ej->len && used < sizeof spec; k++) {
                const json_value *v = ej->items[k];
                const char *sep = k ? "&" : "";
                if (v->type == JSON_STRING)
                    used += (size_t)snprintf(spec + used, sizeof spec - used, "%s%s=%s", sep, ej->keys[k], v->string);
                else
                    used += (size_t)snprintf(spec + used, sizeof spec - used, "%s%s=%.17g", sep, ej->keys[k], v->number);
            }
        } else {
            peerlb_list_options_free(opts);
            return failf(r, "bad ejection");
        }
        st = peerlb_list_options_set_ejection(opts, spec);
    }
    const char *clock = json_get_str(s, "clock");
    if (clock && strcmp(clock, "manual") == 0) {
        if (peerlb_manual_clock_new(&r->clock) != PEERLB_OK) {
            peerlb_list_options_free(opts);
            return failf(r, "manual_clock_new failed");
        }
        if (st == PEERLB_OK) st = peerlb_list_options_set_manual_clock(opts, r->clock);
    } else if (clock && strcmp(clock, "real") != 0) {
        peerlb_list_options_free(opts);
        return failf(r, "unknown clock %s", clock);
    }

    const json_value *t = json_get(s, "transport");
    peerlb_transport_vtable vt;
    int use_vt = 0;
    scripted *sc = NULL;
    if (t && t->type == JSON_OBJECT) {
        const char *kind = json_get_str(t, "kind");
        if (!kind || strcmp(kind, "scripted") != 0) {
            peerlb_list_options_free(opts);
            return failf(r, "unknown transport kind");
        }
        sc = calloc(1, sizeof *sc);
        pthread_mutex_init(&sc->mu, NULL);
        const json_value *init = json_get(t, "initial_status");
        if (!init) sc->initial = PEERLB_CONNECTION_AVAILABLE;
        else if (init->type == JSON_NULL) sc->initial = -1;
        else sc->initial = parse_status(init->string);
        if (sc->initial == -2) {
            free(sc);
            peerlb_list_options_free(opts);
            return failf(r, "bad initial_status");
        }
        sc->fail_retain = json_get(t, "fail_retain");
        sc->fail_release = json_get(t, "fail_release");
        sc->owner = r;
        vt.userdata = sc;
        vt.name = "scripted";
        vt.retain = scripted_retain;
        vt.release = scripted_release;
        vt.free_userdata = scripted_free;
        use_vt = 1;
    } else if (t && !(t->type == JSON_STRING && strcmp(t->string, "always-available") == 0)) {
        peerlb_list_options_free(opts);
        return failf(r, "unknown transport");
    }
    if (st == PEERLB_OK) st = peerlb_list_new(opts, use_vt ? &vt : NULL, &r->list);
    peerlb_list_options_free(opts);
    if (st == PEERLB_OK && sc) {
        r->transport = sc;
        r->transports_made++;
    } else if (sc) {
        sc->owner = NULL;
        scripted_free(sc); /* a failed peerlb_list_new leaves userdata to us */
    }
    int rc = check_result(r, s, st);
    if (rc < 0) return -1;
    if (rc == 1 && peerlb_list_subscribe(r->list, log_event, r, &r->sub) != PEERLB_OK)
        return failf(r, "subscribe failed: %s", peerlb_last_error_message());
    if (rc == 1 && peerlb_list_subscribe_sessions(r->list, log_session_event, r, &r->session_sub) != PEERLB_OK)
        return failf(r, "subscribe_sessions failed: %s", peerlb_last_error_message());
    return 0;
}

static int op_update(run *r, const json_value *s) {
    if (need_list(r)) return -1;
    const json_value *add = json_get(s, "add"), *rem = json_get(s, "remove");
    size_t na = add && add->type == JSON_ARRAY ? add->len : 0;
    size_t nr = rem && rem->type == JSON_ARRAY ? rem->len : 0;
    peerlb_placed_peer adds[64];
    memset(adds, 0, sizeof adds);
    peerlb_peer_id removes[64];
    if (na > 64 || nr > 64) return failf(r, "too many peers for this runner");
    for (size_t i = 0; i < na; i++) {
        const json_value *a = add->items[i];
        if (a->type == JSON_STRING) {
            adds[i].id = a->string;
            adds[i].id_len = a->len;
            adds[i].weight = 1;
        } else if (a->type == JSON_OBJECT && json_get_str(a, "id")) {
            const json_value *id = json_get(a, "id");
            adds[i].id = id->string;
            adds[i].id_len = id->len;
            adds[i].weight = (uint32_t)num_or(a, "weight", 1);
            const json_value *zone = json_get(a, "zone");
            if (zone && zone->type == JSON_STRING) {
                adds[i].zone = zone->string;
                adds[i].zone_len = zone->len;
            }
            adds[i].priority = (uint32_t)num_or(a, "priority", 0);
        } else {
            return failf(r, "bad addition");
        }
    }
    for (size_t i = 0; i < nr; i++) {
        removes[i].id = rem->items[i]->string;
        removes[i].len = rem->items[i]->len;
    }
    return check_result(r, s, peerlb_list_update_placed(r->list, adds, na, removes, nr)) < 0 ? -1 : 0;
}

static int op_set_status(run *r, const json_value *s) {
    const char *peer = json_get_str(s, "peer");
    long status = parse_status(json_get_str(s, "status"));
    if (!r->transport) return failf(r, "set_status needs the scripted transport");
    if (!peer || status < 0) return failf(r, "bad set_status step");
    peerlb_subscriber *sub = NULL;
    pthread_mutex_lock(&r->transport->mu);
    for (size_t i = 0; i < r->transport->n_subs; i++)
        if (strcmp(r->transport->subs[i].id, peer) == 0) sub = r->transport->subs[i].sub;
    pthread_mutex_unlock(&r->transport->mu);
    if (!sub) return failf(r, "%s was never retained", peer);
    bool accepted = false;
    peerlb_status st = peerlb_subscriber_set_status(sub, (peerlb_connection_status)status, &accepted);
    if (st != PEERLB_OK) return failf(r, "set_status failed: %s", peerlb_last_error_message());
    const json_value *want = json_get(s, "accepted");
    if (want && want->type == JSON_BOOL && (int)accepted != want->boolean)
        return failf(r, "accepted is %d, want %d", accepted, want->boolean);
    return 0;
}

typedef struct {
    peerlb_list *list;
    peerlb_request req;
    peerlb_choice choice;
    peerlb_status status;
    char message[512];
    peerlb_status codes[16];
    size_t n_codes;
} waiter;

static void *wait_choose(void *arg) {
    waiter *w = arg;
    w->status = peerlb_list_choose(w->list, &w->req, &w->choice);
    if (w->status != PEERLB_OK) {
        /* The last error is per thread: carry it over to the checking thread. */
        snprintf(w->message, sizeof w->message, "%s", peerlb_last_error_message());
        w->n_codes = peerlb_last_error_codes(w->codes, 16);
    }
    return NULL;
}

static int check_peer(run *r, const json_value *s, const peerlb_choice *c) {
    const char *id;
    size_t len;
    if (peerlb_choice_peer(c, &id, &len) != PEERLB_OK) return failf(r, "choice_peer failed");
    if (id != c->peer || len != c->peer_len) return failf(r, "choice_peer disagrees with the struct");
    const char *want = json_get_str(s, "expect");
    if (want && (strlen(want) != len || memcmp(want, id, len) != 0))
        return failf(r, "chose %.*s, want %s", (int)len, id, want);
    const json_value *any = json_get(s, "expect_one_of");
    if (any && any->type == JSON_ARRAY) {
        int found = 0;
        for (size_t i = 0; i < any->len; i++)
            if (any->items[i]->len == len && memcmp(any->items[i]->string, id, len) == 0) found = 1;
        if (!found) return failf(r, "chose %.*s, not one of the expected", (int)len, id);
    }
    return 0;
}

static int op_choose(run *r, const json_value *s) {
    if (need_list(r)) return -1;
    peerlb_request req = {PEERLB_NO_TIMEOUT, NULL, 0};
    const json_value *timeout = json_get(s, "timeout_ms");
    if (timeout && timeout->type == JSON_NUMBER) req.timeout_ms = (int64_t)timeout->number;
    const json_value *key = json_get(s, "shard_key");
    if (key && key->type == JSON_STRING) {
        req.shard_key = (const uint8_t *)key->string;
        req.shard_key_len = key->len;
    }
    peerlb_choice choice = {0};
    peerlb_status st;
    const json_value *during = json_get(s, "while_waiting");
    if (during && during->type == JSON_ARRAY) {
        waiter w = {.list = r->list, .req = req};
        pthread_t th;
        if (pthread_create(&th, NULL, wait_choose, &w) != 0) return failf(r, "pthread_create");
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
        char outer[256];
        snprintf(outer, sizeof outer, "%s", r->ctx);
        int rc = 0;
        for (size_t i = 0; i < during->len && rc == 0; i++) {
            char inner[300];
            snprintf(inner, sizeof inner, "%s.while_waiting[%zu]", outer, i);
            rc = step(r, inner, during->items[i]);
        }
        pthread_join(th, NULL);
        snprintf(r->ctx, sizeof r->ctx, "%s", outer);
        if (rc != 0) {
            if (w.status == PEERLB_OK) peerlb_choice_finish(&w.choice, PEERLB_OUTCOME_CANCELLED, -1);
            return -1;
        }
        st = w.status;
        choice = w.choice;
        if (st != PEERLB_OK) {
            const char *want = json_get_str(s, "error");
            if (!want) return failf(r, "unexpected error %s: %s", peerlb_status_str(st), w.message);
            if (strcmp(want, peerlb_status_str(st)) != 0)
                return failf(r, "wrong error %s, want %s (%s)", peerlb_status_str(st), want, w.message);
            return 0;
        }
    } else {
        st = peerlb_list_choose(r->list, &req, &choice);
    }
    int res = check_result(r, s, st);
    if (res <= 0) return res;
    if (check_peer(r, s, &choice) != 0) {
        peerlb_choice_finish(&choice, PEERLB_OUTCOME_CANCELLED, -1);
        return -1;
    }
    const char *name = json_get_str(s, "hold");
    if (name) return hold(r, name, choice);
    long outcome = parse_outcome(json_get_str(s, "outcome"));
    if (outcome < 0) {
        peerlb_choice_finish(&choice, PEERLB_OUTCOME_CANCELLED, -1);
        return failf(r, "bad outcome");
    }
    if (peerlb_choice_finish(&choice, (peerlb_outcome)outcome, -1) != PEERLB_OK) return failf(r, "finish failed");
    return 0;
}

static int op_choose_many(run *r, const json_value *s) {
    if (need_list(r)) return -1;
    long count = num_or(s, "count", -1);
    if (count < 0 || count > 100000) return failf(r, "bad count");
    peerlb_request req = {num_or(s, "timeout_ms", PEERLB_NO_TIMEOUT), NULL, 0};
    long outcome = parse_outcome(json_get_str(s, "outcome"));
    if (outcome < 0) return failf(r, "bad outcome");
    char **got = calloc((size_t)count + 1, sizeof *got);
    int rc = 0;
    for (long i = 0; i < count; i++) {
        peerlb_choice c;
        peerlb_status st = peerlb_list_choose(r->list, &req, &c);
        if (st != PEERLB_OK) {
            rc = failf(r, "choose #%ld failed: %s: %s", i, peerlb_status_str(st), peerlb_last_error_message());
            count = i;
            break;
        }
        got[i] = strndup(c.peer, c.peer_len);
        peerlb_choice_finish(&c, (peerlb_outcome)outcome, -1);
    }
    const json_value *order = json_get(s, "expect");
    if (rc == 0 && order && order->type == JSON_ARRAY) {
        if ((long)order->len != count) rc = failf(r, "order: %ld choices, want %zu", count, order->len);
        for (long i = 0; rc == 0 && i < count; i++)
            if (strcmp(order->items[i]->string, got[i]) != 0)
                rc = failf(r, "order: choice %ld is %s, want %s", i, got[i], order->items[i]->string);
    }
    const json_value *counts = json_get(s, "expect_counts");
    if (rc == 0 && counts && counts->type == JSON_OBJECT) {
        long total = 0;
        for (size_t k = 0; rc == 0 && k < counts->len; k++) {
            long n = 0, want = (long)counts->items[k]->number;
            for (long i = 0; i < count; i++) n += strcmp(got[i], counts->keys[k]) == 0;
            if (n != want) rc = failf(r, "counts: %s chosen %ld times, want %ld", counts->keys[k], n, want);
            total += n;
        }
        if (rc == 0 && total != count) rc = failf(r, "counts: peers chosen that are not in expect_counts");
    }
    const json_value *only = json_get(s, "expect_only");
    for (long i = 0; rc == 0 && only && i < count; i++)
        if (!in_list(only, got[i])) rc = failf(r, "chose %s, not in expect_only", got[i]);
    /* expect_all: every pick is one of these, and each of them is picked at least once. */
    const json_value *all = json_get(s, "expect_all");
    if (rc == 0 && all && all->type != JSON_ARRAY) rc = failf(r, "expect_all is not an array");
    for (long i = 0; rc == 0 && all && i < count; i++)
        if (!in_list(all, got[i])) rc = failf(r, "chose %s, not in expect_all", got[i]);
    for (size_t k = 0; rc == 0 && all && k < all->len; k++) {
        long n = 0;
        for (long i = 0; i < count; i++) n += strcmp(got[i], all->items[k]->string) == 0;
        if (n == 0) rc = failf(r, "never chose %s in %ld picks (expect_all)", all->items[k]->string, count);
    }
    for (long i = 0; i < count; i++) free(got[i]);
    free(got);
    return rc;
}

/* finish (or drop: finish as cancelled) a held choice. A name stays known after its choice
 * was finished or dropped; finishing it again goes through peerlb_choice_finish on the
 * cleared struct, which must fail with already-finished and change nothing. */
static int op_finish(run *r, const json_value *s, int drop) {
    const char *name = json_get_str(s, "choice");
    if (!name) return failf(r, "no choice name");
    size_t i = held_index(r, name);
    if (i == SIZE_MAX) return failf(r, "no held choice %s", name);
    long outcome = drop ? PEERLB_OUTCOME_CANCELLED : parse_outcome(json_get_str(s, "outcome"));
    if (outcome < 0) return failf(r, "bad outcome");
    long latency_ms = num_or(s, "latency_ms", -1);
    int was_finished = r->held[i].finished;
    /* The backend's load report: ORCA text (parsed by peerlb_load_report_parse) or an
     * object of fields; a bad one fails the step before the choice is touched. */
    const json_value *load = json_get(s, "load");
    peerlb_load_report report;
    peerlb_status st = PEERLB_OK;
    if (load) {
        peerlb_load_report_init(&report);
        if (load->type == JSON_STRING) {
            st = peerlb_load_report_parse(load->string, &report);
        } else if (load->type == JSON_OBJECT) {
            const char *fields[] = {"requests_in_flight", "utilization", "qps", "eps"};
            double *slots[] = {&report.requests_in_flight, &report.utilization, &report.qps, &report.eps};
            for (size_t f = 0; f < 4; f++) {
                const json_value *v = json_get(load, fields[f]);
                if (v && v->type == JSON_NUMBER) *slots[f] = v->number;
            }
        } else {
            return failf(r, "load is neither text nor an object");
        }
        if (st != PEERLB_OK) return check_result(r, s, st) < 0 ? -1 : 0;
    }
    st = peerlb_choice_finish_with_load(&r->held[i].choice, (peerlb_outcome)outcome,
                                        latency_ms < 0 ? -1 : latency_ms * 1000,
                                        load ? &report : NULL);
    if (was_finished && st == PEERLB_OK) return failf(r, "a finished choice was finished again");
    if (!was_finished && st == PEERLB_OK) r->held[i].finished = 1;
    if (drop) return st == PEERLB_OK ? 0 : failf(r, "drop failed: %s", peerlb_last_error_message());
    return check_result(r, s, st) < 0 ? -1 : 0;
}

/* list_backends: the JSON array must have the expected length and order, each element
 * with the given keys equal. */
static int op_list_backends(run *r, const json_value *s) {
    if (need_list(r)) return -1;
    const json_value *want = json_get(s, "expect");
    if (!want || want->type != JSON_ARRAY) return failf(r, "list_backends needs an expect array");
    char *text = NULL;
    peerlb_status st = peerlb_list_backends(r->list, &text);
    if (st != PEERLB_OK) return failf(r, "list_backends failed: %s", peerlb_last_error_message());
    char err[128];
    json_value *got = json_parse(text, err, sizeof err);
    int rc = 0;
    if (!got || got->type != JSON_ARRAY) rc = failf(r, "not a JSON array (%s): %s", got ? "" : err, text);
    else if (got->len != want->len) rc = failf(r, "%zu backends, want %zu: %s", got->len, want->len, text);
    for (size_t i = 0; rc == 0 && i < want->len; i++) {
        const json_value *w = want->items[i];
        if (w->type != JSON_OBJECT) rc = failf(r, "expect[%zu] is not an object", i);
        for (size_t k = 0; rc == 0 && k < w->len; k++)
            if (!json_equal(w->items[k], json_get(got->items[i], w->keys[k])))
                rc = failf(r, "backend %zu field %s differs in %s", i, w->keys[k], text);
    }
    json_free(got);
    peerlb_string_free(text);
    return rc;
}

/* metrics: each of "contains" must be a whole line of the list's metrics text, none of
 * "absent" may appear in it, and with "empty": true it must be empty. */
static int op_metrics(run *r, const json_value *s) {
    if (need_list(r)) return -1;
    char *text = NULL;
    if (peerlb_list_metrics(r->list, &text) != PEERLB_OK)
        return failf(r, "metrics failed: %s", peerlb_last_error_message());
    int rc = 0;
    const json_value *contains = json_get(s, "contains");
    for (size_t i = 0; rc == 0 && contains && i < contains->len; i++) {
        const char *want = contains->items[i]->string;
        size_t n = strlen(want);
        int found = 0;
        for (const char *line = text; !found && *line;) {
            const char *end = strchr(line, '\n');
            size_t len = end ? (size_t)(end - line) : strlen(line);
            found = len == n && strncmp(line, want, n) == 0;
            line = end ? end + 1 : line + len;
        }
        if (!found) rc = failf(r, "no line \"%s\" in\n%s", want, text);
    }
    const json_value *absent = json_get(s, "absent");
    for (size_t i = 0; rc == 0 && absent && i < absent->len; i++)
        if (strstr(text, absent->items[i]->string))
            rc = failf(r, "\"%s\" in\n%s", absent->items[i]->string, text);
    if (rc == 0 && bool_or(s, "empty", 0) && text[0] != '\0') rc = failf(r, "metrics should be empty: %s", text);
    peerlb_string_free(text);
    return rc;
}

static int op_introspect(run *r, const json_value *s) {
    if (need_list(r)) return -1;
    char *text = NULL;
    if (peerlb_list_introspect(r->list, &text) != PEERLB_OK) return failf(r, "introspect failed");
    char err[128];
    json_value *got = json_parse(text, err, sizeof err);
    int rc = 0;
    if (!got) rc = failf(r, "introspection is not JSON (%s): %s", err, text);
    const json_value *want = json_get(s, "expect");
    for (size_t k = 0; rc == 0 && want && k < want->len; k++) {
        const char *key = want->keys[k];
        const json_value *w = want->items[k], *g = json_get(got, key);
        if (strcmp(key, "peers") == 0) {
            if (!g || g->type != JSON_ARRAY || g->len != w->len) {
                rc = failf(r, "peer count differs in %s", text);
                break;
            }
            for (size_t i = 0; rc == 0 && i < w->len; i++)
                for (size_t f = 0; rc == 0 && f < w->items[i]->len; f++)
                    if (!json_equal(w->items[i]->items[f], json_get(g->items[i], w->items[i]->keys[f])))
                        rc = failf(r, "peer %zu field %s differs in %s", i, w->items[i]->keys[f], text);
        } else if (!json_equal(w, g)) {
            rc = failf(r, "field %s differs in %s", key, text);
        }
    }
    json_free(got);
    peerlb_string_free(text);
    return rc;
}

static int op_transport_calls(run *r, const json_value *s) {
    if (!r->transport) return failf(r, "transport_calls needs the scripted transport");
    scripted *t = r->transport;
    const json_value *want = json_get(s, "expect");
    size_t nw = want && want->type == JSON_ARRAY ? want->len : 0;
    int rc = 0;
    pthread_mutex_lock(&t->mu);
    if (t->n_calls != nw) {
        fprintf(stderr, "  calls were:");
        for (size_t i = 0; i < t->n_calls; i++) fprintf(stderr, " [%s]", t->calls[i]);
        fprintf(stderr, "\n");
        rc = failf(r, "%zu transport calls, want %zu", t->n_calls, nw);
    }
    for (size_t i = 0; rc == 0 && i < nw; i++)
        if (strcmp(t->calls[i], want->items[i]->string) != 0)
            rc = failf(r, "transport call %zu is [%s], want [%s]", i, t->calls[i], want->items[i]->string);
    for (size_t i = 0; i < t->n_calls; i++) free(t->calls[i]);
    t->n_calls = 0;
    pthread_mutex_unlock(&t->mu);
    return rc;
}

static int op_advance(run *r, const json_value *s) {
    long ms = num_or(s, "ms", -1);
    if (!r->clock) return failf(r, "advance needs clock: manual");
    if (ms < 0) return failf(r, "bad ms");
    if (peerlb_manual_clock_advance_ms(r->clock, (uint64_t)ms) != PEERLB_OK)
        return failf(r, "advance failed: %s", peerlb_last_error_message());
    return 0;
}

static int op_admin(run *r, const json_value *s) {
    if (need_list(r)) return -1;
    const char *action = json_get_str(s, "action"), *peer = json_get_str(s, "peer");
    if (!action || !peer) return failf(r, "admin needs action and peer");
    peerlb_status (*fn)(const peerlb_list *, const char *, size_t, peerlb_admin_result *) = NULL;
    if (strcmp(action, "disable") == 0) fn = peerlb_list_disable;
    else if (strcmp(action, "enable") == 0) fn = peerlb_list_enable;
    else if (strcmp(action, "reset") == 0) fn = peerlb_list_reset;
    else if (strcmp(action, "delete") == 0) fn = peerlb_list_delete;
    else if (strcmp(action, "failover") == 0) fn = peerlb_list_failover;
    else return failf(r, "unknown admin action %s", action);
    peerlb_admin_result result = 0xdead;
    peerlb_status st = fn(r->list, peer, strlen(peer), &result);
    const char *got = st == PEERLB_OK ? peerlb_admin_result_str(result) : "failed";
    const char *want = json_get_str(s, "expect");
    if (!want) want = "success";
    if (strcmp(got, want) != 0)
        return failf(r, "admin result %s, want %s (%s)", got, want, st ? peerlb_last_error_message() : "");
    /* The balancer's numbers: 1 success, 3 no action required, 4 failed. */
    peerlb_admin_result want_number = strcmp(want, "success") == 0              ? PEERLB_RESULT_SUCCESS
                                      : strcmp(want, "no-action-required") == 0 ? PEERLB_RESULT_NO_ACTION_REQUIRED
                                                                                : PEERLB_RESULT_FAILED;
    if (result != want_number) return failf(r, "admin result number %u, want %u", result, want_number);
    const char *code = json_get_str(s, "error");
    if (st != PEERLB_OK && code && strcmp(peerlb_status_str(st), code) != 0)
        return failf(r, "admin error %s, want %s (%s)", peerlb_status_str(st), code, peerlb_last_error_message());
    return 0;
}

static int op_events(run *r, const json_value *s) {
    const json_value *want = json_get(s, "expect");
    size_t nw = want && want->type == JSON_ARRAY ? want->len : 0;
    int rc = 0;
    pthread_mutex_lock(&r->ev_mu);
    int differ = r->n_events != nw;
    for (size_t i = 0; !differ && i < nw; i++) differ = strcmp(r->events[i], want->items[i]->string) != 0;
    if (differ) {
        fprintf(stderr, "  events were:");
        for (size_t i = 0; i < r->n_events; i++) fprintf(stderr, " [%s]", r->events[i]);
        fprintf(stderr, "\n  want:");
        for (size_t i = 0; i < nw; i++) fprintf(stderr, " [%s]", want->items[i]->string);
        fprintf(stderr, "\n");
        rc = -1;
    }
    pthread_mutex_unlock(&r->ev_mu);
    clear_events(r);
    return rc ? failf(r, "events differ") : 0;
}

/* Why a request was not retried, as the scenarios spell it (NULL: it was not stopped). */
static const char *stop_name(peerlb_stop_reason stop) {
    switch (stop) {
    case PEERLB_STOP_NOT_RETRYABLE: return "not-retryable";
    case PEERLB_STOP_ATTEMPTS_EXHAUSTED: return "attempts-exhausted";
    case PEERLB_STOP_BUDGET_EXHAUSTED: return "budget-exhausted";
    case PEERLB_STOP_TIMED_OUT: return "timed-out";
    default: return NULL;
    }
}

static int parse_attempt_result(const char *s) {
    if (strcmp(s, "connect-failed") == 0) return PEERLB_ATTEMPT_CONNECT_FAILED;
    if (strcmp(s, "reset") == 0) return PEERLB_ATTEMPT_RESET;
    if (strcmp(s, "timed-out") == 0) return PEERLB_ATTEMPT_TIMED_OUT;
    if (strcmp(s, "failed") == 0) return PEERLB_ATTEMPT_FAILED;
    return -1;
}

/* One request under a request rule (made from the step's `rule` as a spec string), its
 * attempts' results scripted. */
static int op_request(run *r, const json_value *s) {
    if (need_list(r)) return -1;
    const json_value *given = json_get(s, "rule");
    char spec[512] = "";
    size_t used = 0;
    const peerlb_retry_budget *budget = NULL;
    if (given && given->type == JSON_OBJECT) {
        for (size_t i = 0; i < given->len; i++) {
            const char *key = given->keys[i];
            const json_value *v = given->items[i];
            const char *sep = used ? "&" : "";
            if (strcmp(key, "budget") == 0) {
                if (v->type == JSON_BOOL && !v->boolean) {
                    used += (size_t)snprintf(spec + used, sizeof spec - used, "%sbudget=off", sep);
                } else if (v->type == JSON_STRING && strcmp(v->string, "shared") == 0) {
                    if (!r->budget) return failf(r, "a retry_budget step first");
                    budget = r->budget;
                } else {
                    return failf(r, "bad rule budget");
                }
            } else if (v->type == JSON_STRING) {
                used += (size_t)snprintf(spec + used, sizeof spec - used, "%s%s=%s", sep, key, v->string);
            } else if (v->type == JSON_NUMBER) {
                used += (size_t)snprintf(spec + used, sizeof spec - used, "%s%s=%.0f", sep, key, v->number);
            } else if (v->type == JSON_BOOL) {
                used += (size_t)snprintf(spec + used, sizeof spec - used, "%s%s=%s", sep, key,
                                         v->boolean ? "true" : "false");
            }
            if (used >= sizeof spec) return failf(r, "rule spec too long");
        }
    }
    peerlb_request_rule *rule = NULL;
    int checked = check_result(r, s, peerlb_request_rule_new(spec, budget, &rule));
    if (checked <= 0) return checked;
    const char *method = json_get_str(s, "method");
    const json_value *replayable = json_get(s, "body_replayable");
    const json_value *idempotent = json_get(s, "idempotent");
    int32_t idem = idempotent && idempotent->type == JSON_BOOL ? idempotent->boolean : -1;
    peerlb_request_call *call = NULL;
    if (peerlb_request_call_new(rule, method ? method : "GET",
                                replayable && replayable->type == JSON_BOOL ? replayable->boolean : true, idem,
                                &call) != PEERLB_OK) {
        peerlb_request_rule_free(rule);
        return failf(r, "request_call_new failed: %s", peerlb_last_error_message());
    }
    const json_value *attempts = json_get(s, "attempts");
    size_t n = attempts && attempts->type == JSON_ARRAY ? attempts->len : 0;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const json_value *a = attempts->items[i];
        peerlb_choice c;
        if (peerlb_request_call_choose(call, r->list, NULL, &c) != PEERLB_OK) {
            rc = failf(r, "attempt %zu: choose failed: %s", i + 1, peerlb_last_error_message());
            break;
        }
        const char *want_peer = json_get_str(a, "expect");
        if (want_peer && (strlen(want_peer) != c.peer_len || memcmp(want_peer, c.peer, c.peer_len) != 0))
            rc = failf(r, "attempt %zu: peer %.*s, want %s", i + 1, (int)c.peer_len, c.peer, want_peer);
        const json_value *status = json_get(a, "status");
        const char *result = json_get_str(a, "result");
        int kind = status ? PEERLB_ATTEMPT_STATUS : result ? parse_attempt_result(result) : -1;
        const char *classified = json_get_str(a, "classified");
        int32_t outcome = classified ? (int32_t)parse_outcome(classified) : PEERLB_OUTCOME_UNCLASSIFIED;
        if (kind < 0) {
            peerlb_choice_finish(&c, PEERLB_OUTCOME_CANCELLED, -1);
            rc = failf(r, "attempt %zu: give `status` or `result`", i + 1);
            break;
        }
        peerlb_request_report report;
        if (peerlb_request_call_report(call, &c, (peerlb_attempt_result)kind,
                                       status ? (uint32_t)status->number : 0, outcome, &report) != PEERLB_OK) {
            rc = failf(r, "attempt %zu: report failed: %s", i + 1, peerlb_last_error_message());
            break;
        }
        const json_value *want_retry = json_get(a, "retry");
        bool retry = want_retry && want_retry->type == JSON_BOOL ? want_retry->boolean : i + 1 < n;
        if (rc == 0 && report.retry != retry)
            rc = failf(r, "attempt %zu: retry %d, want %d", i + 1, report.retry, retry);
        const json_value *want_stop = json_get(a, "stopped");
        const char *stop = stop_name(report.stopped);
        if (rc == 0 && want_stop) {
            const char *want = want_stop->type == JSON_STRING ? want_stop->string : NULL;
            if ((want == NULL) != (stop == NULL) || (want && strcmp(want, stop) != 0))
                rc = failf(r, "attempt %zu: stopped %s, want %s", i + 1, stop ? stop : "null", want ? want : "null");
        }
    }
    uint32_t made = 0;
    if (rc == 0 && (peerlb_request_call_attempts(call, &made) != PEERLB_OK || made != n))
        rc = failf(r, "%u attempts, want %zu", made, n);
    peerlb_request_call_free(call);
    peerlb_request_rule_free(rule);
    return rc;
}

/* Options not in the step are passed as PEERLB_DEFAULT: the core's defaults apply. */
static int op_retry_budget(run *r, const json_value *s) {
    const json_value *ratio = json_get(s, "ratio");
    double rt = ratio && ratio->type == JSON_NUMBER ? ratio->number : PEERLB_DEFAULT;
    peerlb_retry_budget *b = NULL;
    peerlb_status st = peerlb_retry_budget_new(rt, num_or(s, "min_per_sec", PEERLB_DEFAULT),
                                               num_or(s, "ttl_ms", PEERLB_DEFAULT), r->clock, &b);
    int rc = check_result(r, s, st);
    if (rc < 0) return -1;
    peerlb_retry_budget_free(r->budget);
    r->budget = b; /* NULL after an expected failure, like the Rust runner */
    return 0;
}

/* The retry loop of the header's peerlb_retry docs, with the scripted attempts ("ok",
 * "failure:<message>", "declined:<message>") played in order. */
static int op_retry(run *r, const json_value *s) {
    if (need_list(r)) return -1;
    const json_value *script = json_get(s, "attempts");
    size_t n_script = script && script->type == JSON_ARRAY ? script->len : 0;
    peerlb_retry *retry = NULL;
    /* max_attempts 0 and timeout_ms -1: not given (the core's default; no overall timeout). */
    if (peerlb_retry_new((uint32_t)num_or(s, "max_attempts", 0), num_or(s, "timeout_ms", PEERLB_NO_TIMEOUT), r->budget,
                         &retry) != PEERLB_OK)
        return failf(r, "retry_new failed: %s", peerlb_last_error_message());
    peerlb_request req = {PEERLB_NO_TIMEOUT, NULL, 0};
    const json_value *key = json_get(s, "shard_key");
    if (key && key->type == JSON_STRING) {
        req.shard_key = (const uint8_t *)key->string;
        req.shard_key_len = key->len;
    }
    char *peers[64];
    size_t n_peers = 0;
    peerlb_status st;
    char message[1024] = "";
    int rc = 0;
    for (;;) {
        peerlb_choice c;
        st = peerlb_retry_choose(retry, r->list, &req, &c);
        if (st != PEERLB_OK) {
            snprintf(message, sizeof message, "%s", peerlb_last_error_message());
            break;
        }
        if (n_peers == 64 || n_peers >= n_script) {
            peerlb_choice_finish(&c, PEERLB_OUTCOME_CANCELLED, -1);
            rc = failf(r, "attempt %zu is not scripted", n_peers + 1);
            break;
        }
        peers[n_peers++] = strndup(c.peer, c.peer_len);
        const char *what = script->items[n_peers - 1]->string;
        if (strcmp(what, "ok") == 0) {
            st = peerlb_retry_succeeded(retry, &c, -1);
            if (st != PEERLB_OK) rc = failf(r, "succeeded failed: %s", peerlb_last_error_message());
            break;
        } else if (strncmp(what, "failure@", 8) == 0 && strchr(what, ':')) {
            long long code = strtoll(what + 8, NULL, 10);
            if (peerlb_retry_failed_with_code(retry, &c, strchr(what, ':') + 1, code, -1) != PEERLB_OK) {
                peerlb_choice_finish(&c, PEERLB_OUTCOME_CANCELLED, -1);
                rc = failf(r, "retry_failed_with_code failed: %s", peerlb_last_error_message());
                break;
            }
        } else if (strncmp(what, "declined@", 9) == 0 && strchr(what, ':')) {
            long long code = strtoll(what + 9, NULL, 10);
            st = peerlb_retry_declined_with_code(retry, &c, strchr(what, ':') + 1, code, -1);
            snprintf(message, sizeof message, "%s", peerlb_last_error_message());
            if (st != PEERLB_DECLINED) rc = failf(r, "retry_declined_with_code returned %s", peerlb_status_str(st));
            break;
        } else if (strncmp(what, "failure:", 8) == 0) {
            if (peerlb_retry_failed(retry, &c, what + 8, -1) != PEERLB_OK) {
                peerlb_choice_finish(&c, PEERLB_OUTCOME_CANCELLED, -1);
                rc = failf(r, "retry_failed failed: %s", peerlb_last_error_message());
                break;
            }
            if (c.token != NULL) rc = failf(r, "retry_failed left the choice live");
        } else if (strncmp(what, "declined:", 9) == 0) {
            st = peerlb_retry_declined(retry, &c, what + 9, -1);
            snprintf(message, sizeof message, "%s", peerlb_last_error_message());
            if (st != PEERLB_DECLINED) rc = failf(r, "retry_declined returned %s", peerlb_status_str(st));
            break;
        } else {
            peerlb_choice_finish(&c, PEERLB_OUTCOME_CANCELLED, -1);
            rc = failf(r, "bad scripted attempt %s", what);
            break;
        }
    }
    uint32_t attempts = 0;
    if (rc == 0 && (peerlb_retry_attempts(retry, &attempts) != PEERLB_OK || attempts != n_peers))
        rc = failf(r, "retry_attempts says %u, %zu were made", attempts, n_peers);
    peerlb_retry_free(retry);
    const json_value *want_peers = json_get(s, "expect_peers");
    if (rc == 0 && want_peers && want_peers->type == JSON_ARRAY) {
        if (want_peers->len != n_peers) rc = failf(r, "%zu attempts' peers, want %zu", n_peers, want_peers->len);
        for (size_t i = 0; rc == 0 && i < n_peers; i++)
            if (strcmp(peers[i], want_peers->items[i]->string) != 0)
                rc = failf(r, "attempt %zu went to %s, want %s", i + 1, peers[i], want_peers->items[i]->string);
    }
    long want_attempts = num_or(s, "expect_attempts", -1);
    if (rc == 0 && want_attempts >= 0 && (size_t)want_attempts != n_peers)
        rc = failf(r, "%zu attempts, want %ld", n_peers, want_attempts);
    if (rc == 0 && bool_or(s, "expect_distinct", 0))
        for (size_t i = 0; rc == 0 && i < n_peers; i++)
            for (size_t j = i + 1; rc == 0 && j < n_peers; j++)
                if (strcmp(peers[i], peers[j]) == 0) rc = failf(r, "peers not distinct: %s twice", peers[i]);
    const char *want_msg = json_get_str(s, "message");
    if (rc == 0 && st != PEERLB_OK && want_msg && strcmp(want_msg, message) != 0)
        rc = failf(r, "retry error message [%s], want [%s]", message, want_msg);
    if (rc == 0 && st != PEERLB_OK) rc = check_remote(r, s);
    for (size_t i = 0; i < n_peers; i++) free(peers[i]);
    if (rc != 0) return rc;
    /* check_result reads the last error of this thread, which is still the final one. */
    return check_result(r, s, st) < 0 ? -1 : 0;
}

/* ---------- sessions, backend admin, queries ---------- */

/* Checks `expect_peer` and `expect_remote_code` (null: none) against the calling thread's
 * last error. */
static int check_remote(run *r, const json_value *s) {
    const char *want_peer = json_get_str(s, "expect_peer");
    if (want_peer && strcmp(peerlb_last_error_peer(), want_peer) != 0)
        return failf(r, "error's peer [%s], want [%s] (%s)", peerlb_last_error_peer(), want_peer,
                     peerlb_last_error_message());
    const json_value *want_code = json_get(s, "expect_remote_code");
    if (want_code) {
        int64_t code = 0;
        bool has = peerlb_last_error_remote_code(&code);
        if (want_code->type == JSON_NULL && has) return failf(r, "error has remote code %lld, want none", (long long)code);
        if (want_code->type == JSON_NUMBER && (!has || code != (int64_t)want_code->number))
            return failf(r, "error's remote code %lld (%d), want %.0f", (long long)code, has, want_code->number);
    }
    return 0;
}

/* Appends `v` as JSON text to buf (the scenarios' add_backend data). */
static void json_write(const json_value *v, char *buf, size_t cap) {
    size_t used = strlen(buf);
    if (used >= cap) return;
    switch (v->type) {
    case JSON_NULL: snprintf(buf + used, cap - used, "null"); break;
    case JSON_BOOL: snprintf(buf + used, cap - used, v->boolean ? "true" : "false"); break;
    case JSON_NUMBER: snprintf(buf + used, cap - used, "%.17g", v->number); break;
    case JSON_STRING:
        snprintf(buf + used, cap - used, "\"");
        for (const char *c = v->string; *c; c++) {
            used = strlen(buf);
            if (*c == '"' || *c == '\\') snprintf(buf + used, cap - used, "\\%c", *c);
            else snprintf(buf + used, cap - used, "%c", *c);
        }
        used = strlen(buf);
        snprintf(buf + used, cap - used, "\"");
        break;
    case JSON_ARRAY:
    case JSON_OBJECT:
        snprintf(buf + used, cap - used, v->type == JSON_ARRAY ? "[" : "{");
        for (size_t i = 0; i < v->len; i++) {
            used = strlen(buf);
            if (i) snprintf(buf + used, cap - used, ",");
            if (v->type == JSON_OBJECT) {
                json_value key = {.type = JSON_STRING, .string = v->keys[i]};
                json_write(&key, buf, cap);
                used = strlen(buf);
                snprintf(buf + used, cap - used, ":");
            }
            json_write(v->items[i], buf, cap);
        }
        used = strlen(buf);
        snprintf(buf + used, cap - used, v->type == JSON_ARRAY ? "]" : "}");
        break;
    }
}

/* Compares each key of object `want` with JSON `text`. */
static int check_json_fields(run *r, const char *what, const json_value *want, const char *text) {
    char err[128];
    json_value *got = json_parse(text, err, sizeof err);
    int rc = 0;
    if (!got) rc = failf(r, "%s is not JSON (%s): %s", what, err, text);
    for (size_t k = 0; rc == 0 && want && k < want->len; k++)
        if (!json_equal(want->items[k], json_get(got, want->keys[k])))
            rc = failf(r, "%s field %s differs in %s", what, want->keys[k], text);
    json_free(got);
    return rc;
}

static size_t session_index(run *r, const char *name) {
    for (size_t i = 0; i < r->n_sessions; i++)
        if (strcmp(r->sessions[i].name, name) == 0) return i;
    return SIZE_MAX;
}

/* The session a step names (NULL when the scenario closed it); fails on an unknown name. */
static int find_session(run *r, const json_value *s, peerlb_session **out) {
    const char *name = json_get_str(s, "session");
    size_t i = name ? session_index(r, name) : SIZE_MAX;
    if (i == SIZE_MAX) return failf(r, "no session %s", name ? name : "(unnamed)");
    *out = r->sessions[i].session;
    return 0;
}

static peerlb_request step_request(const json_value *s) {
    peerlb_request req = {num_or(s, "timeout_ms", PEERLB_NO_TIMEOUT), NULL, 0};
    const json_value *key = json_get(s, "shard_key");
    if (key && key->type == JSON_STRING) {
        req.shard_key = (const uint8_t *)key->string;
        req.shard_key_len = key->len;
    }
    return req;
}

/* Checks `expect` / `expect_one_of` against a peer id. */
static int check_peer_id(run *r, const json_value *s, const char *peer) {
    const char *want = json_get_str(s, "expect");
    if (want && strcmp(want, peer) != 0) return failf(r, "session on %s, want %s", peer, want);
    const json_value *any = json_get(s, "expect_one_of");
    if (any && !in_list(any, peer)) return failf(r, "session on %s, not one of the expected", peer);
    return 0;
}

static int op_open_session(run *r, const json_value *s) {
    if (need_list(r)) return -1;
    const char *name = json_get_str(s, "name");
    if (!name) return failf(r, "open_session needs a name");
    peerlb_request req = step_request(s);
    peerlb_session *session = NULL;
    int rc = check_result(r, s, peerlb_session_open(r->list, &req, &session));
    if (rc <= 0) return rc;
    size_t i = session_index(r, name);
    if (i == SIZE_MAX) {
        if (r->n_sessions == 64) {
            peerlb_session_close(session);
            return failf(r, "too many sessions");
        }
        i = r->n_sessions++;
        r->sessions[i].name = strdup(name);
    } else if (r->sessions[i].session) {
        peerlb_session_close(r->sessions[i].session);
    }
    r->sessions[i].session = session;
    char *peer = NULL;
    uint64_t id = 0;
    if (peerlb_session_peer(session, &peer) != PEERLB_OK || peerlb_session_id(session, &id) != PEERLB_OK)
        return failf(r, "session_peer / session_id failed: %s", peerlb_last_error_message());
    rc = check_peer_id(r, s, peer);
    peerlb_string_free(peer);
    long want_id = num_or(s, "expect_id", -1);
    if (rc == 0 && want_id >= 0 && (uint64_t)want_id != id) rc = failf(r, "session id %llu, want %ld", (unsigned long long)id, want_id);
    return rc;
}

static int op_session_failover(run *r, const json_value *s) {
    peerlb_session *session;
    if (find_session(r, s, &session)) return -1;
    if (!session) return check_result(r, s, PEERLB_ALREADY_FINISHED) < 0 ? -1 : 0;
    const json_value *code_v = json_get(s, "remote_code");
    int64_t code = code_v && code_v->type == JSON_NUMBER ? (int64_t)code_v->number : 0;
    const char *reason = json_get_str(s, "reason");
    peerlb_request req = step_request(s);
    char *peer = NULL;
    peerlb_status st = peerlb_session_failover(session, reason, code_v ? &code : NULL, json_get(s, "timeout_ms") ? &req : NULL, &peer);
    if (st != PEERLB_OK && check_remote(r, s)) return -1;
    int rc = check_result(r, s, st);
    if (rc <= 0) return rc;
    rc = 0;
    char *now = NULL;
    if (peerlb_session_peer(session, &now) != PEERLB_OK) rc = failf(r, "session_peer failed");
    else if (strcmp(now, peer) != 0) rc = failf(r, "failover gave %s, session_peer says %s", peer, now);
    if (rc == 0) rc = check_peer_id(r, s, peer);
    peerlb_string_free(now);
    peerlb_string_free(peer);
    return rc;
}

static int op_session_simple(run *r, const json_value *s, const char *op) {
    size_t i = SIZE_MAX;
    const char *name = json_get_str(s, "session");
    if (name) i = session_index(r, name);
    if (i == SIZE_MAX) return failf(r, "no session %s", name ? name : "(unnamed)");
    peerlb_session *session = r->sessions[i].session;
    if (strcmp(op, "session_ok") == 0) {
        peerlb_status st = session ? peerlb_session_ok(session) : PEERLB_ALREADY_FINISHED;
        return check_result(r, s, st) < 0 ? -1 : 0;
    }
    if (strcmp(op, "session_decline") == 0) {
        const json_value *code_v = json_get(s, "remote_code");
        int64_t code = code_v && code_v->type == JSON_NUMBER ? (int64_t)code_v->number : 0;
        peerlb_status st = session ? peerlb_session_decline(session, json_get_str(s, "reason"), code_v ? &code : NULL)
                                   : PEERLB_ALREADY_FINISHED;
        const char *want = json_get_str(s, "expect_code");
        if (!want || strcmp(peerlb_status_str(st), want) != 0)
            return failf(r, "decline gave %s, want %s", peerlb_status_str(st), want ? want : "?");
        return session ? check_remote(r, s) : 0;
    }
    /* session_close and session_drop: both free the handle. */
    peerlb_status st = session ? peerlb_session_close(session) : PEERLB_ALREADY_FINISHED;
    r->sessions[i].session = NULL;
    if (strcmp(op, "session_drop") == 0) return st == PEERLB_OK ? 0 : failf(r, "dropping closed nothing");
    return check_result(r, s, st) < 0 ? -1 : 0;
}

static int op_session_check(run *r, const json_value *s) {
    peerlb_session *session;
    if (find_session(r, s, &session)) return -1;
    const json_value *want = json_get(s, "expect");
    if (!want || want->type != JSON_OBJECT) return failf(r, "session_check needs an expect object");
    char got[2048] = "";
    if (!session) {
        snprintf(got, sizeof got, "{\"open\":false,\"bound\":false}");
    } else {
        uint64_t id = 0;
        char *peer = NULL;
        bool open = 0, bound = 0, requested = 0;
        if (peerlb_session_id(session, &id) != PEERLB_OK || peerlb_session_peer(session, &peer) != PEERLB_OK ||
            peerlb_session_state(session, &open, &bound) != PEERLB_OK ||
            peerlb_session_failover_requested(session, &requested) != PEERLB_OK)
            return failf(r, "session queries failed: %s", peerlb_last_error_message());
        snprintf(got, sizeof got,
                 "{\"id\":%llu,\"peer\":\"%s\",\"open\":%s,\"bound\":%s,\"failover_requested\":%s}",
                 (unsigned long long)id, peer, open ? "true" : "false", bound ? "true" : "false",
                 requested ? "true" : "false");
        peerlb_string_free(peer);
    }
    char err[128];
    json_value *g = json_parse(got, err, sizeof err);
    int rc = 0;
    for (size_t k = 0; rc == 0 && k < want->len; k++) {
        const json_value *v = json_get(g, want->keys[k]);
        if (!session && !v) continue; /* a closed handle answers only open and bound */
        if (!json_equal(want->items[k], v)) rc = failf(r, "session field %s differs in %s", want->keys[k], got);
    }
    json_free(g);
    return rc;
}

static int op_session_events(run *r, const json_value *s) {
    const json_value *want = json_get(s, "expect");
    size_t nw = want && want->type == JSON_ARRAY ? want->len : 0;
    int rc = 0;
    pthread_mutex_lock(&r->ev_mu);
    int differ = r->n_session_events != nw;
    for (size_t i = 0; !differ && i < nw; i++) differ = strcmp(r->session_events[i], want->items[i]->string) != 0;
    if (differ) {
        fprintf(stderr, "  session events were:");
        for (size_t i = 0; i < r->n_session_events; i++) fprintf(stderr, " [%s]", r->session_events[i]);
        fprintf(stderr, "\n");
        rc = -1;
    }
    pthread_mutex_unlock(&r->ev_mu);
    clear_session_events(r);
    return rc ? failf(r, "session events differ") : 0;
}

static int op_add_backend(run *r, const json_value *s) {
    if (need_list(r)) return -1;
    const json_value *data = json_get(s, "data");
    if (!data) return failf(r, "add_backend needs data");
    char text[1024] = "";
    if (data->type == JSON_STRING) snprintf(text, sizeof text, "%s", data->string);
    else json_write(data, text, sizeof text);
    char *answer = NULL;
    peerlb_status st = peerlb_list_add_backend(r->list, text, strlen(text), &answer);
    if (!answer) return failf(r, "add_backend wrote no answer: %s", peerlb_last_error_message());
    int rc = check_json_fields(r, "add_backend", json_get(s, "expect"), answer);
    /* The status agrees with the answer: OK, or the failure's own code. */
    char err[128];
    json_value *got = json_parse(answer, err, sizeof err);
    const char *code = json_get_str(got, "error");
    if (rc == 0 && (code ? strcmp(peerlb_status_str(st), code) != 0 : st != PEERLB_OK))
        rc = failf(r, "add_backend status %s disagrees with %s", peerlb_status_str(st), answer);
    json_free(got);
    peerlb_string_free(answer);
    return rc;
}

static int op_backend_config(run *r, const json_value *s) {
    if (need_list(r)) return -1;
    const char *peer = json_get_str(s, "peer");
    if (!peer) return failf(r, "backend_config needs a peer");
    char *json = NULL;
    int rc = check_result(r, s, peerlb_list_backend_config(r->list, peer, strlen(peer), &json));
    if (rc <= 0) return rc;
    rc = check_json_fields(r, "backend_config", json_get(s, "expect"), json);
    peerlb_string_free(json);
    return rc;
}

static int op_queries(run *r, const json_value *s) {
    if (need_list(r)) return -1;
    long want = num_or(s, "capacity", -1);
    size_t capacity = 0, counts[3] = {0, 0, 0};
    if (peerlb_list_capacity(r->list, &capacity) != PEERLB_OK) return failf(r, "capacity failed");
    if (want >= 0 && (size_t)want != capacity) return failf(r, "capacity %zu, want %ld", capacity, want);
    const char *keys[2] = {"available", "uninitialized"};
    for (int q = 0; q < 2; q++) {
        const json_value *map = json_get(s, keys[q]);
        for (size_t k = 0; map && k < map->len; k++) {
            bool got = 0;
            peerlb_status st = (q == 0 ? peerlb_list_available : peerlb_list_uninitialized)(
                r->list, map->keys[k], strlen(map->keys[k]), &got);
            if (st != PEERLB_OK) return failf(r, "%s failed: %s", keys[q], peerlb_last_error_message());
            if ((int)got != map->items[k]->boolean) return failf(r, "%s(%s) is %d", keys[q], map->keys[k], got);
        }
    }
    if (peerlb_list_counts(r->list, &counts[0], &counts[1], &counts[2]) != PEERLB_OK) return failf(r, "counts failed");
    const char *count_keys[3] = {"num_available", "num_unavailable", "num_uninitialized"};
    for (int q = 0; q < 3; q++) {
        long n = num_or(s, count_keys[q], -1);
        if (n >= 0 && (size_t)n != counts[q]) return failf(r, "%s is %zu, want %ld", count_keys[q], counts[q], n);
    }
    const json_value *peers = json_get(s, "peers");
    if (peers) {
        char *json = NULL;
        if (peerlb_list_peers(r->list, &json) != PEERLB_OK) return failf(r, "peers failed");
        char err[128];
        json_value *got = json_parse(json, err, sizeof err);
        int rc = json_equal(peers, got) ? 0 : failf(r, "peers() is %s", json);
        json_free(got);
        peerlb_string_free(json);
        return rc;
    }
    return 0;
}

static int step(run *r, const char *ctx, const json_value *s) {
    const char *op = json_get_str(s, "op");
    snprintf(r->ctx, sizeof r->ctx, "%s (%s)", ctx, op ? op : "?");
    if (!op) return failf(r, "step has no op");
    if (strcmp(op, "new") == 0) return op_new(r, s);
    if (strcmp(op, "update") == 0) return op_update(r, s);
    if (strcmp(op, "start") == 0 || strcmp(op, "stop") == 0) {
        if (need_list(r)) return -1;
        peerlb_status st = op[2] == 'a' ? peerlb_list_start(r->list) : peerlb_list_stop(r->list);
        return check_result(r, s, st) < 0 ? -1 : 0;
    }
    if (strcmp(op, "set_status") == 0) return op_set_status(r, s);
    if (strcmp(op, "choose") == 0) return op_choose(r, s);
    if (strcmp(op, "choose_many") == 0) return op_choose_many(r, s);
    if (strcmp(op, "finish") == 0) return op_finish(r, s, 0);
    if (strcmp(op, "drop") == 0) return op_finish(r, s, 1);
    if (strcmp(op, "introspect") == 0) return op_introspect(r, s);
    if (strcmp(op, "list_backends") == 0) return op_list_backends(r, s);
    if (strcmp(op, "metrics") == 0) return op_metrics(r, s);
    if (strcmp(op, "transport_calls") == 0) return op_transport_calls(r, s);
    if (strcmp(op, "advance") == 0) return op_advance(r, s);
    if (strcmp(op, "admin") == 0) return op_admin(r, s);
    if (strcmp(op, "events") == 0) return op_events(r, s);
    if (strcmp(op, "retry_budget") == 0) return op_retry_budget(r, s);
    if (strcmp(op, "retry") == 0) return op_retry(r, s);
    if (strcmp(op, "request") == 0) return op_request(r, s);
    if (strcmp(op, "open_session") == 0) return op_open_session(r, s);
    if (strcmp(op, "session_failover") == 0) return op_session_failover(r, s);
    if (strcmp(op, "session_ok") == 0 || strcmp(op, "session_decline") == 0 || strcmp(op, "session_close") == 0 ||
        strcmp(op, "session_drop") == 0)
        return op_session_simple(r, s, op);
    if (strcmp(op, "session_check") == 0) return op_session_check(r, s);
    if (strcmp(op, "session_events") == 0) return op_session_events(r, s);
    if (strcmp(op, "add_backend") == 0) return op_add_backend(r, s);
    if (strcmp(op, "backend_config") == 0) return op_backend_config(r, s);
    if (strcmp(op, "queries") == 0) return op_queries(r, s);
    return failf(r, "unknown op %s", op);
}

static int run_file(const char *dir, const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *text = json_read_file(path);
    if (!text) {
        fprintf(stderr, "FAIL %s: cannot read\n", path);
        return -1;
    }
    char err[128];
    json_value *doc = json_parse(text, err, sizeof err);
    free(text);
    if (!doc) {
        fprintf(stderr, "FAIL %s: bad JSON: %s\n", path, err);
        return -1;
    }
    run r;
    memset(&r, 0, sizeof r);
    r.file = name;
    pthread_mutex_init(&r.ev_mu, NULL);
    const json_value *steps = json_get(doc, "steps");
    int rc = steps && steps->type == JSON_ARRAY ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < steps->len; i++) {
        char ctx[32];
        snprintf(ctx, sizeof ctx, "step %zu", i);
        rc = step(&r, ctx, steps->items[i]);
    }
    free_list(&r);
    cancel_held(&r);
    pthread_mutex_destroy(&r.ev_mu);
    if (rc == 0 && r.transports_freed != r.transports_made) {
        fprintf(stderr, "FAIL %s: free_userdata ran %d times for %d transports\n", name, r.transports_freed,
                r.transports_made);
        rc = -1;
    }
    json_free(doc);
    return rc;
}

static int json_name(const struct dirent *d) {
    size_t n = strlen(d->d_name);
    return n > 5 && strcmp(d->d_name + n - 5, ".json") == 0;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "tests/conformance";
    struct dirent **names;
    int n = scandir(dir, &names, json_name, alphasort);
    if (n < 0) {
        perror(dir);
        return 2;
    }
    int passed = 0, failed = 0;
    for (int i = 0; i < n; i++) {
        if (run_file(dir, names[i]->d_name) == 0) passed++;
        else failed++;
        free(names[i]);
    }
    free(names);
    printf("conformance: %d passed, %d failed\n", passed, failed);
    /* A wrong directory (or lost scenarios) must not pass as "nothing failed". */
    if (passed + failed < MIN_SCENARIOS)
        fprintf(stderr, "expected at least %d scenarios in %s, found %d\n", MIN_SCENARIOS, dir, passed + failed);
    return failed == 0 && passed >= MIN_SCENARIOS ? 0 : 1;
}
