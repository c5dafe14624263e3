from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from fusion_ops.config import TripwireConfig, load_governance_config
from fusion_ops.errors import InvalidInputError
from fusion_ops.tripwire import BudgetTripwire, TripwireState

DEFAULTS = load_governance_config().budget_tripwire


def _config(**changes: object) -> TripwireConfig:
    from dataclasses import replace

    return replace(DEFAULTS, **changes)  # type: ignore[arg-type]


def test_three_consecutive_breaches_latch_the_downgrade(tmp_path: Path) -> None:
    wire = BudgetTripwire(tmp_path / "state.json")
    assert not wire.record(13.0).latched_now
    assert not wire.record(20.0).latched_now
    status = wire.record(12.5)
    assert status.breached
    assert status.latched_now
    assert status.state.downgraded
    assert status.state.downgrade_reason == "consecutive_breaches"
    # clean runs do not lift it without auto_recovery
    for _ in range(10):
        assert wire.record(0.0).state.downgraded
    assert wire.reset("oncall").downgraded is False
    assert not wire.state().downgraded


def test_threshold_is_strict_and_streak_resets(tmp_path: Path) -> None:
    wire = BudgetTripwire(tmp_path / "state.json")
    for delta in (13, 14, 12.0, 13, 14, 11, 30, 30):
        status = wire.record(delta)
    assert not status.state.downgraded  # 12.0 is not a breach; 11 broke the second streak
    assert status.state.consecutive_breaches == 2
    assert status.state.total_breaches == 6


def test_auto_recovery_after_k_clean_runs(tmp_path: Path) -> None:
    wire = BudgetTripwire(tmp_path / "s.json", _config(auto_recovery=True, recovery_clean_runs=2))
    for _ in range(3):
        wire.record(50)
    assert wire.record(1).state.downgraded
    status = wire.record(1)
    assert status.recovered_now
    assert not status.state.downgraded


def test_downgraded_parameters(tmp_path: Path) -> None:
    wire = BudgetTripwire(tmp_path / "s.json")
    full = {"max_output_tokens": 4096, "overlays_enabled": True, "model": "large"}
    assert wire.parameters(full) == full
    for _ in range(3):
        wire.record(99)
    reduced = wire.parameters(full)
    assert reduced == {**full, **DEFAULTS.downgrade_parameters}
    assert reduced["model"] == "large"
    with pytest.raises(InvalidInputError, match="full must be a mapping"):
        wire.parameters([1])  # type: ignore[arg-type]


