// peerlb.h from C++17: RAII wrappers over the C handles, a transport implemented by a C++
// object behind the vtable, a choose/finish loop, events into a C++ object, admin, and
// the step-by-step retry as a C++ function taking a lambda. Built with -std=c++17 -Wall -Wextra
// -Werror; prints "cxx: N passed, M failed".
#include <peerlb.h>

#include <atomic>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

int passed = 0, failed = 0;

void expect(bool ok, const std::string &what) {
    if (ok) {
        ++passed;
    } else {
        ++failed;
        std::fprintf(stderr, "FAIL %s (last error: %s)\n", what.c_str(), peerlb_last_error_message());
    }
}

// Turns a status into an exception carrying peerlb's message.
struct Error : std::runtime_error {
    peerlb_status status;
    Error(peerlb_status s) : std::runtime_error(peerlb_last_error_message()), status(s) {}
};

void check(peerlb_status s) {
    if (s != PEERLB_OK) throw Error(s);
}

struct ListDeleter {
    void operator()(peerlb_list *l) const { peerlb_list_free(l); }
};
using List = std::unique_ptr<peerlb_list, ListDeleter>;

// A choice that finishes itself as cancelled unless finished explicitly.
class Choice {
  public:
    explicit Choice(peerlb_choice c) : c_(c) {}
    Choice(const Choice &) = delete;
    Choice &operator=(const Choice &) = delete;
    ~Choice() {
        if (c_.token) peerlb_choice_finish(&c_, PEERLB_OUTCOME_CANCELLED, -1);
    }
    std::string_view peer() const { return {c_.peer, c_.peer_len}; }
    void finish(peerlb_outcome o, int64_t latency_us) { check(peerlb_choice_finish(&c_, o, latency_us)); }

  private:
    peerlb_choice c_;
};

Choice choose(const List &list, int64_t timeout_ms) {
    peerlb_request req{timeout_ms, nullptr, 0};
    peerlb_choice c;
    check(peerlb_list_choose(list.get(), &req, &c));
    return Choice(c);
}

// A transport as a C++ object: every peer except "down:*" is available.
class MapTransport {
  public:
    static peerlb_transport_vtable vtable(MapTransport *self) {
        return peerlb_transport_vtable{self, "cxx-map", &retain, &release, &destroy};
    }
    std::atomic<int> retained{0}, released{0};
    static std::atomic<int> destroyed;

  private:
    static int retain(void *u, const char *id, size_t len, const peerlb_subscriber *s) noexcept {
        auto *self = static_cast<MapTransport *>(u);
        self->retained++;
        std::string_view v(id, len);
        auto status = v.substr(0, 5) == "down:" ? PEERLB_CONNECTION_UNAVAILABLE : PEERLB_CONNECTION_AVAILABLE;
        return peerlb_subscriber_set_status(s, status, nullptr);
    }
    static int release(void *u, const char *, size_t, const peerlb_subscriber *) noexcept {
        static_cast<MapTransport *>(u)->released++;
        return PEERLB_OK;
    }
    static void destroy(void *u) noexcept {
        destroyed++;
        delete static_cast<MapTransport *>(u);
    }
};
std::atomic<int> MapTransport::destroyed{0};

// Events collected as "<kind> <peer>" by a capture-less lambda (a plain function pointer).
struct EventLog {
    std::mutex mu;
    std::vector<std::string> lines;
};

struct SubscriptionDeleter {
    void operator()(peerlb_subscription *s) const { peerlb_subscription_free(s); }
};
using Subscription = std::unique_ptr<peerlb_subscription, SubscriptionDeleter>;

Subscription subscribe(const List &list, EventLog *log) {
    peerlb_subscription *raw = nullptr;
    check(peerlb_list_subscribe(
        list.get(),
        +[](const peerlb_event *e, void *u) noexcept {
            auto *l = static_cast<EventLog *>(u);
            std::lock_guard<std::mutex> g(l->mu);
            l->lines.push_back(std::string(peerlb_event_kind_str(e->kind)) + " " + std::string(e->peer, e->peer_len));
        },
        log, &raw));
    return Subscription(raw);
}

