"""The ``hbt`` CLI (exit codes, JSON output) and the ``resontinex demo`` showcase."""

from __future__ import annotations

import json
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from hbt_core.auditlog import AuditLog
from hbt_core.cli import main
from hbt_core.demo import showcase
from hbt_core.keys import load_private_key


def test_cli_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "k.pem"
    assert main(["keygen", str(key)]) == 0
    assert main(["keygen", str(key)]) == 2
    a, b, c = (tmp_path / f"{n}.npz" for n in "abc")
    assert main(["fingerprint", "--fixture", "base", "--out", str(a), "--probes", "8"]) == 0
    assert (
        main(
            [
                "fingerprint",
                "--fixture",
                "base",
                "--out",
                str(b),
                "--probes",
                "8",
                "--run-seed",
                "1",
            ]
        )
        == 0
    )
    assert main(["fingerprint", "--fixture", "arch", "--out", str(c), "--probes", "8"]) == 0
    capsys.readouterr()
    assert main(["--output-format", "json", "compare", str(a), str(b), "--threshold", "0.85"]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "same"
    assert main(["compare", str(a), str(c), "--threshold", "0.85"]) == 1
    pkg = tmp_path / "p.hbte"
    assert (
        main(["edge-export", str(a), "--key", str(key), "--out", str(pkg), "--level", "minimal"])
        == 0
    )
    assert main(["edge-verify", str(pkg), "--public-key", f"{key}.pub"]) == 0
    data = pkg.read_bytes()
    pkg.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # (a fixed b"\x00" may be no change)
    assert main(["edge-verify", str(pkg), "--public-key", f"{key}.pub"]) == 1

    db = tmp_path / "audit.sqlite"
    with AuditLog(db, load_private_key(key)) as log:
        log.append({"decision": "allow"})
        bundle = log.proof_bundle(0)
    (tmp_path / "b.json").write_text(json.dumps(bundle))
    assert main(["log-verify", "--db", str(db), "--public-key", f"{key}.pub"]) == 0
    assert main(["proof-verify", str(tmp_path / "b.json"), "--public-key", f"{key}.pub"]) == 0
    bundle["record"] = "eyJkZWNpc2lvbiI6ImRlbnkifQ=="
    (tmp_path / "b.json").write_text(json.dumps(bundle))
    assert main(["proof-verify", str(tmp_path / "b.json"), "--public-key", f"{key}.pub"]) == 1
    assert main(["log-verify", "--db", str(tmp_path / "missing.sqlite")]) == 2
    assert main(["fingerprint", "--fixture", "nope", "--out", str(a)]) == 2
    with pytest.raises(SystemExit):
        main(["--help"])


@pytest.mark.slow
def test_demo_showcase(tmp_path: Path) -> None:
    summary = showcase(tmp_path / "demo")
    data = json.loads((tmp_path / "demo" / "hbt_demo.json").read_text())
    assert data["base_vs_base"]["similarity"] > data["base_vs_seed1"]["similarity"]
    assert data["monitor"]["alerts"], summary
    assert data["monitor"]["alerts"][0]["check"] > data["monitor"]["swap_after_check"]
    assert "drift alert" in summary
    assert "verdicts:" in summary
    assert "UNEXPECTED" not in summary
    names = [e.name for e in entry_points(group="resontinex.demo")]
    assert "hbt-core" in names
