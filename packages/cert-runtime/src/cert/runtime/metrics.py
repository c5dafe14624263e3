"""Idempotent prometheus-client metrics on an explicit registry, with a disabled (no-op) mode.

prometheus-client raises "Duplicated timeseries in CollectorRegistry" when a second component
creates a metric of the same name on the same registry (the original CERT monitor crashed that way
when two monitors lived in one process). :class:`MetricsFactory` keeps one table per registry,
shared by every factory on that registry, and hands back the existing collector when the name, kind
and label names match; a conflicting redefinition is an :class:`InvalidInputError` that names both.
"""

from __future__ import annotations

import itertools
import math
import re
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

from cert.runtime.errors import InvalidInputError

__all__ = ["MetricsFactory", "NoopMetric"]

_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

F = TypeVar("F", bound=Callable[..., Any])


class NoopMetric:
    """Stands in for a Counter, Gauge or Histogram (and their children) when metrics are off."""

    def labels(self, *labelvalues: Any, **labelkwargs: Any) -> NoopMetric:
        return self

    def inc(self, amount: float = 1, exemplar: Any = None) -> None:
        return None

    def dec(self, amount: float = 1) -> None:
        return None

    def set(self, value: float) -> None:
        return None

    def set_to_current_time(self) -> None:
        return None

    def observe(self, amount: float, exemplar: Any = None) -> None:
        return None

    def time(self) -> NoopMetric:
        return self

    def count_exceptions(self, exception: Any = Exception) -> NoopMetric:
        return self

    def track_inprogress(self) -> NoopMetric:
        return self

    def remove(self, *labelvalues: Any) -> None:
        return None

    def clear(self) -> None:
        return None

    def __enter__(self) -> NoopMetric:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def __call__(self, fn: F) -> F:
        """Used as a decorator (``@metric.time()``): returns ``fn`` unchanged."""
        return fn


_NOOP = NoopMetric()


@dataclass(frozen=True)
class _Definition:
    kind: str
    labelnames: tuple[str, ...]
    buckets: tuple[float, ...] | None
    collector: MetricWrapperBase


# One table per registry, shared by every factory that uses it; weak keys so that dropping a
# registry drops its table.
_tables: weakref.WeakKeyDictionary[CollectorRegistry, dict[str, _Definition]] = (
    weakref.WeakKeyDictionary()
)
_tables_lock = threading.Lock()


