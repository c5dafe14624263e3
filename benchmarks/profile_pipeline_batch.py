"""Where a batched generation of the governed pipeline spends its time (torch.profiler).

The 8 mixed requests of bench_pipeline.py (same model), routed and overlaid by the pipeline's
router, run on a monitor set up as the model worker sets up its own (prefix cache on): wall time
of the batch of 8 and of its first prompt alone (best of 5, after warm-up runs that fill the
prefix cache), and the operators with the most CPU time in one batched run. The percentages
quoted in docs/benchmarks/resontinex.md come from this script.
Run: python benchmarks/profile_pipeline_batch.py [--rows N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from bench_pipeline import CACHE, MODEL_SPEC, requests
from prometheus_client import CollectorRegistry
from torch.profiler import ProfilerActivity, profile

from cert.trajectory import HamiltonianMonitor, TrajectoryConfig, build_tiny_model
from cert.trajectory.loading import load_model_for_monitoring
from resontinex.pipeline import PipelineSettings, build_pipeline


def overlaid_prompts(model_dir: Path, count: int) -> list[str]:
    """The prompts as the pipeline sends them to the model (its router and overlays)."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = PipelineSettings(state_dir=Path(tmp), model_dir=model_dir, drift=None)
        pipeline = build_pipeline(settings, registry=CollectorRegistry())
        try:
            prompts = []
            for request in requests(count, 48):
                routing = pipeline.router.route_scenario(
                    {
                        "category": request.category,
                        "complexity": request.complexity,
                        "description": request.prompt,
                    }
                )
                overlay = routing.selected_overlay
                prompts.append(
                    request.prompt
                    if overlay is None
                    else pipeline.router.apply_overlay(
                        base_prompt=request.prompt, overlay_name=overlay
                    )
                )
            return prompts
        finally:
            pipeline.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=15, help="operators to list")
    args = parser.parse_args()
    model_dir = build_tiny_model(CACHE / "models" / "seed0", MODEL_SPEC)
    prompts = overlaid_prompts(model_dir, 8)
    model, tokenizer = load_model_for_monitoring(str(model_dir), device="cpu")
    monitor = HamiltonianMonitor(
        model=model,
        tokenizer=tokenizer,
        cache_size=0,
        timeout=None,
        prefix_cache_tokens=32_768,
        preload=True,
    )
    config = TrajectoryConfig(max_new_tokens=48, max_prompt_chars=200_000)

    def run(rows: list[str]) -> float:
        started = time.perf_counter()
        monitor.analyze_batch(rows, config=config, batch_size=len(rows))
        return time.perf_counter() - started

    for _ in range(2):
        run(prompts), run(prompts[:1])
    batched = min(run(prompts) for _ in range(5))
    alone = min(run(prompts[:1]) for _ in range(5))
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run(prompts)
    print(
        f"batch of {len(prompts)}: {1000 * batched:.1f} ms; its first prompt alone: "
        f"{1000 * alone:.1f} ms; the batch costs {batched / alone:.2f} lone requests\n"
    )
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
