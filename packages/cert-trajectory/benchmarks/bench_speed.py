"""Monitoring overhead (analyze vs plain generate) and batching (analyze_batch vs a loop).

Both sides run greedy decoding of the same model with the same inputs, interleaved, in this
process; medians of repeated runs. One torch thread, and CPU time of this process rather than
wall time: the machine is shared, and wall time mostly measures the other tenants.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from _common import SIZES, build, prompt
from transformers import GenerationConfig

from cert.trajectory import HamiltonianMonitor, TrajectoryConfig


def overhead(name: str, tokens: int, repeats: int) -> tuple[str, float, float, int]:
    model, tokenizer = build(*SIZES[name])
    config = TrajectoryConfig(max_new_tokens=tokens, max_mean_entropy=1.0, max_prompt_tokens=64)
    monitor = HamiltonianMonitor(
        model=model, tokenizer=tokenizer, config=config, cache_size=0, metrics_enabled=True,
        preload=True,
    )  # fmt: skip
    text = prompt(16)
    plain_config = GenerationConfig(
        max_new_tokens=tokens, do_sample=False, eos_token_id=0, pad_token_id=0
    )

    def plain() -> int:
        """What a caller does without the monitor: tokenize, generate, decode."""
        inputs = tokenizer(text, return_tensors="pt")
        with torch.inference_mode():
            out = model.generate(**inputs, generation_config=plain_config)
        new = out[0, inputs["input_ids"].shape[1] :]
        tokenizer.decode(new, skip_special_tokens=True)
        return int(new.shape[0])

    produced = monitor.analyze(text).token_count
    assert produced == plain(), "both sides must decode the same tokens"
    ours_times, peer_times = [], []
    for _ in range(repeats):  # interleaved so that load changes hit both sides alike
        began = time.process_time()
        monitor.analyze(text)
        ours_times.append(time.process_time() - began)
        began = time.process_time()
        plain()
        peer_times.append(time.process_time() - began)
    return name, statistics.median(ours_times), statistics.median(peer_times), produced


def batching(name: str, tokens: int, repeats: int) -> tuple[str, float, float]:
    model, tokenizer = build(*SIZES[name])
    config = TrajectoryConfig(max_new_tokens=tokens, max_mean_entropy=1.0)
    monitor = HamiltonianMonitor(
        model=model, tokenizer=tokenizer, config=config, cache_size=0, preload=True
    )
    prompts = [prompt(4 + 3 * i, offset=i) for i in range(8)]  # lengths 4..25: real padding
    batch_times, loop_times = [], []
    for _ in range(repeats):
        began = time.process_time()
        monitor.analyze_batch(prompts, batch_size=8)
        batch_times.append(time.process_time() - began)
        began = time.process_time()
        for p in prompts:
            monitor.analyze(p)
        loop_times.append(time.process_time() - began)
    return name, statistics.median(batch_times), statistics.median(loop_times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke mode: fewer tokens and runs")
    args = parser.parse_args()
    torch.set_num_threads(1)
    tokens, repeats = (16, 3) if args.quick else (64, 9)
    names = list(SIZES)[:1] if args.quick else list(SIZES)

    print(
        f"Greedy decoding of {tokens} new tokens from a 16-token prompt, randomly initialised "
        f"GPT-2 models, 1 torch thread, median CPU seconds of {repeats} interleaved runs. "
        "Peer: tokenize, plain `model.generate()` with the same settings, decode (no signals). "
        "Target ratio ≤ 1.10.\n"
    )
    print("| metric | ours | peer | ratio |")
    print("| --- | --- | --- | --- |")
    for name in names:
        label, ours, peer, produced = overhead(name, tokens, repeats)
        print(
            f"| analyze vs generate, {label} ({produced} tokens), CPU s | {ours:.4f} | "
            f"{peer:.4f} | {ours / peer:.3f} |"
        )

    print(
        f"\nThroughput of 8 prompts (4 to 25 tokens, left-padded) × {tokens} new tokens: "
        "`analyze_batch(batch_size=8)` vs 8 sequential `analyze` calls, cache off. "
        "Target ratio ≥ 3.\n"
    )
    print("| metric | ours (batch) | peer (loop) | ratio (speed-up) |")
    print("| --- | --- | --- | --- |")
    for name in names:
        label, batch, loop = batching(name, tokens, repeats)
        print(f"| 8 prompts, {label}, CPU s | {batch:.4f} | {loop:.4f} | {loop / batch:.2f} |")


if __name__ == "__main__":
    main()