class MetricsFactory:
    """Create or reuse metrics on one registry; ``enabled=False`` hands out no-op metrics."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        enabled: bool = True,
        namespace: str = "",
    ) -> None:
        if registry is not None and not isinstance(registry, CollectorRegistry):
            raise InvalidInputError(
                f"registry must be a prometheus_client CollectorRegistry, got {registry!r}",
                context={"field": "registry", "value": repr(registry)},
            )
        if not isinstance(enabled, bool):
            raise InvalidInputError(
                f"enabled must be a bool, got {enabled!r}",
                context={"field": "enabled", "value": repr(enabled)},
            )
        if not isinstance(namespace, str) or (namespace and not _NAME.match(namespace)):
            raise InvalidInputError(
                f"namespace must be a metric-name prefix like 'cert', got {namespace!r}",
                context={"field": "namespace", "value": repr(namespace)},
            )
        # Never the global default registry implicitly: a private one when none is given.
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.enabled = enabled
        self.namespace = namespace
        # Exact repeat requests skip validation and the shared lock (a hot-path lookup).
        self._seen: dict[tuple[Any, ...], Any] = {}

    def counter(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> Any:
        """A Counter (``name`` with or without the ``_total`` suffix names the same counter)."""
        return self._get("counter", name, documentation, labelnames, None)

    def gauge(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> Any:
        """A Gauge."""
        return self._get("gauge", name, documentation, labelnames, None)

    def histogram(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        buckets: Sequence[float] | None = None,
    ) -> Any:
        """A Histogram; ``buckets`` must be increasing and finite (``+Inf`` is appended)."""
        return self._get("histogram", name, documentation, labelnames, buckets)

    # ------------------------------------------------------------------ internals
    def _get(
        self,
        kind: str,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        buckets: Sequence[float] | None,
    ) -> Any:
        key: tuple[Any, ...] | None
        try:
            key = (kind, name, documentation, tuple(labelnames), _bucket_key(buckets))
            hash(key)
        except TypeError:  # not iterable or not hashable: the slow path names the problem
            key = None
        if key is not None and key in self._seen:
            return self._seen[key]
        metric = self._lookup_or_create(kind, name, documentation, labelnames, buckets)
        if key is not None:
            self._seen[key] = metric
        return metric

    def _lookup_or_create(
        self,
        kind: str,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        buckets: Sequence[float] | None,
    ) -> Any:
        full_name = self._full_name(name, kind)
        labels = _check_labels(full_name, labelnames)
        bucket_tuple = _check_buckets(full_name, buckets) if buckets is not None else None
        if not isinstance(documentation, str) or not documentation.strip():
            raise InvalidInputError(
                f"metric {full_name!r}: documentation must be a non-empty string, "
                f"got {documentation!r}",
                context={"field": "documentation", "value": repr(documentation)},
            )
        if not self.enabled:
            return _NOOP
        with _tables_lock:
            table = _tables.setdefault(self.registry, {})
            existing = table.get(full_name)
            if existing is not None:
                _check_same(full_name, existing, kind, labels, bucket_tuple)
                return existing.collector
            collector = _create(kind, full_name, documentation, labels, bucket_tuple, self.registry)
            table[full_name] = _Definition(kind, labels, bucket_tuple, collector)
            return collector

    def _full_name(self, name: str, kind: str) -> str:
        if not isinstance(name, str) or not _NAME.match(name):
            raise InvalidInputError(
                f"metric name must match [a-zA-Z_:][a-zA-Z0-9_:]*, got {name!r}",
                context={"field": "name", "value": repr(name)},
            )
        full = f"{self.namespace}_{name}" if self.namespace else name
        if kind == "counter" and full.endswith("_total"):
            full = full[: -len("_total")]  # prometheus-client stores counters without it
        return full


def _bucket_key(buckets: Sequence[float] | None) -> tuple[float, ...] | None:
    return None if buckets is None else tuple(buckets)


def _check_labels(metric: str, labelnames: Sequence[str]) -> tuple[str, ...]:
    if isinstance(labelnames, str):
        raise InvalidInputError(
            f"metric {metric!r}: labelnames must be a sequence of names, not the string "
            f"{labelnames!r}",
            context={"field": "labelnames", "value": labelnames},
        )
    try:
        labels = tuple(labelnames)
    except TypeError:
        raise InvalidInputError(
            f"metric {metric!r}: labelnames must be a sequence of names, got {labelnames!r}",
            context={"field": "labelnames", "value": repr(labelnames)},
        ) from None
    for label in labels:
        if not isinstance(label, str) or not _LABEL.match(label) or label.startswith("__"):
            raise InvalidInputError(
                f"metric {metric!r}: invalid label name {label!r}",
                context={"field": "labelnames", "value": repr(label)},
            )
    if len(set(labels)) != len(labels):
        raise InvalidInputError(
            f"metric {metric!r}: duplicate label names in {labels!r}",
            context={"field": "labelnames", "value": list(labels)},
        )
    return labels


def _check_buckets(metric: str, buckets: Sequence[float]) -> tuple[float, ...]:
    try:
        values = list(buckets)
    except TypeError:
        values = []  # reported below with the other malformed bucket lists
    if values and values[-1] == math.inf:
        values = values[:-1]
    bad = [
        b
        for b in values
        if isinstance(b, bool) or not isinstance(b, (int, float)) or not math.isfinite(b)
    ]
    if not values or bad or any(a >= b for a, b in itertools.pairwise(values)):
        raise InvalidInputError(
            f"metric {metric!r}: buckets must be a non-empty increasing list of finite numbers, "
            f"got {buckets!r}",
            context={"field": "buckets", "value": repr(buckets)},
        )
    return (*(float(b) for b in values), math.inf)


def _check_same(
    name: str,
    existing: _Definition,
    kind: str,
    labels: tuple[str, ...],
    buckets: tuple[float, ...] | None,
) -> None:
    """Reuse only an identical definition; a silent mismatch would corrupt the time series."""
    same_buckets = buckets is None or existing.buckets is None or buckets == existing.buckets
    if existing.kind != kind or existing.labelnames != labels or not same_buckets:
        raise InvalidInputError(
            f"metric {name!r} already exists as {existing.kind} with labels "
            f"{list(existing.labelnames)}; requested {kind} with labels {list(labels)}"
            + ("" if same_buckets else f" and different buckets {list(buckets or ())}"),
            context={"field": "name", "value": name},
        )


def _create(
    kind: str,
    name: str,
    documentation: str,
    labels: tuple[str, ...],
    buckets: tuple[float, ...] | None,
    registry: CollectorRegistry,
) -> MetricWrapperBase:
    try:
        if kind == "counter":
            return Counter(name, documentation, labels, registry=registry)
        if kind == "gauge":
            return Gauge(name, documentation, labels, registry=registry)
        if buckets is not None:
            return Histogram(name, documentation, labels, registry=registry, buckets=buckets)
        return Histogram(name, documentation, labels, registry=registry)
    except ValueError as exc:
        # Registered on this registry by code that bypassed the factory; prometheus-client
        # gives no public way to fetch that collector, so say so instead of guessing.
        raise InvalidInputError(
            f"metric {name!r} cannot be created on this registry: {exc}",
            context={"field": "name", "value": name},
        ) from exc
