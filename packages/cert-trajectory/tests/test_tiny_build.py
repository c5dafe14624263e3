"""build_tiny_model never deletes a directory it did not create (issue 15, data loss)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cert.trajectory import OutputDirectoryError, TinyModelSpec, build_tiny_model
from cert.trajectory.cli import main

QUICK = TinyModelSpec(steps=1, n_layer=1, n_embd=16, n_head=1, vocab_size=300)


def _user_dir(path: Path) -> Path:
    path.mkdir()
    (path / "thesis.tex").write_text("years of work")
    (path / "sub").mkdir()
    (path / "sub" / "data.csv").write_text("a,b\n1,2\n")
    return path


def _untouched(path: Path) -> bool:
    return (path / "thesis.tex").read_text() == "years of work" and (
        path / "sub" / "data.csv"
    ).read_text() == "a,b\n1,2\n"


def test_a_non_empty_directory_without_the_marker_is_refused_and_kept(tmp_path: Path) -> None:
    target = _user_dir(tmp_path / "mine")
    with pytest.raises(OutputDirectoryError) as info:
        build_tiny_model(target, QUICK)
    assert info.value.context["field"] == "out_dir"
    assert _untouched(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # no staging left behind


def test_a_file_or_a_foreign_marker_is_refused(tmp_path: Path) -> None:
    file_target = tmp_path / "model"
    file_target.write_text("not a directory")
    with pytest.raises(OutputDirectoryError):
        build_tiny_model(file_target, QUICK)
    assert file_target.read_text() == "not a directory"
    elsewhere = _user_dir(tmp_path / "elsewhere")
    link = tmp_path / "link"
    link.symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(OutputDirectoryError, match="symlink"):
        build_tiny_model(link, QUICK)
    assert link.is_symlink()
    assert _untouched(elsewhere)
    forged = _user_dir(tmp_path / "forged")
    (forged / "tiny_model_spec.json").write_text(json.dumps({"unrelated": 1}))
    with pytest.raises(OutputDirectoryError):
        build_tiny_model(forged, QUICK)
    assert _untouched(forged)


def test_the_cli_exits_2_and_keeps_the_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = _user_dir(tmp_path / "home")
    assert main(["build-tiny-model", str(target), "--steps", "1"]) == 2
    assert "OutputDirectoryError" in capsys.readouterr().err
    assert _untouched(target)


def test_an_empty_directory_or_an_earlier_build_is_replaced(tmp_path: Path) -> None:
    target = tmp_path / "model"
    target.mkdir()
    assert build_tiny_model(target, QUICK) == target
    assert (target / "config.json").is_file()
    other = TinyModelSpec(steps=2, n_layer=1, n_embd=16, n_head=1, vocab_size=300)
    build_tiny_model(target, other)  # an earlier build of another spec: ours to replace
    assert json.loads((target / "tiny_model_spec.json").read_text())["steps"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_the_cli_exits_2_on_an_unexpected_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import cert.trajectory.tiny as tiny

    def crash(*args: object, **kwargs: object) -> Path:
        raise RuntimeError("disk vanished, password=hunter2")

    monkeypatch.setattr(tiny, "build_tiny_model", crash)
    assert main(["build-tiny-model", str(tmp_path / "m")]) == 2  # was an uncaught exit 1
    err = capsys.readouterr().err
    assert "unexpected RuntimeError" in err
    assert "hunter2" not in err
