"""The CLI (exit codes, formats) and the demo showcase, run in-process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cert.trajectory.cli import main


def test_analyze_json_output_and_exit_code(
    tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["analyze", "--model", str(tiny_model_dir), "--device", "cpu", "--max-new-tokens", "5",
         "--max-mean-entropy", "6.0", "--max-perplexity", "1e6", "--output-format", "json",
         "Return a new"]
    )  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["passed_quality_check"] is True
    assert out["mode"] == "generate"
    assert 1 <= len(out["tokens"]) <= 5


def test_score_text_output_fails_a_strict_check_with_exit_1(
    tiny_model_dir: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    png = tmp_path / "score.png"
    code = main(
        ["score", "--model", str(tiny_model_dir), "--prompt", "Return the",
         "--response", " list.", "--max-perplexity", "1.0001", "--max-mean-entropy", "6.0",
         "--plot", str(png)]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 1
    assert "FAILED (perplexity" in out
    assert png.is_file()


@pytest.mark.parametrize(
    "argv",
    [
        ["analyze", "--model", "/nonexistent/model", "hello"],
        ["analyze", "--model", "MODEL", "--max-new-tokens", "0", "hello"],
        ["analyze", "--model", "MODEL", "   "],
        ["analyze", "--model", "MODEL", "--config", "CONFIG", "hello"],
        ["score", "--model", "MODEL", "--prompt", "hi"],
        ["frobnicate"],
    ],
)
def test_usage_and_input_errors_exit_2(
    argv: list[str], tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bad.json"
    config.write_text("{broken")
    argv = [
        str(tiny_model_dir) if a == "MODEL" else str(config) if a == "CONFIG" else a for a in argv
    ]
    assert main(argv) == 2
    assert capsys.readouterr().err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "analyze" in capsys.readouterr().out


@pytest.mark.slow
def test_demo_showcase_trains_analyses_scores_and_plots(tmp_path: Path) -> None:
    from cert.trajectory.demo import showcase

    summary = showcase(tmp_path / "demo")
    assert "scored: fluent" in summary
    assert "scored: scrambled" in summary
    assert "scrambled vs fluent perplexity" in summary
    assert "UNEXPECTED" not in summary
    data = json.loads((tmp_path / "demo" / "cert-trajectory.json").read_text())
    assert set(data) == {"generated", "fluent", "scrambled"}
    # the default-trained model finds shuffled characters more surprising than docstring text
    assert data["scrambled"]["perplexity"] > data["fluent"]["perplexity"]
    assert (tmp_path / "demo" / "cert-trajectory-generated.png").read_bytes()[:4] == b"\x89PNG"
    # a second run reuses the cached model
    stamp = (tmp_path / "demo" / "tiny-model" / "config.json").stat().st_mtime_ns
    showcase(tmp_path / "demo")
    assert (tmp_path / "demo" / "tiny-model" / "config.json").stat().st_mtime_ns == stamp


def test_demo_is_registered_for_the_umbrella() -> None:
    from importlib.metadata import entry_points

    from cert.trajectory.demo import showcase

    found = [ep for ep in entry_points(group="resontinex.demo") if ep.name == "cert-trajectory"]
    assert len(found) == 1
    assert found[0].load() is showcase
