"""MetricsFactory: idempotent per registry, conflicts rejected, disabled mode, bad input."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest

from cert.runtime.errors import InvalidInputError
from cert.runtime.metrics import MetricsFactory, NoopMetric


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels or None)


def test_two_monitors_on_one_registry_share_collectors() -> None:
    """The original crashed with "Duplicated timeseries" when a second monitor started."""
    registry = CollectorRegistry()
    first = MetricsFactory(registry, namespace="cert")
    second = MetricsFactory(registry, namespace="cert")
    a = first.counter("analyses_total", "Analyses run.", ["model"])
    b = second.counter("analyses_total", "Analyses run.", ["model"])
    assert a is b
    a.labels(model="m").inc()
    b.labels(model="m").inc(2)
    assert value(registry, "cert_analyses_total", model="m") == 3.0


def test_counter_with_and_without_total_suffix_is_one_metric() -> None:
    factory = MetricsFactory()
    assert factory.counter("calls_total", "Calls.") is factory.counter("calls", "Calls.")


def test_gauge_and_histogram_work_on_the_given_registry() -> None:
    registry = CollectorRegistry()
    factory = MetricsFactory(registry)
    gauge = factory.gauge("memory_bytes", "Resident memory.")
    gauge.set(1024)
    hist = factory.histogram("latency_seconds", "Latency.", ["op"], buckets=[0.1, 1.0])
    hist.labels(op="analyze").observe(0.5)
    with hist.labels(op="analyze").time():
        pass
    assert value(registry, "memory_bytes") == 1024.0
    assert value(registry, "latency_seconds_count", op="analyze") == 2.0
    assert value(registry, "latency_seconds_bucket", op="analyze", le="1.0") == 2.0
    assert factory.histogram("latency_seconds", "Latency.", ["op"]) is hist  # buckets omitted


def test_default_registry_is_private_and_never_the_global_one() -> None:
    from prometheus_client import REGISTRY

    factory = MetricsFactory()
    assert factory.registry is not REGISTRY
    factory.counter("private_only_total", "x").inc()
    assert REGISTRY.get_sample_value("private_only_total") is None
    assert b"private_only_total" in generate_latest(factory.registry)


def test_separate_registries_do_not_share() -> None:
    c1 = MetricsFactory(CollectorRegistry()).counter("x_total", "x")
    c2 = MetricsFactory(CollectorRegistry()).counter("x_total", "x")
    assert c1 is not c2


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("counter", ["a"]), ("gauge", ["a"])),
        (("counter", ["a"]), ("counter", ["b"])),
        (("gauge", []), ("histogram", [])),
    ],
)
def test_conflicting_redefinition_names_both(first: Any, second: Any) -> None:
    factory = MetricsFactory()
    getattr(factory, first[0])("m", "doc", first[1])
    with pytest.raises(InvalidInputError, match="'m' already exists as"):
        getattr(factory, second[0])("m", "doc", second[1])


def test_histogram_bucket_conflict() -> None:
    factory = MetricsFactory()
    factory.histogram("h", "doc", buckets=[1, 2])
    with pytest.raises(InvalidInputError, match="different buckets"):
        factory.histogram("h", "doc", buckets=[1, 3])


def test_metric_registered_behind_the_factorys_back_is_a_typed_error() -> None:
    registry = CollectorRegistry()
    Counter("outside_total", "x", registry=registry)
    with pytest.raises(InvalidInputError, match="outside"):
        MetricsFactory(registry).counter("outside_total", "x")


def test_disabled_mode_returns_noops_that_accept_every_call() -> None:
    registry = CollectorRegistry()
    factory = MetricsFactory(registry, enabled=False)
    c = factory.counter("c_total", "c", ["a"])
    g = factory.gauge("g", "g")
    h = factory.histogram("h_seconds", "h")
    assert all(isinstance(m, NoopMetric) for m in (c, g, h))
    c.labels("x").inc()
    c.labels(a="x").inc(3)
    g.set(1)
    g.inc()
    g.dec()
    g.set_to_current_time()
    h.observe(0.1)
    with h.time(), g.track_inprogress(), c.count_exceptions():
        pass

    @h.time()
    def f() -> int:
        return 1

    assert f() == 1
    assert list(registry.collect()) == []


def test_disabled_mode_still_validates_names() -> None:
    with pytest.raises(InvalidInputError, match="metric name"):
        MetricsFactory(enabled=False).counter("bad name", "x")


def test_concurrent_creation_returns_one_collector() -> None:
    registry = CollectorRegistry()
    got: list[Any] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait(5)
        got.append(MetricsFactory(registry).counter("race_total", "r"))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert len(got) == 8
    assert all(c is got[0] for c in got)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda f: f.counter("", "d"), "metric name"),
        (lambda f: f.counter("has.dot", "d"), "metric name"),
        (lambda f: f.counter(3, "d"), "metric name"),
        (lambda f: f.counter("ok", ""), "documentation"),
        (lambda f: f.counter("ok", "d", "label"), "labelnames"),
        (lambda f: f.counter("ok", "d", ["bad-label"]), "label"),
        (lambda f: f.counter("ok", "d", ["__reserved"]), "label"),
        (lambda f: f.counter("ok", "d", ["a", "a"]), "duplicate"),
        (lambda f: f.counter("ok", "d", 3), "labelnames"),
        (lambda f: f.counter("ok", "d", [["unhashable"]]), "label"),
        (lambda f: f.histogram("ok", "d", buckets=3), "buckets"),
        (lambda f: f.histogram("ok", "d", buckets=[2, 1]), "buckets"),
        (lambda f: f.histogram("ok", "d", buckets=[]), "buckets"),
        (lambda f: f.histogram("ok", "d", buckets=[float("nan")]), "buckets"),
        (lambda f: f.histogram("ok", "d", buckets=[True, 2]), "buckets"),
    ],
)
def test_bad_metric_definitions(call: Any, field: str) -> None:
    with pytest.raises(InvalidInputError, match=field):
        call(MetricsFactory())


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"registry": "global"}, "registry"),
        ({"enabled": "yes"}, "enabled"),
        ({"namespace": "has space"}, "namespace"),
        ({"namespace": 1}, "namespace"),
    ],
)
def test_bad_factory_arguments(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInputError, match=field):
        MetricsFactory(**kwargs)
