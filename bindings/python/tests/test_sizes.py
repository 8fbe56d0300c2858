"""Sizes the caller controls never abort the process: a sequence is read item by item
(its ``__len__`` and ``__length_hint__`` are never trusted to size an allocation), and more
than ``MAX_ITEMS`` (2**20) items is ``InvalidArgument``.

Each case runs in a child process, so a regression (an abort on a huge allocation) fails
the test instead of killing pytest.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

PRELUDE = textwrap.dedent(
    """
    import itertools
    import peerlb

    class Liar(list):
        # A list that claims 2**40 items.
        def __len__(self):
            return 2**40

    class HintingIterator:
        # An iterator whose length hint asks for 2**40 items.
        def __init__(self, items):
            self.items = iter(items)
        def __iter__(self):
            return self
        def __next__(self):
            return next(self.items)
        def __length_hint__(self):
            return 2**40

    class Hinting:
        def __init__(self, items):
            self.items = items
        def __iter__(self):
            return HintingIterator(self.items)

    def running():
        lst = peerlb.PeerList(shuffle=False)
        lst.update(add=["a:1"])
        lst.start()
        return lst

    def outcome(fn):
        try:
            fn()
        except Exception as e:
            print("raised", type(e).__name__, getattr(e, "code", ""))
        else:
            print("ok")
    """
)

CASES = {
    # the case the issue found: pyo3's Vec extraction reserved len() items up front
    "EtcdUpdater(endpoints=Liar)": (
        "outcome(lambda: peerlb.EtcdUpdater(Liar(['http://127.0.0.1:1']), '/p'))",
        # a build without the etcd feature refuses it after reading the endpoints
        {"ok", "raised InvalidArgument invalid-argument"},
    ),
    "EtcdUpdater(endpoints=Hinting)": (
        "outcome(lambda: peerlb.EtcdUpdater(Hinting(['http://127.0.0.1:1']), '/p'))",
        {"ok", "raised InvalidArgument invalid-argument"},
    ),
    "update(add=Liar)": (
        "lst = running(); outcome(lambda: lst.update(add=Liar(['b:1']))); print(len(lst))",
        {"ok\n2"},
    ),
    "update(add=Hinting)": (
        "lst = running(); outcome(lambda: lst.update(add=Hinting(['b:1']))); print(len(lst))",
        {"ok\n2"},
    ),
    "update(remove=Hinting)": (
        "lst = running(); outcome(lambda: lst.update(remove=Hinting(['a:1']))); print(len(lst))",
        {"ok\n0"},
    ),
    "StaticUpdater(Liar)": (
        "outcome(lambda: peerlb.StaticUpdater(Liar(['b:1'])))",
        {"ok"},
    ),
    "Upstream(Liar)": (
        "outcome(lambda: peerlb.Upstream(Liar(['b:1']), manual=True).backends)",
        {"ok"},
    ),
    "Upstream.reconcile(Hinting)": (
        "u = peerlb.Upstream(['a:1'], manual=True)\n"
        "outcome(lambda: u.reconcile(Hinting(['b:1']))); print(u.backends)",
        {"ok\n['b:1']"},
    ),
    # endless input: stopped at MAX_ITEMS, and nothing applied
    "update(add=endless)": (
        "lst = running()\n"
        "outcome(lambda: lst.update(add=(f'p{i}' for i in itertools.count())))\n"
        "print(len(lst))",
        {"raised InvalidArgument invalid-argument\n1"},
    ),
    "Upstream(endless)": (
        "outcome(lambda: peerlb.Upstream(itertools.repeat('a:1'), manual=True))",
        {"raised InvalidArgument invalid-argument"},
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_sizes_from_the_caller_never_abort(case: str) -> None:
    code, expected = CASES[case]
    r = subprocess.run(
        [sys.executable, "-c", PRELUDE + code],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, f"child died ({r.returncode}): {r.stderr[-2000:]}"
    assert r.stdout.strip() in expected, r.stdout + r.stderr
