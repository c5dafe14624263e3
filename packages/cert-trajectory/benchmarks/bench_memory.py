"""Peak memory of a long analysis vs generate(output_scores=True).

A child process (started with glibc told to mmap every allocation of 64 KiB or more, so freed
tensors leave the resident set at once) builds the model, then for each variant: warms up,
resets the kernel's peak-RSS counter (/proc/self/clear_refs), runs, and reports VmHWM minus
the RSS just before the run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

VARIANTS = {
    "analyze": "ours: `analyze()` (signals reduced per step)",
    "scores": "peer: `generate(output_scores=True)`",
    "plain": "floor: `generate()` without scores",
}


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def child(layers: int, width: int, tokens: int) -> None:
    import torch
    from _common import build, prompt
    from transformers import GenerationConfig

    from cert.trajectory import HamiltonianMonitor, TrajectoryConfig

    torch.set_num_threads(1)
    model, tokenizer = build(layers, width, max(1, width // 64), 50257)
    text = prompt(16)
    config = TrajectoryConfig(max_new_tokens=tokens, max_mean_entropy=1.0)
    monitor = HamiltonianMonitor(model=model, tokenizer=tokenizer, config=config, cache_size=0)
    monitor.load()
    inputs = tokenizer(text, return_tensors="pt")

    def run(variant: str, new_tokens: int) -> int:
        if variant == "analyze":
            short = TrajectoryConfig(max_new_tokens=new_tokens, max_mean_entropy=1.0)
            return monitor.analyze(text, config=short).token_count
        settings = GenerationConfig(
            max_new_tokens=new_tokens, do_sample=False, eos_token_id=0, pad_token_id=0,
            return_dict_in_generate=True, output_scores=variant == "scores",
        )  # fmt: skip
        with torch.inference_mode():
            out = model.generate(**inputs, generation_config=settings)
        return int(out.sequences.shape[1] - inputs["input_ids"].shape[1])

    results = {}
    for variant in VARIANTS:
        run(variant, 4)  # warm-up: lazy allocations happen before the measurement
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        before = _status_kib("VmRSS")
        produced = run(variant, tokens)
        peak = _status_kib("VmHWM")
        results[variant] = {"peak_extra_mib": (peak - before) / 1024, "tokens": produced}
    print(json.dumps(results))


def measure(layers: int, width: int, tokens: int) -> dict[str, dict[str, float]]:
    here = Path(__file__).resolve()
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0")
    proc = subprocess.run(
        [sys.executable, str(here), "--child", str(layers), str(width), str(tokens)],
        capture_output=True, text=True, check=True, cwd=here.parent, env=env,
    )  # fmt: skip
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="smoke mode: smaller model, fewer tokens"
    )
    parser.add_argument("--child", nargs=3, metavar=("LAYERS", "WIDTH", "TOKENS"))
    args = parser.parse_args()
    if args.child:
        layers, width, tokens = args.child
        child(int(layers), int(width), int(tokens))
        return
    layers, width, tokens = (2, 64, 64) if args.quick else (6, 384, 256)
    results = measure(layers, width, tokens)
    theory = tokens * 50257 * 4 / 2**20
    print(
        f"Peak extra resident memory (VmHWM − RSS before the call) while generating {tokens} "
        f"tokens greedily with a randomly initialised GPT-2 ({layers} layers, width {width}, "
        "vocabulary 50257); allocations ≥ 64 KiB are mmapped so that freed memory leaves RSS. "
        f"Keeping every step's scores costs {tokens} × 50257 × 4 B = {theory:.1f} MiB by itself.\n"
    )
    ours, peer, floor = (results[k] for k in ("analyze", "scores", "plain"))
    print("| metric | ours | peer | ratio |")
    print("| --- | --- | --- | --- |")
    print(
        f"| peak extra MiB, {tokens}-token analysis vs generate(output_scores=True) | "
        f"{ours['peak_extra_mib']:.2f} | {peer['peak_extra_mib']:.2f} | "
        f"{ours['peak_extra_mib'] / max(peer['peak_extra_mib'], 1e-9):.2f} |"
    )
    print(
        f"| peak extra MiB, plain generate() without scores (floor) | "
        f"{floor['peak_extra_mib']:.2f} | — | — |"
    )
    print(
        f"| tokens generated (ours / peer / floor) | {ours['tokens']:.0f} | {peer['tokens']:.0f} | "
        f"{floor['tokens']:.0f} |"
    )


if __name__ == "__main__":
    main()
