"""peerlb.requests against real local HTTP servers: Adapter mounted on a requests.Session.

Nothing here depends on speed: the only time bounds are seconds wide (a timeout that was
not honoured would take 30 s).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator, List, Optional

import pytest
import requests

import peerlb
import peerlb.requests
from http_backends import Backend, self_signed, start, total_hits

URL = "http://service.test:8080"


@pytest.fixture
def backends() -> Iterator[List[Backend]]:
    started = start(4)
    yield started
    for b in started:
        b.kill()


def running_list(backends: List[Backend], **options: object) -> peerlb.PeerList:
    lst = peerlb.PeerList("round-robin", shuffle=False, **options)  # type: ignore[arg-type]
    lst.update(add=[b.peer for b in backends])
    lst.start()
    return lst


def session(lst: peerlb.PeerList, **options: object) -> requests.Session:
    s = requests.Session()
    s.mount("http://service.test", peerlb.requests.Adapter(lst, **options))  # type: ignore[arg-type]
    s.mount("https://service.test", peerlb.requests.Adapter(lst, **options))  # type: ignore[arg-type]
    return s


def test_killed_backend_costs_no_errors_and_is_ejected(backends: List[Backend]) -> None:
    lst = running_list(backends)
    errors = 0
    with session(lst) as s:
        for i in range(400):
            if i == 200:
                backends[3].kill()
            errors += s.get(f"{URL}/").status_code != 200
    assert errors == 0
    assert any(p["id"] == backends[3].peer and p["ejected"] for p in lst.list_backends())
    assert all(b.hits > 100 for b in backends[:3])


def test_host_header_and_url_are_the_services(backends: List[Backend]) -> None:
    lst = running_list(backends)
    with session(lst) as s:
        for _ in range(8):
            r = s.get(f"{URL}/path?q=1")
            assert r.text.endswith("host=service.test:8080")
            assert r.url == f"{URL}/path?q=1"
            assert r.request.url == f"{URL}/path?q=1"
            assert "Host" not in r.request.headers  # the caller's request is left as it was
        r = s.get(f"{URL}/", headers={"Host": "explicit.test"})
        assert r.text.endswith("host=explicit.test")
    assert all("service.test:8080" in b.hosts for b in backends)


def test_post_is_not_retried_once_sent(backends: List[Backend]) -> None:
    lst = running_list(backends)
    with session(lst) as s:
        before = total_hits(backends)
        assert s.post(f"{URL}/fail", data=b"order=1").status_code == 503
        assert total_hits(backends) - before == 1
        before = total_hits(backends)
        assert s.get(f"{URL}/fail").status_code == 503
        assert total_hits(backends) - before == 3
        before = total_hits(backends)
        assert s.put(f"{URL}/fail", data=iter([b"chunk"])).status_code == 503
        assert total_hits(backends) - before == 1  # a body read once is never sent twice
    with session(lst, rule=peerlb.RequestRule(retry_any_method=True)) as s:
        before = total_hits(backends)
        assert s.post(f"{URL}/fail", data=b"order=1").status_code == 503
        assert total_hits(backends) - before == 3


def test_post_that_never_connected_goes_elsewhere(backends: List[Backend]) -> None:
    lst = running_list(backends, ejection=False)
    backends[0].kill()
    with session(lst) as s:
        for _ in range(8):
            assert s.post(f"{URL}/", data=b"order=1").status_code == 200


def test_budget_stops_a_retry_storm(backends: List[Backend]) -> None:
    lst = running_list(backends)
    rule = peerlb.RequestRule(budget=peerlb.RetryBudget(ratio=0.1, min_per_sec=0))
    with session(lst, rule=rule) as s:
        before = total_hits(backends)
        for _ in range(100):
            assert s.get(f"{URL}/fail").status_code == 503
    attempts = total_hits(backends) - before
    print(f"100 failing GETs under a 10% budget: {attempts} attempts (300 without it)")
    assert attempts <= 110


def test_timeouts_are_honoured(backends: List[Backend]) -> None:
    lst = running_list(backends, ejection=False)
    with session(lst) as s:
        before = total_hits(backends)
        t0 = time.monotonic()
        with pytest.raises(requests.ReadTimeout):
            s.get(f"{URL}/hang", timeout=0.2)
        assert time.monotonic() - t0 < 10
        assert total_hits(backends) - before == 3
    with session(lst, rule=peerlb.RequestRule(timeout=0.3)) as s:
        t0 = time.monotonic()
        with pytest.raises(requests.Timeout):
            s.get(f"{URL}/hang", timeout=20)
        took = time.monotonic() - t0
        print(f"GET /hang under a rule timeout of 0.3 s (call timeout 20 s): raised after {took:.2f} s")
        assert took < 10


def test_classifier_overrides_the_rule(backends: List[Backend]) -> None:
    lst = running_list(backends)

    def classify(
        request: requests.PreparedRequest,
        response: Optional[requests.Response],
        exc: Optional[BaseException],
    ) -> Optional[str]:
        return "failure" if response is not None and response.status_code == 200 else None

    with session(lst, classify=classify, rule=peerlb.RequestRule(max_attempts=2, budget=False)) as s:
        before = total_hits(backends)
        assert s.get(f"{URL}/").status_code == 200  # the last attempt's answer
        assert total_hits(backends) - before == 2
    assert sum(p["failures"] for p in lst.list_backends()) == 2


def test_no_peer_is_a_connection_error() -> None:
    lst = peerlb.PeerList()
    with session(lst) as s:
        with pytest.raises(requests.ConnectionError) as info:
            s.get(f"{URL}/")
    assert isinstance(info.value.__cause__, peerlb.NotStarted)


def test_bad_arguments() -> None:
    lst = peerlb.PeerList()
    with pytest.raises(TypeError):
        peerlb.requests.Adapter(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        peerlb.requests.Adapter(lst, rule={"max_attempts": 2})  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        peerlb.requests.Adapter(lst, classify="failure")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        peerlb.requests.Adapter(lst, max_retries=3)
    with pytest.raises(peerlb.InvalidArgument):
        peerlb.RequestRule(max_attempts=0)
    with pytest.raises(peerlb.InvalidArgument):
        peerlb.RequestRule(failure_statuses="5xx")
    with pytest.raises(peerlb.InvalidArgument):
        peerlb.RequestRule(failure_statuses=[500, 700])
    with pytest.raises(TypeError):
        peerlb.RequestRule(failure_statuses=503)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        peerlb.RequestRule(budget="off")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        peerlb.RequestRule(timeout=-1)
    rule = peerlb.RequestRule(failure_statuses=range(502, 505), max_attempts=2, budget=False)
    assert rule.spec == "failure_statuses=502-504&max_attempts=2&budget=off"
    assert rule.failure_statuses == "502-504" and rule.max_attempts == 2
    assert repr(peerlb.RequestRule()) == "<peerlb.RequestRule (defaults)>"


def test_https_keeps_the_tls_name(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path, "service.test")
    backends = start(2, (cert, key))
    try:
        lst = running_list(backends)
        with session(lst) as s:
            for _ in range(4):
                r = s.get("https://service.test:8443/", verify=str(cert))
                assert r.status_code == 200 and r.text.endswith("host=service.test:8443")
        assert all(b.server_names == {"service.test"} for b in backends)
    finally:
        for b in backends:
            b.kill()