// The retry loop for a C++ callable: f(peer) returns true (ok) or false (failure).
template <typename F>
peerlb_status with_retry(const List &list, uint32_t max_attempts, F f) {
    struct RetryDeleter {
        void operator()(peerlb_retry *r) const { peerlb_retry_free(r); }
    };
    peerlb_retry *raw = nullptr;
    check(peerlb_retry_new(max_attempts, 5000, nullptr, &raw));
    std::unique_ptr<peerlb_retry, RetryDeleter> retry(raw);
    peerlb_request req{1000, nullptr, 0};
    for (;;) {
        peerlb_choice c;
        peerlb_status st = peerlb_retry_choose(retry.get(), list.get(), &req, &c);
        if (st != PEERLB_OK) return st;
        if (f(std::string_view(c.peer, c.peer_len))) return peerlb_retry_succeeded(retry.get(), &c, -1);
        check(peerlb_retry_failed(retry.get(), &c, "refused", -1));
    }
}

}  // namespace

int main() {
    try {
        expect(std::string(peerlb_version()) == PEERLB_VERSION_STRING, "version");
        peerlb_list_options *opts = nullptr;
        check(peerlb_list_options_new(&opts));
        check(peerlb_list_options_set_shuffle(opts, false));
        check(peerlb_list_options_set_strategy(opts, "round-robin"));
        auto *transport = new MapTransport();
        auto vt = MapTransport::vtable(transport);
        peerlb_list *raw = nullptr;
        check(peerlb_list_new(opts, &vt, &raw));
        peerlb_list_options_free(opts);
        List list(raw);

        std::vector<std::string> ids = {"a:1", "b:1", "down:1"};
        std::vector<peerlb_peer_spec> specs;
        for (auto &id : ids) specs.push_back({id.data(), id.size(), 1});
        check(peerlb_list_update(list.get(), specs.data(), specs.size(), nullptr, 0));
        check(peerlb_list_start(list.get()));
        expect(transport->retained == 3, "retained 3");

        std::map<std::string, int> counts;
        for (int i = 0; i < 10; i++) {
            Choice c = choose(list, 1000);
            counts[std::string(c.peer())]++;
            c.finish(PEERLB_OUTCOME_OK, 100);
        }
        expect(counts["a:1"] == 5 && counts["b:1"] == 5 && counts.count("down:1") == 0, "round-robin over available");

        {
            Choice unfinished = choose(list, 1000);  // destructor cancels it
        }
        std::vector<std::thread> threads;
        std::atomic<int> ok{0};
        for (int t = 0; t < 4; t++)
            threads.emplace_back([&] {
                for (int i = 0; i < 1000; i++) {
                    Choice c = choose(list, 1000);
                    c.finish(PEERLB_OUTCOME_OK, -1);
                    ok++;
                }
            });
        for (auto &t : threads) t.join();
        expect(ok == 4000, "4 C++ threads");

        try {
            check(peerlb_list_start(list.get()));
            expect(false, "second start throws");
        } catch (const Error &e) {
            expect(e.status == PEERLB_ALREADY_STARTED, "second start is already-started");
        }
        char *json = nullptr;
        check(peerlb_list_introspect(list.get(), &json));
        expect(std::string(json).find("\"transport\":\"cxx-map\"") != std::string::npos, "introspect");
        peerlb_string_free(json);

        EventLog log;
        {
            Subscription sub = subscribe(list, &log);
            peerlb_admin_result res = 99;
            check(peerlb_list_disable(list.get(), "a:1", 3, &res));
            expect(res == PEERLB_ADMIN_SUCCESS, "disable a:1");
            std::vector<std::string> tried;
            peerlb_status st = with_retry(list, 3, [&](std::string_view peer) {
                tried.emplace_back(peer);
                return false;
            });
            expect(st == PEERLB_RETRY_EXHAUSTED && tried.size() == 3, "retry exhausted after 3 attempts");
            expect(std::string(peerlb_last_error_message()) == "retry attempts exceeded (refused; refused; refused)",
                   "retry message");
            st = with_retry(list, 3, [](std::string_view peer) { return peer == "b:1"; });
            expect(st == PEERLB_OK, "retry succeeds on b:1");
            check(peerlb_list_enable(list.get(), "a:1", 3, &res));
        }
        {
            std::lock_guard<std::mutex> g(log.mu);
            expect(log.lines.size() == 2 && log.lines[0] == "disabled a:1" && log.lines[1] == "enabled a:1",
                   "events: disabled, enabled");
        }
        list.reset();
        expect(MapTransport::destroyed == 1, "transport deleted once with the list");
    } catch (const std::exception &e) {
        std::fprintf(stderr, "FAIL exception: %s\n", e.what());
        failed++;
    }
    std::printf("cxx: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