def test_state_persists_across_instances(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    BudgetTripwire(path).record(20)
    BudgetTripwire(path).record(20)
    state = BudgetTripwire(path).record(20).state
    assert state.downgraded
    assert state.total_runs == 3
    assert json.loads(path.read_text())["downgraded"] is True


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"",
        b"\xff\xfe",
        b"[]",
        b'{"version": 1}',
        b'{"version": 99}',
        json.dumps({"version": 1, "consecutive_breaches": -1}).encode(),
        json.dumps(TripwireState(last_token_delta=float("nan")).to_json()).encode(),
    ],
)
def test_corrupt_state_is_moved_aside_and_latches(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "s.json"
    path.write_bytes(content)
    registry = CollectorRegistry()
    wire = BudgetTripwire(path, registry=registry)
    status = wire.record(0.0)
    assert status.corrupt_file_moved_to is not None
    moved = Path(status.corrupt_file_moved_to)
    assert moved.read_bytes() == content  # nothing lost
    assert status.state.downgraded
    assert status.state.downgrade_reason == "state_corrupted"
    assert status.state.last_corruption == str(moved)
    assert registry.get_sample_value("fusion_tripwire_state_corruptions_total") == 1
    # auto-recovery never lifts a corruption latch; a named operator must reset
    assert (
        BudgetTripwire(path, _config(auto_recovery=True, recovery_clean_runs=1))
        .record(0)
        .state.downgraded
    )
    assert not wire.reset("oncall").downgraded


def test_bad_deltas_are_rejected_without_touching_state(tmp_path: Path) -> None:
    wire = BudgetTripwire(tmp_path / "s.json")
    wire.record(1.0)
    before = (tmp_path / "s.json").read_bytes()
    for bad in (float("nan"), float("inf"), "5", True, None, -101):
        with pytest.raises(InvalidInputError, match="token_delta_pct"):
            wire.record(bad)  # type: ignore[arg-type]
    assert (tmp_path / "s.json").read_bytes() == before
    with pytest.raises(InvalidInputError, match="operator"):
        wire.reset("")


_WRITER = textwrap.dedent(
    """
    import sys
    from fusion_ops.tripwire import BudgetTripwire
    wire = BudgetTripwire(sys.argv[1])
    print("ready", flush=True)
    i = 0
    while True:
        wire.record(float(i % 40))
        i += 1
    """
)


def test_survives_kill_9_mid_write(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    for attempt in range(6):
        proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.05 + 0.04 * attempt)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        status = BudgetTripwire(path).record(0.0)
        assert status.corrupt_file_moved_to is None
        assert status.state.total_runs > 0
    assert not list(tmp_path.glob("*.corrupt-*"))
    assert not list(tmp_path.glob(".tripwire-tmp-*"))  # leftovers of killed writers are cleaned


_COUNTER = textwrap.dedent(
    """
    import sys
    from fusion_ops.tripwire import BudgetTripwire
    wire = BudgetTripwire(sys.argv[1])
    for _ in range(int(sys.argv[2])):
        wire.record(1.0)
    """
)


def test_concurrent_processes_serialise_on_the_file_lock(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    procs = [subprocess.Popen([sys.executable, "-c", _COUNTER, str(path), "40"]) for _ in range(4)]
    assert all(p.wait(timeout=60) == 0 for p in procs)
    assert BudgetTripwire(path).state().total_runs == 160  # no lost update


_STALLED_WRITER = textwrap.dedent(
    """
    import os, sys, time
    import fusion_ops.tripwire as tw
    wire = tw.BudgetTripwire(sys.argv[1])
    wire.record(50.0)                      # one committed breach
    real_replace = os.replace

    def stalled_replace(src, dst):
        print("temp file written, replace pending", flush=True)
        time.sleep(60)                     # killed here: after the temp write, before the rename
        real_replace(src, dst)

    tw.os.replace = stalled_replace
    wire.record(60.0)
    """
)


def test_kill_9_between_temp_write_and_rename_keeps_the_old_state(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    proc = subprocess.Popen(
        [sys.executable, "-c", _STALLED_WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith("temp file written")
    assert list(tmp_path.glob(".tripwire-tmp-*"))  # the half-finished write is on disk
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    state = BudgetTripwire(path).state()  # the lock died with the process; no deadlock
    assert (state.total_runs, state.last_token_delta) == (1, 50.0)
    assert not list(tmp_path.glob(".tripwire-tmp-*"))
    assert not list(tmp_path.glob("*.corrupt-*"))


# ---------------------------------------------------------------------- on PostgreSQL
@pytest.mark.postgres
def test_postgres_latch_is_shared_and_survives_reopening(postgresql_url: str) -> None:
    first = BudgetTripwire(postgresql_url)
    for delta in (13.0, 20.0, 12.5):
        status = first.record(delta)
    assert status.latched_now
    again = BudgetTripwire(postgresql_url)  # another process or replica, same row
    assert again.state().downgraded
    assert again.parameters({"max_tokens": 4000}) != {"max_tokens": 4000}
    assert BudgetTripwire(postgresql_url, name="other").state().downgraded is False
    assert again.reset("oncall").downgraded is False
    assert first.state().downgraded is False


@pytest.mark.postgres
def test_postgres_processes_serialise_on_the_row_lock(postgresql_url: str) -> None:
    BudgetTripwire(postgresql_url)  # create the schema once
    procs = [
        subprocess.Popen([sys.executable, "-c", _COUNTER, postgresql_url, "20"]) for _ in range(3)
    ]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    assert BudgetTripwire(postgresql_url).state().total_runs == 60  # no lost update


@pytest.mark.postgres
def test_a_corrupt_postgres_state_latches_and_is_kept(postgresql_url: str) -> None:
    import psycopg

    BudgetTripwire(postgresql_url).record(1.0)
    with psycopg.connect(postgresql_url, autocommit=True) as conn:
        conn.execute("UPDATE fusion_tripwire SET state = %s", (b"{not json",))
    status = BudgetTripwire(postgresql_url).record(0.0)
    assert status.state.downgraded
    assert status.state.downgrade_reason == "state_corrupted"
    assert status.corrupt_file_moved_to is not None
    assert "fusion_tripwire_corrupt" in status.corrupt_file_moved_to
    with psycopg.connect(postgresql_url, autocommit=True) as conn:
        kept = conn.execute("SELECT state FROM fusion_tripwire_corrupt").fetchall()
    assert kept == [(b"{not json",)]


@pytest.mark.postgres
def test_a_newer_tripwire_schema_and_bad_credentials_are_refused(
    postgresql_server: Any, postgresql_url: str
) -> None:
    import psycopg

    from fusion_ops.errors import StoreSchemaError, StoreUnavailableError

    BudgetTripwire(postgresql_url)
    with psycopg.connect(postgresql_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE schema_version SET version = 7 WHERE component = 'fusion_ops.tripwire'"
        )
    with pytest.raises(StoreSchemaError, match="version 7"):
        BudgetTripwire(postgresql_url)
    wrong = postgresql_server.url(postgresql_url.rsplit("/", 1)[1], password="wrong-pass")
    with pytest.raises(StoreUnavailableError) as caught:
        BudgetTripwire(wrong)
    assert "wrong-pass" not in str(caught.value)
