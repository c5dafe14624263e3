"""build_tiny_model never deletes a directory it did not create (issue 15, data loss) and
trains the same model in every process (issue 19)."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from itertools import pairwise
from pathlib import Path

import pytest
import torch

from cert.trajectory import ConfigError, OutputDirectoryError, TinyModelSpec, build_tiny_model
from cert.trajectory.cli import main
from cert.trajectory.tiny import _lr_factor

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


_BUILD_IN_A_FRESH_PROCESS = """
import json, random, sys
import torch
if sys.argv[2] == "busy":  # a caller that used the global RNGs before building
    torch.randn(7)
    random.random()
from cert.trajectory import TinyModelSpec, build_tiny_model
build_tiny_model(sys.argv[1], TinyModelSpec(**json.loads(sys.argv[3])))
"""


def test_two_fresh_processes_train_bit_identical_models(tmp_path: Path) -> None:
    """Issue 19: weights depended on the process (dropout drew from the unseeded global RNG), so
    the demo's decisions changed between fresh runs. Different hash seeds and a caller that
    consumed the global RNG first must still give the same tensors and tokenizer."""
    import os
    import subprocess
    import sys

    from safetensors.torch import load_file

    spec = {**asdict(QUICK), "steps": 4, "schedule": "cosine"}
    dirs = []
    for hash_seed, caller in (("1", "quiet"), ("2", "busy")):
        target = tmp_path / f"model-{hash_seed}"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        args = [sys.executable, "-c", _BUILD_IN_A_FRESH_PROCESS, str(target), caller]
        args.append(json.dumps(spec))
        subprocess.run(args, env=env, check=True, capture_output=True, timeout=600)
        dirs.append(target)
    first, second = (load_file(d / "model.safetensors") for d in dirs)
    assert sorted(first) == sorted(second)
    assert all(torch.equal(first[name], second[name]) for name in first)
    assert (dirs[0] / "tokenizer.json").read_bytes() == (dirs[1] / "tokenizer.json").read_bytes()


def test_training_leaves_the_callers_rng_and_torch_settings_alone(tmp_path: Path) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    threads = torch.get_num_threads()
    build_tiny_model(tmp_path / "m", replace(QUICK, steps=2))
    assert torch.equal(torch.rand(3), expected)
    assert torch.get_num_threads() == threads
    assert not torch.are_deterministic_algorithms_enabled()


def test_an_unknown_schedule_is_a_typed_error_naming_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        build_tiny_model(tmp_path / "m", replace(QUICK, schedule="linear-ish"))
    assert info.value.context["field"] == "schedule"
    assert not (tmp_path / "m").exists()


def test_the_cosine_schedule_warms_up_then_decays_to_a_tenth() -> None:
    spec = replace(QUICK, steps=200, schedule="cosine")
    factors = [_lr_factor(step, spec) for step in range(spec.steps)]
    assert factors[0] == pytest.approx(0.1)
    assert max(factors) == pytest.approx(1.0)
    peak = factors.index(max(factors))
    assert all(a <= b for a, b in pairwise(factors[: peak + 1]))
    assert all(a >= b for a, b in pairwise(factors[peak:]))
    assert factors[-1] == pytest.approx(0.1, abs=1e-3)
    assert {_lr_factor(s, QUICK) for s in range(5)} == {1.0}  # "constant" is what it says


def test_a_build_by_an_earlier_version_is_replaced_never_reused(tmp_path: Path) -> None:
    target = tmp_path / "model"
    target.mkdir()
    (target / "config.json").write_text("{}")
    old = {k: v for k, v in asdict(QUICK).items() if k not in {"schedule", "dropout"}}
    (target / "tiny_model_spec.json").write_text(json.dumps(old))  # fewer fields than today
    build_tiny_model(target, QUICK)
    assert json.loads((target / "tiny_model_spec.json").read_text()) == asdict(QUICK)
