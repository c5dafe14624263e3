"""Audit log on each backend (SQLite file, PostgreSQL database): append/proofs/checkpoints,
persistence, tamper detection, key config."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from hbt_core.auditlog import AuditLog, InclusionProof, verify_proof_bundle
from hbt_core.errors import IntegrityError, InvalidInputError, KeyConfigurationError
from hbt_core.keys import KEY_PATH_ENV, generate_key, load_private_key, load_public_key
from hbt_core.merkle import verify_consistency


def test_append_prove_checkpoint_and_reopen(audit_target: str | Path, key_path: Path) -> None:
    db = audit_target
    key = load_private_key(key_path)
    pub = load_public_key(key_path.with_name(key_path.name + ".pub"))
    with AuditLog(db, key) as log:
        indices = [log.append({"decision": "allow", "n": i}) for i in range(20)]
        assert indices == list(range(20))
        cp1 = log.checkpoint()
        cp1.verify(pub)
        log.append(b"raw bytes record")
        cp2 = log.checkpoint()
        for i in range(21):
            log.inclusion_proof(i).verify()
        verify_consistency(
            cp1.size, cp2.size, cp1.root, cp2.root, log.consistency_proof(cp1.size, cp2.size)
        )
        bundle = log.proof_bundle(3)
    with AuditLog(db) as again:  # persisted: a new process sees the same log
        assert again.size == 21
        assert again.root() == cp2.root
        summary = again.verify(pub)
        assert summary["entries"] == 21
    record = verify_proof_bundle(json.loads(json.dumps(bundle)), pub)
    assert json.loads(record) == {"decision": "allow", "n": 3}


def test_bundle_tampering_is_rejected(
    audit_target: str | Path, tmp_path: Path, key_path: Path
) -> None:
    pub = load_public_key(key_path.with_name(key_path.name + ".pub"))
    with AuditLog(audit_target, load_private_key(key_path)) as log:
        for i in range(9):
            log.append({"i": i})
        bundle = log.proof_bundle(4)
        assert log.proof_bundle(5)["checkpoint"] == bundle["checkpoint"]  # reused, not re-signed
        assert len(log.checkpoints()) == 1
        log.append({"i": 9})
        assert log.proof_bundle(9)["checkpoint"]["size"] == 10
        with pytest.raises(InvalidInputError):
            log.proof_bundle("4")  # type: ignore[arg-type]
    tampered_record = {**bundle, "record": "eyJpIjo1fQ=="}
    with pytest.raises(IntegrityError):
        verify_proof_bundle(tampered_record, pub)
    cp = dict(bundle["checkpoint"])
    cp["size"] = 10
    with pytest.raises(IntegrityError):
        verify_proof_bundle({**bundle, "checkpoint": cp}, pub)
    proof = dict(bundle["proof"])
    proof["path"] = proof["path"][::-1]
    with pytest.raises(IntegrityError):
        verify_proof_bundle({**bundle, "proof": proof}, pub)
    other = tmp_path / "other.pem"
    with pytest.raises(IntegrityError):
        verify_proof_bundle(bundle, generate_key(other))
    for broken in ({}, {"record": 1}, [], {"record": "!!", "proof": {}, "checkpoint": {}}):
        with pytest.raises(IntegrityError):
            verify_proof_bundle(broken, pub)  # type: ignore[arg-type]


def test_tampered_database_fails_verification(
    audit_target: str | Path, key_path: Path, tamper: Callable[..., None]
) -> None:
    db = audit_target
    with AuditLog(db, load_private_key(key_path)) as log:
        for i in range(5):
            log.append({"i": i})
        log.checkpoint()
    tamper("UPDATE {entries} SET data = ? WHERE idx = 2", b'{"i":99}')
    with AuditLog(db) as log, pytest.raises(IntegrityError, match="entry 2"):
        log.verify()
    tamper("UPDATE {entries} SET data = ? WHERE idx = 2", b'{"i":2}')
    tamper("UPDATE {checkpoints} SET root = ?", b"\x00" * 32)
    with AuditLog(db) as log, pytest.raises(IntegrityError, match="root"):
        log.verify()
    tamper("DELETE FROM {entries} WHERE idx = 1")
    with AuditLog(db, read_only=True) as log, pytest.raises(IntegrityError, match="index 2"):
        log.verify()


def test_keys_come_from_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_PATH_ENV, raising=False)
    with pytest.raises(KeyConfigurationError, match=KEY_PATH_ENV):
        load_private_key()
    path = tmp_path / "k.pem"
    generate_key(path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    with pytest.raises(KeyConfigurationError, match="exists"):
        generate_key(path)
    monkeypatch.setenv(KEY_PATH_ENV, str(path))
    assert (
        load_private_key().public_key().public_bytes_raw()
        == load_private_key(path).public_key().public_bytes_raw()
    )
    bad = tmp_path / "bad.pem"
    bad.write_bytes(b"not a key")
    with pytest.raises(KeyConfigurationError) as info:
        load_private_key(bad)
    assert "not a key" not in str(info.value)
    with pytest.raises(KeyConfigurationError):
        load_public_key(tmp_path / "missing.pub")
    with AuditLog(tmp_path / "nokey.sqlite") as log, pytest.raises(KeyConfigurationError):
        log.checkpoint()


def test_bad_records_and_indices(audit_target: str | Path) -> None:
    with AuditLog(audit_target) as log:
        log.append({"ok": 1})
        for bad in (3, None, "text", {"x": float("nan")}, {"x": object()}):
            with pytest.raises(InvalidInputError):
                log.append(bad)  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError):
            log.append(b"x" * (2 << 20))
        for idx in (-1, 1, True, "0"):
            with pytest.raises(InvalidInputError):
                log.inclusion_proof(idx)  # type: ignore[arg-type]
        assert log.size == 1  # nothing stored by the failed calls
    with pytest.raises(IntegrityError):
        InclusionProof.from_json({"index": "0", "size": 1, "path": [], "leaf_hash": "", "root": ""})


def test_two_writers_on_one_log_keep_a_consistent_log(audit_target: str | Path) -> None:
    db = audit_target
    with AuditLog(db) as a, AuditLog(db) as b:
        indices = []
        for i in range(10):
            indices.append((a if i % 2 else b).append({"i": i}))
        assert indices == list(range(10))
        assert a.root() == b.root()
        for i in range(10):
            a.inclusion_proof(i).verify()
            b.inclusion_proof(i).verify()
        assert a.verify()["entries"] == 10
