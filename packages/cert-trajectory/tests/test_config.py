"""TrajectoryConfig validation: typed errors that name the field and the value."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cert.runtime.errors import InvalidInputError
from cert.trajectory import ConfigError, TrajectoryConfig

NUMBER_FIELDS = (
    "temperature",
    "top_p",
    "low_prob_threshold",
    "max_perplexity",
    "max_mean_entropy",
    "max_low_prob_fraction",
)


@pytest.mark.parametrize("name", NUMBER_FIELDS)
@pytest.mark.parametrize("bad", [True, "1.0", None, math.nan, math.inf, -math.inf])
def test_number_fields_reject_wrong_types_and_non_finite(name: str, bad: object) -> None:
    with pytest.raises(ConfigError) as info:
        TrajectoryConfig(**{name: bad})  # type: ignore[arg-type]
    assert name in str(info.value)
    assert isinstance(info.value, InvalidInputError)


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("max_new_tokens", 0),
        ("max_new_tokens", 10**6),
        ("max_new_tokens", 3.0),
        ("top_k", 1),
        ("temperature", -0.1),
        ("top_p", 0.0),
        ("top_p", 1.5),
        ("low_prob_threshold", 0.0),
        ("low_prob_threshold", 1.0),
        ("max_perplexity", 1.0),  # perplexity >= 1 always: every response would fail
        ("max_mean_entropy", 0.0),
        ("max_low_prob_fraction", 1.0),  # a fraction can never exceed 1: never fires
        ("max_prompt_chars", 0),
        ("seed", -1),
    ],
)
def test_out_of_range_values_are_rejected(name: str, bad: object) -> None:
    with pytest.raises(ConfigError, match=name):
        TrajectoryConfig(**{name: bad})  # type: ignore[arg-type]


def test_entropy_threshold_that_cannot_be_crossed_is_an_error() -> None:
    # The original: top-10 entropy <= ln 10 ≈ 2.30 < its 2.5 threshold. Same bug, any vocab.
    config = TrajectoryConfig(max_mean_entropy=2.5)
    with pytest.raises(ConfigError, match="can never be exceeded"):
        config.check_against_vocab(10)
    config.check_against_vocab(13)  # ln 13 ≈ 2.56 > 2.5: can fire


def test_temperature_zero_is_greedy_and_recorded() -> None:
    assert TrajectoryConfig(temperature=0).decoding() == {"strategy": "greedy", "temperature": 0.0}
    sampled = TrajectoryConfig(temperature=0.7, top_p=0.9, seed=3)
    assert not sampled.greedy
    assert sampled.decoding()["strategy"] == "sample"
    assert sampled.decoding()["temperature"] == 0.7


def test_from_mapping_names_unknown_keys_and_rejects_non_mappings() -> None:
    with pytest.raises(ConfigError, match="load_in_8bit"):
        TrajectoryConfig.from_mapping({"load_in_8bit": True})
    with pytest.raises(ConfigError, match="mapping"):
        TrajectoryConfig.from_mapping([1, 2])  # type: ignore[arg-type]
    assert TrajectoryConfig.from_mapping({"max_new_tokens": 5}).max_new_tokens == 5


@settings(deadline=None)
@given(st.integers(min_value=1, max_value=8192), st.floats(min_value=0, max_value=100))
def test_fingerprint_distinguishes_configs(tokens: int, temperature: float) -> None:
    a = TrajectoryConfig(max_new_tokens=tokens, temperature=temperature)
    b = TrajectoryConfig(max_new_tokens=tokens, temperature=temperature)
    assert a.fingerprint() == b.fingerprint()
    other = TrajectoryConfig(max_new_tokens=tokens % 8192 + 1, temperature=temperature)
    assert other.fingerprint() != a.fingerprint()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=5,
)
field_names = st.sampled_from(
    ["max_new_tokens", "temperature", "top_p", "seed", "top_k", "max_perplexity", "unknown"]
)


@settings(deadline=None)
@given(st.dictionaries(field_names, json_values, max_size=4))
def test_any_parsed_mapping_gives_a_config_or_a_config_error(values: dict[str, object]) -> None:
    error: ConfigError | None = None
    try:
        config: TrajectoryConfig | None = TrajectoryConfig.from_mapping(values)
    except ConfigError as exc:  # anything else (TypeError, ...) fails the test
        error, config = exc, None
    if error is not None:
        assert error.context.get("field") is not None
    else:
        assert isinstance(config, TrajectoryConfig)
