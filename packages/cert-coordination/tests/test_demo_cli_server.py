"""The demo showcase, the CLI and the fake server's own contract."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from cert.coordination.cli import main
from cert.coordination.demo import showcase
from cert.coordination.testing import FakeAnthropicServer


def test_showcase_runs_offline_and_says_it_is_scripted(tmp_path: Path) -> None:
    summary = showcase(tmp_path / "out", repeats=3)
    assert "SCRIPTED" in summary
    assert "γ=" in summary
    assert "cache: repeated run made" in summary.split("verdicts:")[1]
    data = json.loads((tmp_path / "out" / "coordination.json").read_text())
    assert "not a model" in data["backend"]
    assert [m["strategy"] for m in data["measurements"]] == ["sequential", "parallel", "debate"]
    assert data["repeat_parallel_with_cached_baseline"]["baseline_cached"] is True
    total_calls = sum(m["api_calls"] for m in data["measurements"])
    total_calls += data["repeat_parallel_with_cached_baseline"]["api_calls"]
    assert total_calls == data["http_requests_seen_by_fake_server"]


def test_showcase_never_deletes_a_cache_it_did_not_create(tmp_path: Path) -> None:
    # `cert-coordination demo --out ~/.cache/cert-coordination` used to unlink the real cache.
    users_cache = tmp_path / "baselines.sqlite3"
    users_cache.write_bytes(b"SQLite format 3\x00 someone's baselines")
    showcase(tmp_path, repeats=2)
    assert users_cache.read_bytes() == b"SQLite format 3\x00 someone's baselines"


def test_showcase_is_registered_for_the_umbrella_demo() -> None:
    names = {ep.name: ep.value for ep in entry_points(group="resontinex.demo")}
    assert names.get("cert-coordination") == "cert.coordination.demo:showcase"


def test_cli_prices_and_estimate(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--output-format", "json", "prices"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert table["as_of"] == "2026-12-07"
    assert any(row["model"] == "claude-sonnet-5" for row in table["models"])
    assert table["aliases"]["claude-sonnet-4-0"] == "claude-sonnet-4"
    args = ["--output-format", "json", "estimate", "--model", "claude-sonnet-5"]
    assert main([*args, "--prompt-tokens", "1000", "--max-tokens", "1000"]) == 0
    assert json.loads(capsys.readouterr().out)["worst_case"] == "0.012"


def test_cli_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["estimate", "--model", "nope", "--prompt-tokens", "1", "--max-tokens", "1"]
    assert main(args) == 2
    assert "nope" in capsys.readouterr().err
    bad = tmp_path / "p.yaml"
    bad.write_text("models: 3")
    assert main(["--prices", str(bad), "prices"]) == 2
    with pytest.raises(SystemExit) as info:
        main(["estimate", "--model", "x", "--prompt-tokens", "-1", "--max-tokens", "1"])
    assert info.value.code == 2


def _post(url: str, body: bytes) -> tuple[int, dict]:  # type: ignore[type-arg]
    request = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_fake_server_error_shapes() -> None:
    with FakeAnthropicServer() as fake:
        status, body = _post(fake.url + "/v1/messages", b"{}")
        assert status == 400
        assert body["type"] == "error"
        assert "no scripted reply" in body["error"]["message"]
        status, body = _post(fake.url + "/v1/other", b"{}")
        assert status == 404
        assert body["error"]["type"] == "not_found_error"
        status, _ = _post(fake.url + "/v1/messages", b"{not json")
        assert fake.requests[-1].body == {"_unparsed": "{not json"}
        assert fake.pending == 0


def test_public_names_resolve_lazily() -> None:
    import cert.coordination as package

    for name in package.__all__:
        assert getattr(package, name) is not None
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = package.no_such_name


def test_cli_unexpected_errors_exit_2_not_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    assert main(["demo", "--out", str(blocker / "out")]) == 2  # mkdir under a file: OSError
    assert "unexpected" in capsys.readouterr().err
    assert blocker.read_text() == "not a directory"
