"""The governed pipeline's showcase for `resontinex demo`: every decision with a visible reason.

A tiny GPT-2 is trained here on standard-library docstrings (cached in ``<out>/state``), then:

1. text from that training distribution (a sentence that recurs in ten of its docstrings) gets
   a confident answer and reaches ``execute``;
2. the same text with its letters scrambled, and an out-of-distribution operations request
   (wrapped in a 480-token overlay the model never saw), get uncertain answers: the trajectory
   signals lower trust and the gate says ``review``;
3. a request whose worst-case cost exceeds what is left of the demo's small period budget is
   aborted by the governor before a token is generated;
4. the serving model is swapped for a copy with slightly perturbed weights (a bad
   re-quantisation, a tampered file): its answers stay confident, but the drift watch flags the
   changed behaviour and request 1, unchanged, goes from ``execute`` to ``review``.

The trust gate (thresholds, weights) and the signal mapping are the shipped defaults; the demo
sets only the model's training length, a small budget and the drift watch's schedule.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import math
import os
import random
import uuid
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from cert.trajectory import TinyModelSpec
from cert.trajectory.tiny import stdlib_corpus
from hbt_core import generate_key, load_public_key, verify_proof_bundle
from resontinex.pipeline.backends import LocalModelBackend
from resontinex.pipeline.core import GovernedPipeline, PipelineRequest, PipelineResult
from resontinex.pipeline.drift import DriftSettings
from resontinex.pipeline.factory import PUBLIC_KEY_FILE, PipelineSettings, build_pipeline
from resontinex.pipeline.signals import MonitoredSignals, to_input_vector
from resontinex.pipeline.worker import ModelWorker
from resontinex.trust import CompositeTrustGate, route_to_resontinex

#: Longer training than the library default (300 steps at a constant 1e-2), so the model knows
#: its corpus well enough to be confident on it: 2000 steps with a warm-up and cosine decay from
#: 4e-3 and light dropout (the held-out perplexity the demo prints: 33.6). Training is seeded and
#: deterministic, so every fresh run serves the same weights and makes the same decisions; the
#: model is cached in the state directory.
DEMO_SPEC = TinyModelSpec(
    n_positions=2048, steps=2000, learning_rate=4e-3, schedule="cosine", dropout=0.05
)
#: Small enough that a 512-token answer on top of an overlay cannot fit; the other requests do.
DEMO_BUDGET = 3_000.0
#: The watch checks on its schedule in a service; the demo runs its checks back to back.
DEMO_DRIFT = DriftSettings(interval_s=3600.0, sample_rate=0.5)
#: Docstring modules the model never saw: its held-out perplexity is measured on them.
HELD_OUT_MODULES = ("bisect", "calendar", "copy", "glob", "shlex", "pprint", "ipaddress", "secrets")
MAX_DRIFT_CHECKS = 40
#: Weight noise of the swapped-in copy, relative to each tensor's standard deviation: small
#: enough that the copy alone would still execute the in-distribution request (measured:
#: trust 0.667; at 0.3 the copy's own answer already fell to review, so the flip proved
#: nothing about drift), large enough that the watch flags it within a few checks.
PERTURBATION = 0.15

#: A sentence of the training distribution's boilerplate, cut mid-word: it recurs, word for word,
#: in ten docstrings of the os module, so it is the text the model learned best. It is verbatim
#: training text, and the demo says so.
KNOWN = "dir_fd may not be implemented on your pl"


@dataclass(frozen=True)
class Case:
    label: str
    request: PipelineRequest
    expected: str
    why: str


def _scrambled(text: str, seed: int = 7) -> str:
    letters = list(text)
    random.Random(seed).shuffle(letters)
    return "".join(letters)


def _cases() -> list[Case]:
    return [
        Case(
            "in distribution",
            PipelineRequest(KNOWN, "general_inquiry", 0.5, max_new_tokens=4),
            "execute",
            "boilerplate that recurs in ten training docstrings: the model continues it with low"
            " perplexity and entropy",
        ),
        Case(
            "scrambled",
            PipelineRequest(_scrambled(KNOWN), "general_inquiry", 0.5, max_new_tokens=4),
            "review",
            "the same letters shuffled: the model is unsure what follows",
        ),
        Case(
            "out of distribution",
            PipelineRequest(
                "Rotate the leaked service credentials",
                "security_operations",
                0.9,
                max_new_tokens=12,
            ),
            "review",
            "an ops request inside a long overlay, nothing like its training text",
        ),
        Case(
            "over budget",
            PipelineRequest(
                "Roll back the failed payment deployment and reconcile every refund",
                "financial_operations",
                0.9,
                max_new_tokens=512,
            ),
            "abort",
            "worst case (overlay + 512 new tokens, ×multipliers) exceeds the budget left",
        ),
    ]


def held_out_perplexity(model_dir: Path, context: int) -> tuple[float, int]:
    """Perplexity on docstrings of HELD_OUT_MODULES that are not in the training corpus,
    in windows of the training context (the positions the model learned)."""
    import importlib

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    seen = set(stdlib_corpus())
    texts: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in HELD_OUT_MODULES:
            module = importlib.import_module(name)
            for obj in [module, *(getattr(module, a) for a in sorted(vars(module)))]:
                doc = inspect.getdoc(obj) if not isinstance(obj, str | int | float) else None
                text = " ".join(doc.split()) if doc else ""
                if len(text) > 40 and text not in seen and text not in texts:
                    texts.append(text)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    ids = [i for t in texts for i in [*tokenizer(t)["input_ids"], tokenizer.eos_token_id]]
    windows = [ids[s : s + context] for s in range(0, len(ids) - context + 1, context)]
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(windows), 64):
            batch = torch.tensor(windows[start : start + 64])
            loss = model(input_ids=batch, labels=batch).loss.item()
            n = batch.shape[0] * (context - 1)
            total, count = total + loss * n, count + n
    return math.exp(total / count), count


def _why(result: PipelineResult, trust_config: Any) -> str:
    """The decision's reason in the reader's terms: which stage said no, with its numbers."""
    names = [s.name for s in result.stages]
    if "trust" not in names:
        return result.reason
    gate = result.stage("trust").output
    score, tier, rule = gate["trust_score"], gate["tier"], gate["rule"]
    if rule == "trust_floor":
        return f"trust {score:.3f} is under the floor {trust_config.trust_floor:.2f} (trust_floor)"
    if rule == "entropy_threshold":
        return (
            f"band {gate['inputs']['confidence_band']:.2f} ≥ entropy threshold "
            f"{trust_config.entropy_threshold:.2f} (entropy_threshold)"
        )
    return f"trust {score:.3f} puts it in tier {tier} (tier_action)"


def _row(label: str, result: PipelineResult, trust_config: Any) -> str:
    names = [s.name for s in result.stages]
    if "generate" in names and "error" not in result.stage("generate").output:
        gen = result.stage("generate").output
        gate = result.stage("trust").output
        numbers = (
            f"ppl {gen['perplexity']:5.1f}  band {gate['inputs']['confidence_band']:.2f}  "
            f"risk {gate['inputs']['epistemic_risk']:.2f}  trust {gate['trust_score']:.3f}"
        )
        answer = f"  answer {result.answer!r:.40}"
    else:
        budget = result.stage("budget").output
        numbers = f"estimate {budget['estimate']:.0f} units, no tokens generated"
        answer = ""
    return f"  {label:<22} {result.decision:<8} {numbers}{answer}\n  {'':<22} why: {_why(result, trust_config)}"


def showcase(out_dir: Path) -> str:
    """Run the cases above through the offline pipeline; write results and a proof bundle."""
    out_dir.mkdir(parents=True, exist_ok=True)
    state = out_dir / "state"
    state.mkdir(parents=True, exist_ok=True)
    key_path = state / "audit-signing-key.pem"
    if not key_path.exists():
        generate_key(key_path)
    settings = PipelineSettings(
        state_dir=state,
        model_spec=DEMO_SPEC,
        signing_key_path=key_path,
        period_budget=DEMO_BUDGET,
        drift=DEMO_DRIFT,
    )
    pipeline = build_pipeline(settings, registry=CollectorRegistry())
    serving = pipeline.backend
    trust_config = pipeline.trust.config
    model_dir = state / "model"
    perplexity, tokens = held_out_perplexity(model_dir, DEMO_SPEC.context)
    cases = _cases()
    lines = [
        "governed pipeline: route → budget → generate+monitor → judge → trust gate → audit",
        f"  model: tiny GPT-2 trained here on standard-library docstrings ({DEMO_SPEC.steps} steps,"
        " seeded: every fresh run trains the same weights);"
        f" held-out perplexity {perplexity:.1f} on {tokens} tokens of docstrings it never saw",
        "  trust gate and signal mapping: shipped defaults; no judge, so alignment is the stated"
        f" prior {pipeline.mapping.alignment_without_judge}; period budget {DEMO_BUDGET:.0f} units",
    ]
    results: list[dict[str, Any]] = []
    outcomes: list[tuple[str, str, str, str]] = []  # (label, decision, expected, why)
    try:
        for case in cases:
            result = asyncio.run(pipeline.run(case.request))
            results.append({"case": case.label, **result.to_dict()})
            lines.append(_row(case.label, result, trust_config))
            outcomes.append((case.label, result.decision, case.expected, case.why))
        before = results[0]["decision"]
        lines += _swap(pipeline, state, cases[0], results, outcomes, trust_config)
        flip = results[-1]
        lines += _audit_lines(pipeline, out_dir, state, results)
    finally:
        swapped = pipeline.backend
        pipeline.backend = serving  # the pipeline closes the model it was built with
        pipeline.close()
        if swapped is not serving:
            swapped.local.close()
    lines.append("verdicts:")
    for label, decision, expected, why in outcomes:
        status = "expected" if decision == expected else f"UNEXPECTED (expected {expected})"
        lines.append(f"  {label}: {decision}, {status}: {why}")
    flipped = (before, flip["decision"]) == ("execute", "review")
    lines.append(
        f"  drift flip: {before} → {flip['decision']}, "
        + ("expected" if flipped else "UNEXPECTED (expected execute → review)")
        + ": the same request, answered by a model the watch did not fingerprint"
    )
    return "\n".join(lines)


def _perturbed_copy(model_dir: Path, target: Path) -> Path:
    """The serving checkpoint with every weight moved by Gaussian noise of PERTURBATION × that
    tensor's standard deviation: a silent change (a bad re-quantisation, a tampered file) that
    leaves the answers about as confident as before. Cached beside the model, written to a
    staging directory first so a crash never leaves half a checkpoint."""
    import shutil
    import tempfile

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    marker = json.dumps({"spec": asdict(DEMO_SPEC), "perturbation": PERTURBATION})
    if (target / "perturbation.json").is_file() and (
        target / "perturbation.json"
    ).read_text() == marker:
        return target
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    noise = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for weights in model.parameters():
            scale = PERTURBATION * float(weights.std()) if weights.numel() > 1 else 0.0
            weights.add_(torch.randn(weights.shape, generator=noise) * scale)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    model.save_pretrained(staging)
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(staging)
    (staging / "perturbation.json").write_text(marker)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging, target)
    return target


def _swap(
    pipeline: GovernedPipeline,
    state: Path,
    case: Case,
    results: list[dict[str, Any]],
    outcomes: list[tuple[str, str, str, str]],
    trust_config: Any,
) -> list[str]:
    """Serve a silently perturbed copy of the model, let the watch check until it flags, and
    send the first request again. Also shows what the gate would say without the alarm, so the
    reader sees that the drift signal, not the new model's answer, made the difference."""
    other = _perturbed_copy(state / "model", state / "model-perturbed")
    backend = LocalModelBackend(ModelWorker(other, registry=CollectorRegistry()))
    pipeline.backend = backend
    drift = pipeline.drift
    assert drift is not None  # DEMO_DRIFT is set
    drift.serve(backend.fingerprint_model())
    while not drift.flagged and drift.service.checks < MAX_DRIFT_CHECKS:
        drift.check_now()
    request = replace(case.request, request_id=uuid.uuid4().hex)
    result = asyncio.run(pipeline.run(request))
    results.append({"case": "after the swap", **result.to_dict()})
    gate = result.stage("trust").output if "trust" in [s.name for s in result.stages] else None
    if gate is None:
        unalarmed = "n/a"
    else:
        calm = to_input_vector(
            MonitoredSignals(**{**gate["signals"], "drift_flagged": False}), pipeline.mapping
        )
        alone = CompositeTrustGate(calm, trust_config)
        unalarmed = f"{route_to_resontinex(alone.decision)} (trust {alone.trust_score:.3f})"
    status = drift.status()
    outcomes.append(
        (
            "after the swap",
            result.decision,
            "review",
            f"drift flagged adds risk {pipeline.mapping.drift_risk}; without the alarm this "
            f"answer would get {unalarmed}",
        )
    )
    return [
        f"  model swapped for a copy with {PERTURBATION:.0%} weight noise: drift watch "
        f"flagged={status['flagged']} after {status['checks']} checks "
        f"(alerts {', '.join(status['alerts']) or 'none'})",
        _row(case.label + " again", result, trust_config),
    ]


def _audit_lines(
    pipeline: GovernedPipeline, out_dir: Path, state: Path, results: list[dict[str, Any]]
) -> list[str]:
    """Write the results and one decision's inclusion proof; verify the whole log."""
    bundle = pipeline.audit_log.proof_bundle(results[0]["audit_index"])
    public = load_public_key(state / PUBLIC_KEY_FILE)
    record = json.loads(verify_proof_bundle(bundle, public))
    summary = pipeline.audit_log.verify(public)
    (out_dir / "pipeline_results.json").write_text(json.dumps(results, indent=2, default=str))
    (out_dir / "proof_bundle.json").write_text(json.dumps(bundle, indent=2))
    return [
        f"  audit log: {summary['entries']} entries, {summary['checkpoints']} signed checkpoints,"
        f" all verified; decision {record['request_id'][:8]}… proven included (proof_bundle.json)",
        f"  budget: {pipeline.governor.snapshot().committed:.0f} of {DEMO_BUDGET:.0f} units"
        " committed",
    ]
