"""Price table and cost ledger: Decimal money, unknown models are errors, the hourly cap."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cert.coordination.backend import TokenUsage
from cert.coordination.errors import CostCapExceededError, PriceTableError, UnknownModelError
from cert.coordination.pricing import HOUR_S, CostLedger, PriceTable

TABLE = PriceTable.from_mapping(
    {
        "as_of": "2026-11-23",
        "models": {
            "m-small": {"input": "1", "output": "5", "cache_write": "1.25", "cache_read": "0.1"},
            "m-tiered": {
                "input": "0.10",
                "output": "0.50",
                "cache_write": "0.125",
                "cache_read": "0.01",
                "tiers": [
                    {
                        "above_prompt_tokens": 100,
                        "input": "0.5",
                        "output": "2.5",
                        "cache_write": "0.625",
                        "cache_read": "0.05",
                    }
                ],
            },
            "local": {"unpriced": True},
        },
    }
)


def test_default_table_ships_current_models_with_a_date() -> None:
    table = PriceTable.default()
    assert table.as_of == "2026-12-07"
    assert "claude-sonnet-5" in table.models
    cost = table.cost(
        "claude-sonnet-5", TokenUsage(input_tokens=1_000_000, output_tokens=1_000_000)
    )
    assert cost == Decimal("12.00")


def test_cost_is_exact_decimal_with_cache_tokens() -> None:
    usage = TokenUsage(
        input_tokens=1000,
        output_tokens=200,
        cache_creation_input_tokens=100,
        cache_read_input_tokens=50,
    )
    expected = (
        Decimal(1000) * 1
        + Decimal(200) * 5
        + Decimal(100) * Decimal("1.25")
        + Decimal(50) * Decimal("0.1")
    ) / Decimal(10**6)
    assert TABLE.cost("m-small", usage) == expected


def test_long_prompt_tier_applies_above_threshold() -> None:
    small = TABLE.cost("m-tiered", TokenUsage(input_tokens=100, output_tokens=0))
    large = TABLE.cost("m-tiered", TokenUsage(input_tokens=101, output_tokens=0))
    assert small == Decimal("0.10") * 100 / 10**6
    assert large == Decimal("0.5") * 101 / 10**6


def test_unknown_model_is_an_error_never_zero() -> None:
    with pytest.raises(UnknownModelError, match="gpt-nope"):
        TABLE.cost("gpt-nope", TokenUsage(1, 1))


def test_unpriced_model_costs_none_and_is_counted() -> None:
    assert TABLE.cost("local", TokenUsage(10, 10)) is None
    ledger = CostLedger(TABLE)
    reservation = ledger.reserve(agent="a", model="local", prompt_tokens=10, max_tokens=10)
    assert ledger.settle(reservation, TokenUsage(10, 10)) is None
    summary = ledger.summary()
    assert summary.unpriced_calls == {"local": 1}
    assert summary.total == 0
    assert "local" not in summary.by_model


def test_unpriced_model_refused_under_a_cap() -> None:
    ledger = CostLedger(TABLE, max_cost_per_hour=Decimal("1"))
    with pytest.raises(UnknownModelError, match="cannot be enforced"):
        ledger.reserve(agent="a", model="local", prompt_tokens=1, max_tokens=1)


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ([], "top level"),
        ({"models": {}}, "non-empty"),
        (
            {"models": {"x": {"input": "1", "output": "1", "cache_write": "1"}}},
            "models.x lacks cache_read",
        ),
        (
            {
                "models": {
                    "x": {"input": "-1", "output": "1", "cache_write": "1", "cache_read": "1"}
                }
            },
            "models.x.input",
        ),
        (
            {
                "models": {
                    "x": {"input": "abc", "output": "1", "cache_write": "1", "cache_read": "1"}
                }
            },
            "models.x.input",
        ),
        (
            {
                "models": {
                    "x": {"input": True, "output": "1", "cache_write": "1", "cache_read": "1"}
                }
            },
            "models.x.input",
        ),
        (
            {
                "models": {
                    "x": {"input": "NaN", "output": "1", "cache_write": "1", "cache_read": "1"}
                }
            },
            "models.x.input",
        ),
        (
            {
                "models": {
                    "x": {
                        "input": "1",
                        "output": "1",
                        "cache_write": "1",
                        "cache_read": "1",
                        "tiers": [{"above_prompt_tokens": -3}],
                    }
                }
            },
            "above_prompt_tokens",
        ),
        ({"models": {"x": "cheap"}}, "models.x must be a mapping"),
    ],
)
def test_malformed_tables_name_the_key_path(document: object, fragment: str) -> None:
    with pytest.raises(PriceTableError, match=fragment):
        PriceTable.from_mapping(document)


def test_unreadable_yaml_file(tmp_path: Path) -> None:
    bad = tmp_path / "prices.yaml"
    bad.write_text("models: {x: [unclosed")
    with pytest.raises(PriceTableError, match="cannot read"):
        PriceTable.from_yaml(bad)
    with pytest.raises(PriceTableError, match="cannot read"):
        PriceTable.from_yaml(tmp_path / "missing.yaml")


def test_override_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(
        'as_of: "2030-01-01"\nmodels:\n'
        '  my-model: {input: "2", output: "3", cache_write: "0", cache_read: "0"}\n'
    )
    table = PriceTable.from_yaml(path)
    assert table.models == ["my-model"]
    assert table.cost("my-model", TokenUsage(10**6, 10**6)) == Decimal(5)


@given(st.integers(0, 10**7), st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 10**6))
def test_cost_is_non_negative_and_additive(i: int, o: int, cw: int, cr: int) -> None:
    whole = TABLE.cost("m-small", TokenUsage(i, o, cw, cr))
    parts = sum(
        (
            TABLE.cost("m-small", TokenUsage(i, 0)),
            TABLE.cost("m-small", TokenUsage(0, o)),
            TABLE.cost("m-small", TokenUsage(0, 0, cw, 0)),
            TABLE.cost("m-small", TokenUsage(0, 0, 0, cr)),
        ),
        Decimal(0),
    )
    assert whole is not None
    assert whole >= 0
    assert whole == parts


def test_ledger_totals_per_agent_model_and_hour(manual_clock) -> None:  # type: ignore[no-untyped-def]
    ledger = CostLedger(TABLE, clock=manual_clock)
    for agent in ("a", "b", "a"):
        r = ledger.reserve(agent=agent, model="m-small", prompt_tokens=10, max_tokens=10)
        ledger.settle(r, TokenUsage(input_tokens=1_000_000, output_tokens=0))
    summary = ledger.summary()
    assert summary.by_agent == {"a": Decimal(2), "b": Decimal(1)}
    assert summary.by_model == {"m-small": Decimal(3)}
    assert summary.last_hour == Decimal(3)
    manual_clock.advance(HOUR_S)
    assert ledger.summary().last_hour == 0
    assert ledger.summary().total == Decimal(3)


def test_cap_checked_before_request_with_worst_case(manual_clock) -> None:  # type: ignore[no-untyped-def]
    # worst case of one request: 1000 prompt tokens x $1 + 1000 output x $5 = $0.006
    ledger = CostLedger(TABLE, max_cost_per_hour=Decimal("0.010"), clock=manual_clock)
    first = ledger.reserve(agent="a", model="m-small", prompt_tokens=1000, max_tokens=1000)
    # A concurrent second request does not fit next to the first one's reservation.
    with pytest.raises(CostCapExceededError, match="max_cost_per_hour"):
        ledger.reserve(agent="b", model="m-small", prompt_tokens=1000, max_tokens=1000)
    ledger.settle(first, TokenUsage(input_tokens=500, output_tokens=100))  # actual $0.001
    second = ledger.reserve(agent="b", model="m-small", prompt_tokens=1000, max_tokens=1000)
    ledger.release(second)
    assert ledger.summary().reserved == 0
    assert ledger.summary().total == Decimal("0.001")


def test_cap_refusal_says_when_spending_leaves_the_window(manual_clock) -> None:  # type: ignore[no-untyped-def]
    ledger = CostLedger(TABLE, max_cost_per_hour=Decimal("1"), clock=manual_clock)
    r = ledger.reserve(agent="a", model="m-small", prompt_tokens=0, max_tokens=100_000)
    ledger.settle(r, TokenUsage(input_tokens=0, output_tokens=190_000))  # $0.95
    manual_clock.advance(600)
    with pytest.raises(CostCapExceededError) as info:
        ledger.reserve(agent="a", model="m-small", prompt_tokens=0, max_tokens=100_000)
    assert info.value.retry_after == pytest.approx(HOUR_S - 600)
    manual_clock.advance(HOUR_S - 600)
    ledger.reserve(agent="a", model="m-small", prompt_tokens=0, max_tokens=100_000)


@given(st.lists(st.tuples(st.integers(0, 5000), st.integers(1, 5000)), min_size=1, max_size=40))
def test_cap_never_exceeded_when_usage_within_bounds(requests: list[tuple[int, int]]) -> None:
    cap = Decimal("0.05")
    ledger = CostLedger(TABLE, max_cost_per_hour=cap, clock=lambda: 0.0)
    for prompt, max_tokens in requests:
        try:
            r = ledger.reserve(
                agent="a", model="m-small", prompt_tokens=prompt, max_tokens=max_tokens
            )
        except CostCapExceededError:
            continue
        ledger.settle(r, TokenUsage(input_tokens=prompt, output_tokens=max_tokens))
    assert ledger.summary().last_hour <= cap


@pytest.mark.parametrize(
    ("model", "entry", "input_rate", "output_rate"),
    [
        ("claude-sonnet-4-5", "claude-sonnet-4-5", "3.00", "15.00"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5", "3.00", "15.00"),
        ("claude-opus-4-5", "claude-opus-4-5", "5.00", "25.00"),
        ("claude-opus-4-5-20251101", "claude-opus-4-5", "5.00", "25.00"),
        ("claude-opus-4-1", "claude-opus-4-1", "15.00", "75.00"),
        ("claude-opus-4-1-20250805", "claude-opus-4-1", "15.00", "75.00"),
        ("claude-sonnet-4-20250514", "claude-sonnet-4", "3.00", "15.00"),
        ("claude-sonnet-4-0", "claude-sonnet-4", "3.00", "15.00"),
        ("claude-opus-4-20250514", "claude-opus-4", "15.00", "75.00"),
        ("claude-haiku-4-5-20251001", "claude-haiku-4-5", "1.00", "5.00"),
        ("claude-3-7-sonnet-20250219", "claude-3-7-sonnet", "3.00", "15.00"),
        ("claude-3-7-sonnet-latest", "claude-3-7-sonnet", "3.00", "15.00"),
        ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet", "3.00", "15.00"),
        ("claude-3-5-haiku-20241022", "claude-3-5-haiku", "0.80", "4.00"),
        ("claude-3-opus-20240229", "claude-3-opus", "15.00", "75.00"),
        ("claude-3-haiku-20240307", "claude-3-haiku", "0.25", "1.25"),
    ],
)
def test_current_legacy_and_dated_ids_are_priced(
    model: str, entry: str, input_rate: str, output_rate: str
) -> None:
    table = PriceTable.default()
    assert table.resolve(model) == entry
    rates = table.price(model).rates_for(0)
    assert (rates.input, rates.output) == (Decimal(input_rate), Decimal(output_rate))
    if entry != "claude-3-haiku":  # the page lists Haiku 3's cache rates rounded: $0.30, $0.03
        assert rates.cache_write == rates.input * Decimal("1.25")  # the page's multipliers
        assert rates.cache_read == rates.input / 10


def test_the_client_accepts_the_models_that_used_to_raise(make_client) -> None:  # type: ignore[no-untyped-def]
    for model in ("claude-sonnet-4-5", "claude-opus-4-5", "claude-opus-4-1",
                  "claude-sonnet-4-20250514"):  # fmt: skip
        assert make_client(model=model).default_model == model


def test_sonnet_4_long_context_tier() -> None:
    table = PriceTable.default()
    long = TokenUsage(input_tokens=200_001, output_tokens=1_000_000)
    assert table.cost("claude-sonnet-4-20250514", long) == Decimal("6.00") * Decimal(
        "0.200001"
    ) + Decimal("22.50")


@pytest.mark.parametrize(
    "model", ["claude-sonnet-4-2025051", "claude-nope-20250514", "claude-sonnet-4-latest", ""]
)
def test_unknown_and_near_miss_ids_still_raise(model: str) -> None:
    with pytest.raises(UnknownModelError):
        PriceTable.default().price(model)


@pytest.mark.parametrize(
    ("aliases", "fragment"),
    [
        ({"a": "missing"}, "aliases.a points to 'missing'"),
        ({"x": "x"}, "aliases.x is also a model entry"),
        ({"a": 3}, "aliases.a must map"),
        (["a"], "'aliases' must be a mapping"),
    ],
)
def test_malformed_aliases_name_the_key(aliases: object, fragment: str) -> None:
    document = {"models": {"x": {"input": 1, "output": 1, "cache_write": 1, "cache_read": 1}}}
    with pytest.raises(PriceTableError, match=fragment):
        PriceTable.from_mapping({**document, "aliases": aliases})
