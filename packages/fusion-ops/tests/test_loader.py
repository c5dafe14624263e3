"""``--backend module:Class``: any CompletionBackend, and a clear error for every bad path."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from fusion_ops import cli
from fusion_ops.errors import BackendLoadError
from fusion_ops.loader import load_backend, parse_options
from fusion_ops.report import load_report

MODULE = textwrap.dedent(
    """
    from fusion_ops.backends import Completion

    class Echo:
        def __init__(self, factor: str = "1") -> None:
            self.factor = int(factor)
            self.name = f"echo/x{self.factor}"

        def complete(self, prompt: str, *, run: int) -> Completion:
            n = len(prompt.split())
            return Completion(prompt, n, n * self.factor, 1.5)

    class Namespace:
        Inner = Echo

    class NoComplete:
        name = "broken"

    class Broken:
        def __init__(self) -> None:
            raise RuntimeError("cannot reach the model server")

    class Liar:
        name = "liar"

        def complete(self, prompt: str, *, run: int) -> Completion:
            return Completion("", -5, 1, float("nan"))

    NOT_CALLABLE = 3
    """
)


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "my_backends.py").write_text(MODULE)
    (tmp_path / "raises_on_import.py").write_text("raise ImportError('needs libfoo')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return "my_backends"


def test_loads_a_class_with_string_options(plugin: str) -> None:
    backend = load_backend(f"{plugin}:Echo", {"factor": "3"})
    assert backend.name == "echo/x3"
    assert backend.complete("a b c", run=0).output_tokens == 9
    assert load_backend(f"{plugin}:Namespace.Inner").name == "echo/x1"


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("my_backends", "'offline', 'anthropic' or 'module:Class'"),
        ("my_backends:", "'module:Class'"),
        ("my backends:Echo", "'module:Class'"),
        ("no_such_module_xyz:Echo", "no module named 'no_such_module_xyz'"),
        ("no_such_pkg_xyz.sub:Echo", "no module named 'no_such_pkg_xyz'"),
        ("raises_on_import:Echo", "importing 'raises_on_import' failed: ImportError: needs libfoo"),
        ("my_backends:Missing", "'my_backends' has no attribute 'Missing'"),
        ("my_backends:Namespace.Missing", "has no attribute 'Missing'"),
        ("my_backends:NOT_CALLABLE", "is not a class or factory"),
        ("my_backends:NoComplete", "does not implement CompletionBackend"),
        ("my_backends:Broken", "RuntimeError: cannot reach the model server"),
    ],
)
def test_bad_paths_give_a_clear_error(plugin: str, spec: str, match: str) -> None:
    with pytest.raises(BackendLoadError, match=match):
        load_backend(spec)


def test_unknown_option_names_the_spec(plugin: str) -> None:
    with pytest.raises(BackendLoadError, match=r"my_backends:Echo.*\['colour'\].*TypeError"):
        load_backend("my_backends:Echo", {"colour": "red"})


@pytest.mark.parametrize("pairs", [["novalue"], ["=x"], ["a=1", "a=2"], ["bad key=1"]])
def test_malformed_options(pairs: list[str]) -> None:
    with pytest.raises(BackendLoadError, match="option"):
        parse_options(pairs)


def test_cli_collects_through_a_module_class(plugin: str, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    code = cli.main(
        [
            "collect",
            "--backend",
            "my_backends:Echo",
            "--backend-option",
            "factor=2",
            "--runs",
            "2",
            "--concurrency",
            "3",
            "-o",
            str(out),
        ]
    )
    assert code == 0
    report = load_report(out)
    assert report.metadata["model"] == "echo/x2"
    sample = report.scenarios[0].baseline[0]
    assert sample.output_tokens == 2 * (sample.input_tokens or 0)


def test_cli_bad_module_path_exits_2_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.json"
    assert cli.main(["collect", "--backend", "nope_xyz:Backend", "-o", str(out)]) == 2
    assert "no module named 'nope_xyz'" in capsys.readouterr().err
    assert not out.exists()


def test_a_backend_reporting_impossible_usage_stops_the_run(
    plugin: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.json"
    assert cli.main(["collect", "--backend", "my_backends:Liar", "-o", str(out)]) == 2
    assert "input_tokens must be >= 0" in capsys.readouterr().err
    partial = json.loads(Path(f"{out}.partial.json").read_text())
    assert "invalid completion" in partial["metadata"]["aborted"]
