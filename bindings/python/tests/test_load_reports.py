"""Load reports: ``peerlb.LoadReport`` and ``Choice.finish(load=...)``.

The rules (ORCA parsing, validation, what strategies do with reports) are the core's; these
tests check the translation: every accepted form of ``load``, the errors for bad ones (a
refused finish leaves the choice pending), and that reports reach the strategy.
"""

from __future__ import annotations

import math

import pytest

import peerlb


def test_a_report_from_fields_or_orca_text() -> None:
    r = peerlb.LoadReport(requests_in_flight=3, utilization=0.5, qps=100, eps=2.5)
    assert (r.requests_in_flight, r.utilization, r.qps, r.eps) == (3, 0.5, 100.0, 2.5)
    assert peerlb.LoadReport() == peerlb.LoadReport(None, None, None, None)
    assert peerlb.LoadReport().qps is None
    t = peerlb.LoadReport.from_orca(
        "TEXT cpu_utilization=0.8, application_utilization=0.25, rps_fractional=200, eps=2, "
        "named_metrics.rif=7, mem_utilization=0.1"
    )
    assert (t.requests_in_flight, t.utilization, t.qps, t.eps) == (7, 0.25, 200.0, 2.0)
    assert peerlb.LoadReport.from_orca(str(t)) == t
    assert peerlb.LoadReport(requests_in_flight=4.0).requests_in_flight == 4
    assert "requests_in_flight=3" in repr(r)


@pytest.mark.parametrize(
    "fields",
    [
        {"requests_in_flight": -1},
        {"requests_in_flight": 1.5},
        {"requests_in_flight": 2**40},
        {"requests_in_flight": 10**400},
        {"utilization": -0.5},
        {"qps": math.nan},
        {"eps": math.inf},
        {"qps": 10**400},
    ],
)
def test_bad_numbers_are_invalid_argument(fields: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(peerlb.InvalidArgument):
        peerlb.LoadReport(**fields)


def test_wrong_types_are_type_errors() -> None:
    with pytest.raises(TypeError):
        peerlb.LoadReport(qps="fast")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        peerlb.LoadReport(requests_in_flight=True)
    with pytest.raises(TypeError):
        peerlb.LoadReport.from_orca(b"TEXT eps=1")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    ["TEXT eps=-1", "TEXT eps=1, eps=2", "TEXT colour=1", "JSON {}", "BIN AAAA", "TEXT eps", "x" * 9000],
)
def test_bad_orca_text_is_invalid_argument(text: str) -> None:
    with pytest.raises(peerlb.InvalidArgument, match="load report"):
        peerlb.LoadReport.from_orca(text)


def test_finish_takes_every_form_of_load() -> None:
    lst = peerlb.PeerList("weighted-round-robin:orca", shuffle=False)
    lst.update(add=["a"])
    lst.start()
    for load in [
        None,
        peerlb.LoadReport(utilization=0.5, qps=10),
        "TEXT cpu_utilization=0.5, rps_fractional=10",
        {"utilization": 0.5, "qps": 10, "eps": 0, "requests_in_flight": 1},
    ]:
        c = lst.choose()
        c.finish("ok", 0.01, load=load)
        assert c.finished
    c = lst.choose()
    c.finish(load="TEXT named_metrics.rif=2")
    assert c.finished
    lst.stop()


@pytest.mark.parametrize(
    "load, error",
    [
        ("TEXT eps=nan", peerlb.InvalidArgument),
        ({"qps": -1}, peerlb.InvalidArgument),
        ({"colour": 1}, peerlb.InvalidArgument),
        ({"qps": "x"}, TypeError),
        ({1: 2}, TypeError),
        (42, TypeError),
        (b"TEXT eps=1", TypeError),
    ],
)
def test_a_bad_load_leaves_the_choice_pending(load: object, error: type) -> None:
    lst = peerlb.PeerList(shuffle=False)
    lst.update(add=["a"])
    lst.start()
    c = lst.choose()
    with pytest.raises(error):
        c.finish(load=load)  # type: ignore[arg-type]
    assert not c.finished
    assert lst.introspect()["peers"][0]["pending"] == 1
    c.finish()
    with pytest.raises(peerlb.AlreadyFinished):
        c.finish(load="TEXT eps=1")


def test_reported_in_flight_counts_reach_prequal() -> None:
    clock = peerlb.ManualClock()
    lst = peerlb.PeerList("prequal", shuffle=False, seed=1, clock=clock)
    lst.update(add=["a", "b"])
    lst.start()
    first = [lst.choose(), lst.choose()]  # each new peer gets one probe
    assert sorted(c.peer for c in first) == ["a", "b"]
    for c in first:
        c.finish("ok", 0.010 if c.peer == "a" else 0.012)
    c = lst.choose()
    assert c.peer == "a"  # the faster one
    c.finish("ok", 0.010, load={"requests_in_flight": 30})
    # "a" reports 30 requests in flight (other clients'): it is hot, "b" is picked.
    for _ in range(3):
        c = lst.choose()
        assert c.peer == "b"
        c.finish("ok", 0.012)
