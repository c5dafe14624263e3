"""InputVector: immutable, and every bad signal gets a typed error naming the field and value."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resontinex.trust import (
    CompositeTrustGate,
    Decision,
    InputVector,
    TrustInputError,
    TrustInputTypeError,
    route_to_resontinex,
)

FIELDS = ("alignment_score", "epistemic_risk", "confidence_band")


@pytest.mark.parametrize("position", range(3))
@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (True, TrustInputTypeError),
        (False, TrustInputTypeError),
        ("0.5", TrustInputTypeError),
        (None, TrustInputTypeError),
        ([0.5], TrustInputTypeError),
        (Decimal("0.5") * 0 + 2, TrustInputError),
        (math.nan, TrustInputError),
        (math.inf, TrustInputError),
        (-math.inf, TrustInputError),
        (-1e-12, TrustInputError),
        (1.0000000001, TrustInputError),
        (2, TrustInputError),
        (10**400, TrustInputError),
    ],
)
def test_bad_signal_is_rejected_with_field_and_value(
    position: int, bad: object, error: type[Exception]
) -> None:
    values: list[object] = [0.5, 0.5, 0.5]
    values[position] = bad
    with pytest.raises(error) as caught:
        InputVector(*values)  # type: ignore[arg-type]
    assert FIELDS[position] in str(caught.value)
    assert repr(bad)[:20] in str(caught.value) or str(bad)[:20] in str(caught.value)


def test_errors_are_value_and_type_errors() -> None:
    with pytest.raises(ValueError, match="epistemic_risk"):
        InputVector(0.5, math.nan, 0.5)
    with pytest.raises(TypeError, match="confidence_band"):
        InputVector(0.5, 0.5, True)  # type: ignore[arg-type]


def test_other_real_numbers_are_accepted_as_floats() -> None:
    vector = InputVector(1, Fraction(1, 4), 0)  # type: ignore[arg-type]
    assert list(vector) == [1.0, 0.25, 0.0]
    assert all(type(v) is float for v in vector)


def test_numpy_scalars_are_accepted() -> None:
    np = pytest.importorskip("numpy")
    vector = InputVector(np.float32(0.5), np.float64(0.25), np.int64(1))
    assert list(vector) == [0.5, 0.25, 1.0]


def test_input_vector_is_immutable_and_value_typed() -> None:
    vector = InputVector(0.8, 0.3, 0.2)
    with pytest.raises(AttributeError):
        vector.alignment_score = 0.1  # type: ignore[misc]
    with pytest.raises(AttributeError):
        vector.extra = 1  # type: ignore[attr-defined]
    assert vector == InputVector(0.8, 0.3, 0.2)
    assert hash(vector) == hash(InputVector(0.8, 0.3, 0.2))
    assert vector.replace(epistemic_risk=0.5) == InputVector(0.8, 0.5, 0.2)
    with pytest.raises(TrustInputError):
        vector.replace(epistemic_risk=1.5)
    with pytest.raises(TrustInputTypeError):
        vector.replace(risk=0.5)
    assert vector.as_dict() == dict(zip(FIELDS, (0.8, 0.3, 0.2), strict=True))
    assert "alignment_score=0.8" in repr(vector)


@given(st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_every_valid_vector_evaluates(a: float, r: float, c: float) -> None:
    gate = CompositeTrustGate(InputVector(a, r, c))
    assert 0.0 < gate.raw_trust_score < 1.0


@given(st.one_of(st.floats(allow_nan=True), st.integers(), st.text(), st.none(), st.booleans()))
def test_arbitrary_values_either_validate_or_raise_typed(value: object) -> None:
    try:
        vector = InputVector(value, 0.5, 0.5)  # type: ignore[arg-type]
    except TrustInputError:
        return
    assert 0.0 <= vector.alignment_score <= 1.0


@pytest.mark.parametrize("bad", [(0.5, 0.5), "abc", 0.5, None, (0.5, 0.5, 0.5, 0.5)])
def test_gate_rejects_malformed_inputs(bad: object) -> None:
    with pytest.raises(TrustInputTypeError, match="inputs"):
        CompositeTrustGate(bad)  # type: ignore[arg-type]


def test_gate_validates_plain_sequences() -> None:
    with pytest.raises(TrustInputError, match="alignment_score"):
        CompositeTrustGate((1.5, 0.5, 0.5))  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["", "MAYBE", "executed", None, 3, Decision])
def test_route_rejects_unknown_decisions(bad: object) -> None:
    with pytest.raises(TrustInputError, match="decision"):
        route_to_resontinex(bad)  # type: ignore[arg-type]
