"""Subjects and names: built from safe tokens, unsafe ones refused with a clear error."""

from __future__ import annotations

import pytest

from intentbus.bus import InvalidSubjectToken, Topology


def test_production_names() -> None:
    topology = Topology()
    assert topology.intents_subject("hyperliquid", "main", "p-1") == "intents.hyperliquid.main.p-1"
    assert topology.intents_partition_filter("paper", 7) == "intents.paper.*.7.*"
    assert topology.intents_partition_filter("paper", 7, "b1") == "intents.paper.b1.7.*"
    assert topology.intent_partition_of("intents.paper.b1.7.p-1") == 7
    assert topology.fills_subject("paper", "b1") == "fills.paper.b1"
    assert topology.fills_stream == "FILLS"
    assert topology.results_subject("paper", "b1") == "results.paper.b1"
    assert topology.intents_filter("paper") == "intents.paper.>"
    assert topology.intents_filter() == "intents.>"
    assert topology.intents_stream == "INTENTS"
    assert topology.results_stream == "RESULTS"
    assert topology.ledger_subject("get") == "ledger.positions.get"


def test_namespace_prefixes_every_name() -> None:
    topology = Topology("t-1")
    assert topology.intents_subject("paper", "main", "p") == "t-1.intents.paper.main.p"
    assert topology.intents_partition_transform(16) == (
        "t-1.intents.*.*.*",
        "t-1.intents.{{wildcard(1)}}.{{wildcard(2)}}.{{partition(16,3)}}.{{wildcard(3)}}",
    )
    assert topology.intents_stream == "T_1_INTENTS"
    assert topology.bucket("EXECUTIONS") == "T_1_EXECUTIONS"


@pytest.mark.parametrize("bad", ["a.b", "a*", ">", "with space", "", "tab\t", "x" * 65, "é"])
def test_unsafe_tokens_are_refused_with_the_value_named(bad: str) -> None:
    with pytest.raises(InvalidSubjectToken, match="book"):
        Topology().intents_subject("paper", bad, "p")
    with pytest.raises(InvalidSubjectToken, match="venue"):
        Topology().results_subject(bad, "main")


def test_bad_namespace_is_refused() -> None:
    with pytest.raises(InvalidSubjectToken, match="namespace"):
        Topology("a.b")


@pytest.mark.parametrize("bad", ["a.b", "a*", ">", "with space", "", "x" * 129])
def test_unsafe_position_ids_are_refused_in_intent_subjects(bad: str) -> None:
    with pytest.raises(InvalidSubjectToken, match="position_id"):
        Topology().intents_subject("paper", "main", bad)


def test_a_position_id_at_its_maximum_length_is_a_valid_subject_token() -> None:
    assert Topology().intents_subject("v" * 64, "b" * 64, "p" * 128).endswith("p" * 128)
