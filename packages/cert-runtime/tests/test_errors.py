"""The error hierarchy: attributes, defaults, serialisation, pickling, bad arguments."""

from __future__ import annotations

import json
import math
import pickle

import pytest

from cert.runtime.errors import (
    AnalysisError,
    BudgetExceededError,
    CERTError,
    CERTTimeoutError,
    CircuitOpenError,
    GPUOutOfMemoryError,
    InvalidInputError,
    ResourceLoadError,
    RetriesExhaustedError,
)

SUBCLASSES = [
    ResourceLoadError,
    GPUOutOfMemoryError,
    InvalidInputError,
    AnalysisError,
    CERTTimeoutError,
    CircuitOpenError,
    RetriesExhaustedError,
    BudgetExceededError,
]


def test_base_defaults_and_to_dict() -> None:
    err = CERTError("boom")
    assert err.message == "boom" == str(err)
    assert err.recoverable is False
    assert err.retry_after is None
    assert err.context == {}
    assert err.to_dict() == {
        "type": "CERTError",
        "message": "boom",
        "recoverable": False,
        "retry_after": None,
        "context": {},
    }


def test_context_is_copied_and_serialisable() -> None:
    ctx = {"model": "gpt2", "step": 3}
    err = ResourceLoadError("cannot load", recoverable=True, retry_after=2, context=ctx)
    ctx["step"] = 99
    assert err.context == {"model": "gpt2", "step": 3}
    assert err.retry_after == 2.0
    payload = json.loads(json.dumps(err.to_dict()))
    assert payload["type"] == "ResourceLoadError"
    assert payload["recoverable"] is True


@pytest.mark.parametrize("cls", SUBCLASSES)
def test_every_subclass_is_a_cert_error_and_round_trips_through_pickle(cls: type) -> None:
    err = cls("bad thing", retry_after=1.5, context={"k": "v"})
    assert isinstance(err, CERTError)
    clone = pickle.loads(pickle.dumps(err))
    assert type(clone) is cls
    assert clone.to_dict() == err.to_dict()


def test_stdlib_compatible_bases() -> None:
    assert issubclass(InvalidInputError, ValueError)
    assert issubclass(CERTTimeoutError, TimeoutError)


def test_gpu_oom_is_recoverable_unless_told_otherwise() -> None:
    assert GPUOutOfMemoryError("oom").recoverable is True
    assert GPUOutOfMemoryError("oom", recoverable=False).recoverable is False
    assert CircuitOpenError("open").recoverable is False


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf, -math.inf])
def test_retry_after_rejects_bad_numbers(bad: float) -> None:
    with pytest.raises(ValueError, match="retry_after"):
        CERTError("x", retry_after=bad)


@pytest.mark.parametrize("bad", ["5", True, [1]])
def test_retry_after_rejects_non_numbers(bad: object) -> None:
    with pytest.raises(TypeError, match="retry_after"):
        CERTError("x", retry_after=bad)  # type: ignore[arg-type]
