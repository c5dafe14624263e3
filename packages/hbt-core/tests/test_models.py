"""Fixture models: numpy forward equals torch, quantised variants load, bad files fail typed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hbt_core.errors import InvalidInputError, ModelFormatError
from hbt_core.models import (
    FIXTURE_NAMES,
    CallableTextModel,
    TinyGPT,
    fixture_path,
    load_fixture,
)


def test_fixtures_are_small_plain_arrays() -> None:
    total = 0
    for name in FIXTURE_NAMES:
        p = fixture_path(name)
        total += p.stat().st_size
        with np.load(p, allow_pickle=False) as z:
            assert all(z[k].dtype != object for k in z.files)
    assert total < 10 * 1024 * 1024


def test_numpy_forward_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    import importlib.util

    script = Path(__file__).resolve().parents[1] / "scripts" / "make_fixtures.py"
    if not script.exists():
        pytest.skip("training script is not shipped with the wheel")
    spec = importlib.util.spec_from_file_location("make_fixtures", script)
    assert spec is not None
    assert spec.loader is not None
    mf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mf)
    with np.load(fixture_path("base"), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    cfg = json.loads(bytes(arrays["config"]).decode())
    net = mf.GPT(cfg["n_ctx"], cfg["d_model"], cfg["n_layer"], cfg["n_head"])
    state = {
        "wte.weight": arrays["wte"],
        "wpe.weight": arrays["wpe"],
        "lnf.weight": arrays["lnf.g"],
        "lnf.bias": arrays["lnf.b"],
    }
    for i in range(cfg["n_layer"]):
        p, q = f"h{i}.", f"blocks.{i}."
        state |= {
            q + "ln1.weight": arrays[p + "ln1.g"],
            q + "ln1.bias": arrays[p + "ln1.b"],
            q + "ln2.weight": arrays[p + "ln2.g"],
            q + "ln2.bias": arrays[p + "ln2.b"],
            q + "attn.weight": arrays[p + "attn.w"].T,
            q + "attn.bias": arrays[p + "attn.b"],
            q + "attn_proj.weight": arrays[p + "attn.proj"].T,
            q + "attn_proj.bias": arrays[p + "attn.pb"],
            q + "fc.weight": arrays[p + "mlp.fc"].T,
            q + "fc.bias": arrays[p + "mlp.fb"],
            q + "proj.weight": arrays[p + "mlp.proj"].T,
            q + "proj.bias": arrays[p + "mlp.pb"],
        }
    net.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()})
    tokens = np.frombuffer(b"def parse(self, text):\n    return", dtype=np.uint8).astype(np.int64)
    with torch.no_grad():
        ref = net(torch.from_numpy(tokens)[None])[0].double().numpy()
    ours = load_fixture("base").logits(tokens)
    assert np.allclose(ours, ref, atol=1e-3)


def test_variants_differ_graded(models: dict) -> None:
    prompt = b"    def update(self, "
    base = models["base"].next_token_distributions(prompt, 4)
    tv = {
        n: 0.5 * np.abs(models[n].next_token_distributions(prompt, 4) - base).sum(axis=1).mean()
        for n in ("int8", "int4", "seed1")
    }
    assert 0 < tv["int8"] < tv["int4"] < tv["seed1"]
    assert np.allclose(base.sum(axis=1), 1.0)


def test_generation_is_seeded(models: dict) -> None:
    m = models["base"]
    assert m.generate(b"def ", 12, seed=3) == m.generate(b"def ", 12, seed=3)
    assert len(m.generate(b"def ", 12, seed=3)) == 12
    assert models["sysprompt"].generate(b"def ", 5, 1) != b""


def test_bad_prompts_and_files(tmp_path: Path, models: dict) -> None:
    m = models["base"]
    for bad in (b"", 3, None, b"x" * 70_000):
        with pytest.raises(InvalidInputError):
            m.next_token_distributions(bad, 1)
    with pytest.raises(InvalidInputError):
        m.next_token_distributions(b"x", 0)
    with pytest.raises(InvalidInputError):
        m.generate(b"x", 3, seed=-1)
    with pytest.raises(InvalidInputError):
        load_fixture("nope")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(ModelFormatError):
        TinyGPT.load(junk)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, config=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ModelFormatError):
        TinyGPT.load(pickled)
    with np.load(fixture_path("base"), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["h0.attn.w"] = arrays["h0.attn.w"][:, :10]
    broken = tmp_path / "broken.npz"
    np.savez(broken, **arrays)
    with pytest.raises(ModelFormatError, match=r"h0\.attn\.w"):
        TinyGPT.load(broken)
    arrays.pop("h0.attn.w")
    np.savez(broken, **arrays)
    with pytest.raises(ModelFormatError, match="missing"):
        TinyGPT.load(broken)


def test_callable_text_model() -> None:
    api = CallableTextModel(lambda p, n, s: "ab" * n, name="api")
    assert api.generate(b"x", 2, 0) == b"abab"
    with pytest.raises(InvalidInputError):
        CallableTextModel(3)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        CallableTextModel(lambda p, n, s: 5).generate(b"x", 1, 0)  # type: ignore[arg-type,return-value]
