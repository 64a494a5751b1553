"""Subjects and names: built from safe tokens, unsafe ones refused with a clear error."""

from __future__ import annotations

import pytest

from intentbus.bus import InvalidSubjectToken, Topology


def test_production_names() -> None:
    topology = Topology()
    assert topology.intents_subject("hyperliquid", "main") == "intents.hyperliquid.main"
    assert topology.results_subject("paper", "b1") == "results.paper.b1"
    assert topology.intents_filter("paper") == "intents.paper.>"
    assert topology.intents_filter() == "intents.>"
    assert topology.intents_stream == "INTENTS"
    assert topology.results_stream == "RESULTS"
    assert topology.ledger_subject("get") == "ledger.positions.get"


def test_namespace_prefixes_every_name() -> None:
    topology = Topology("t-1")
    assert topology.intents_subject("paper", "main") == "t-1.intents.paper.main"
    assert topology.intents_stream == "T_1_INTENTS"
    assert topology.bucket("EXECUTIONS") == "T_1_EXECUTIONS"


@pytest.mark.parametrize("bad", ["a.b", "a*", ">", "with space", "", "tab\t", "x" * 65, "é"])
def test_unsafe_tokens_are_refused_with_the_value_named(bad: str) -> None:
    with pytest.raises(InvalidSubjectToken, match="book"):
        Topology().intents_subject("paper", bad)
    with pytest.raises(InvalidSubjectToken, match="venue"):
        Topology().results_subject(bad, "main")


def test_bad_namespace_is_refused() -> None:
    with pytest.raises(InvalidSubjectToken, match="namespace"):
        Topology("a.b")
