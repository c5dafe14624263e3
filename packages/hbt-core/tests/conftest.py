"""Shared fixtures: the shipped tiny models, a small challenge set and signatures built once;
audit-log targets on each storage backend."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hbt_core.challenges import Probe, generate_probes
from hbt_core.keys import generate_key, load_private_key
from hbt_core.models import SystemPromptWrapper, TinyGPT, load_fixture
from hbt_core.signature import EncoderConfig, Signature, build_signature
from hbt_core.verification import Calibration

SMALL_PROBES = 16


@pytest.fixture(scope="session")
def models() -> dict[str, TinyGPT | SystemPromptWrapper]:
    names = (
        "base",
        "finetuned",
        "int8",
        "int4",
        "pruned20",
        "distilled",
        "seed1",
        "arch",
        "sysprompt",
    )
    return {n: load_fixture(n) for n in names}


@pytest.fixture(scope="session")
def probes() -> list[Probe]:
    return generate_probes(SMALL_PROBES, seed=0)


@pytest.fixture(scope="session")
def config() -> EncoderConfig:
    return EncoderConfig()


@pytest.fixture(scope="session")
def reference(models: dict[str, TinyGPT], probes: list[Probe], config: EncoderConfig) -> Signature:
    return build_signature(models["base"], probes, config, run_seed=0)


@pytest.fixture(scope="session")
def null_runs(
    models: dict[str, TinyGPT], probes: list[Probe], config: EncoderConfig
) -> list[Signature]:
    return [build_signature(models["base"], probes, config, run_seed=s) for s in (1, 2, 3)]


@pytest.fixture(scope="session")
def calibration(reference: Signature, null_runs: list[Signature]) -> Calibration:
    return Calibration.from_null(reference, null_runs)


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "signing.pem"
    generate_key(path)
    return path


@pytest.fixture
def signing_key(key_path: Path) -> Ed25519PrivateKey:
    return load_private_key(key_path)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def audit_target(request: pytest.FixtureRequest, tmp_path: Path) -> str | Path:
    """Where a fresh audit log lives: a SQLite file, or an empty PostgreSQL database (the
    repo root's ``postgresql_url`` fixture); audit-log tests run once over each backend."""
    if request.param == "sqlite":
        return tmp_path / "audit.sqlite"
    return str(request.getfixturevalue("postgresql_url"))


@pytest.fixture
def tamper(audit_target: str | Path) -> Callable[..., None]:
    """Change the log's rows behind its back, as someone with database access would:
    ``tamper(sql, *params)`` with tables ``{entries}``, ``{checkpoints}`` and ``?`` parameters."""

    def run(sql: str, *params: object) -> None:
        if isinstance(audit_target, Path):
            con = sqlite3.connect(audit_target)
            con.execute(sql.format(entries="entries", checkpoints="checkpoints"), params)
            con.commit()
            con.close()
            return
        import psycopg

        names = {"entries": "hbt_audit_entries", "checkpoints": "hbt_audit_checkpoints"}
        with psycopg.connect(audit_target) as con:
            con.execute(sql.format(**names).replace("?", "%s"), params)  # type: ignore[arg-type]

    return run
