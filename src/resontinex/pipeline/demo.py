"""The governed pipeline's showcase for `resontinex demo`: a few requests through every member."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from prometheus_client import CollectorRegistry

from hbt_core import load_public_key, verify_proof_bundle
from resontinex.pipeline.core import PipelineRequest
from resontinex.pipeline.factory import PUBLIC_KEY_FILE, PipelineSettings, build_pipeline

REQUESTS = (
    PipelineRequest("How do I roll back a failed payment deployment?", "financial_operations", 0.8),
    PipelineRequest("Add tracing and alerts to the checkout API", "infrastructure_management", 0.3),
    PipelineRequest("Migrate the customer table to the new schema", "data_operations", 0.75),
    PipelineRequest("Rotate the leaked service credentials", "security_operations", 0.9),
    PipelineRequest("Explain the outage to the affected customer", "customer_success", 0.2),
)


def showcase(out_dir: Path) -> str:
    """Build the offline pipeline (training its tiny model on first use) and run REQUESTS."""
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    pipeline = build_pipeline(
        PipelineSettings(state_dir=out_dir / "state"), registry=CollectorRegistry()
    )
    built = time.perf_counter() - started
    lines = [
        "governed pipeline: route → budget → generate+monitor → judge → trust gate → audit (drift on its schedule)",
        f"  model {pipeline.backend.model_id} (built or loaded in {built:.1f} s); no judge configured,",
        "  so alignment is the stated prior (see resontinex.pipeline.signals)",
        f"  {'category':<26}{'overlay':<20}{'cost':>7}{'ppl':>8}{'band':>6}{'risk':>6}{'trust':>7}  decision (rule)",
    ]
    results = []
    for request in REQUESTS:
        result = asyncio.run(pipeline.run(request))
        results.append(result.to_dict())
        route = result.stage("route").output
        if "trust" not in [s.name for s in result.stages]:
            lines.append(
                f"  {request.category:<26}{route['overlay'] or '-':<20}  {result.decision} ({result.reason})"
            )
            continue
        gate = result.stage("trust").output
        lines.append(
            f"  {request.category:<26}{route['overlay'] or '-':<20}{result.cost_units:>7.0f}"
            f"{result.stage('generate').output['perplexity']:>8.1f}{gate['inputs']['confidence_band']:>6.2f}"
            f"{gate['inputs']['epistemic_risk']:>6.2f}{gate['trust_score']:>7.3f}  {result.decision} ({gate['rule']})"
        )
    bundle = pipeline.audit_log.proof_bundle(results[-1]["audit_index"])
    public = load_public_key(out_dir / "state" / PUBLIC_KEY_FILE)
    record = json.loads(verify_proof_bundle(bundle, public))
    summary = pipeline.audit_log.verify(public)
    (out_dir / "pipeline_results.json").write_text(json.dumps(results, indent=2, default=str))
    (out_dir / "proof_bundle.json").write_text(json.dumps(bundle, indent=2))
    drift = pipeline.drift.status() if pipeline.drift else {}
    lines += [
        f"  drift watch: {drift.get('checks', 0)} checks, flagged={drift.get('flagged')}",
        f"  audit log: {summary['entries']} entries, {summary['checkpoints']} signed checkpoints, all verified;"
        f" decision {record['request_id'][:8]}… proven included",
        f"  budget: {pipeline.governor.snapshot().committed:.0f} units committed",
        f"  artifacts: {out_dir}/pipeline_results.json, proof_bundle.json  ({time.perf_counter() - started:.1f} s)",
    ]
    pipeline.close()
    return "\n".join(lines)
