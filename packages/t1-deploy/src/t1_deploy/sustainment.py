"""The 6-week sustainment cycle, run end to end on the reference system's held-back queries.

Steps: pool refresh (queries never seen by training, gating or the contract), counterfactual audit
of the refreshed logs, Mondrian split-conformal coverage of the router's gain predictions per
slice, gating re-optimisation on the refreshed pool, artifact refresh, and a regression gallery of
real queries whose ranking changed between T0 and the routed candidate.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from t1_deploy._io import atomic_write_text
from t1_deploy.conformal import MondrianConformal, SliceCoverage
from t1_deploy.confounding import ConfoundingReport, ConfoundingResolver, log_router_decisions
from t1_deploy.errors import InvalidInputError, NotFittedError
from t1_deploy.gating import GatingResult, TwoStageGatingOptimizer, routed_outcome
from t1_deploy.reference.dataset import CodeSearchDataset
from t1_deploy.reference.system import QueryLog
from t1_deploy.router import MonotoneRouterDistiller


@dataclass
class SustainmentContext:
    """What a cycle needs: the data set, logs, the fitted router and the gating optimiser."""

    dataset: CodeSearchDataset
    calibration_log: QueryLog  # validation queries
    refresh_log: QueryLog  # held-back queries: the "new" pool
    evaluation_log: QueryLog  # test queries: where coverage is measured
    distiller: MonotoneRouterDistiller
    gating: TwoStageGatingOptimizer
    resolver: ConfoundingResolver
    router_ms: float
    alpha: float = 0.05
    seed: int = 0


@dataclass
class SustainmentReport:
    refreshed_queries: int
    audit: ConfoundingReport
    coverage: list[SliceCoverage]
    gating: GatingResult
    artifacts: dict[str, str] = field(default_factory=dict)

    @property
    def coverage_ok(self) -> bool:
        return all(c.within_target for c in self.coverage)


def slice_labels(log: QueryLog) -> np.ndarray:
    return np.where(log.hard_nl, "hard_nl", "other")


class SustainmentLoopSystem:
    def __init__(self, context: SustainmentContext) -> None:
        if not isinstance(context, SustainmentContext):
            raise InvalidInputError("context must be a SustainmentContext")
        self.context = context
        self.report: SustainmentReport | None = None

    def execute_sustainment_cycle(self, out_dir: str | Path | None = None) -> SustainmentReport:
        c = self.context
        pool = QueryLog.concat([c.calibration_log, c.refresh_log])
        tau_refresh = c.distiller.predict(c.refresh_log.features)
        obs = log_router_decisions(
            c.refresh_log.features,
            tau_refresh,
            c.refresh_log.ndcg_t0,
            c.refresh_log.ndcg_t1,
            c.refresh_log.features[:, 2],
            c.refresh_log.features[:, 1],
            c.refresh_log.domain,
            theta=_threshold(c),
            seed=c.seed + 11,
        )
        audit = c.resolver.resolve_confounding(obs)
        conformal = MondrianConformal(alpha=c.alpha).fit(
            c.distiller.predict(pool.features, head="gain"), pool.gain, slice_labels(pool)
        )
        coverage = conformal.coverage(
            c.distiller.predict(c.evaluation_log.features, head="gain"),
            c.evaluation_log.gain,
            slice_labels(c.evaluation_log),
        )
        gating = c.gating.optimize_gating_parameters(
            pool, c.distiller.predict(pool.features), c.router_ms
        )
        self.report = SustainmentReport(len(c.refresh_log), audit, coverage, gating)
        if out_dir is not None:
            out = Path(out_dir)
            self.report.artifacts = {
                "conformal_coverage_report.csv": str(
                    write_coverage_csv(out / "conformal_coverage_report.csv", coverage)
                ),
                "regression_gallery.md": str(self.write_gallery(out / "regression_gallery.md")),
            }
        return self.report

    def write_gallery(self, path: Path, per_side: int = 5) -> Path:
        """Real before/after rankings: the biggest wins and losses of routing on test queries."""
        c = self.context
        ev = c.evaluation_log
        gate = c.gating.result
        if gate is None:
            raise InvalidInputError("gating must be optimised before the gallery is written")
        ndcg, _, stage = routed_outcome(
            ev, c.distiller.predict(ev.features), gate.theta_star, gate.delta, c.router_ms
        )
        diff = ndcg - ev.ndcg_t0
        order = np.argsort(diff, kind="stable")
        losses = [i for i in order[:per_side] if diff[i] < 0]
        wins = [i for i in order[::-1][:per_side] if diff[i] > 0]
        pairs = c.dataset.pairs
        lines = [
            "# Regression gallery",
            "",
            "Test queries where the routed candidate "
            f"(θ*={gate.theta_star:.4f}, δ={gate.delta:.4f}) ranks differently from T0.",
            "Rank = position of the relevant function (— = not in the top 10).",
            f"Changed: {int(np.sum(diff != 0))} of {len(ev)}; better {int(np.sum(diff > 0))}, "
            f"worse {int(np.sum(diff < 0))}.",
            "",
        ]
        names = ("T0", "T1-lite", "T1")
        for title, rows in (("Improvements", wins), ("Regressions", losses)):
            lines += [f"## {title}", ""]
            if not rows:
                lines += ["(none)", ""]
            for i in rows:
                pid = int(ev.pair_ids[i])
                tops = (ev.top_t0[i], ev.top_lite[i], ev.top_t1[i])
                after = tops[int(stage[i])]
                lines += [
                    f"### `{pairs[pid].query}`",
                    "",
                    f"- relevant: `{pairs[pid].module}.{pairs[pid].qualname}`; "
                    f"stage used: {names[int(stage[i])]}",
                    f"- rank before (T0): {_rank(ev.top_t0[i], pid)}, after: {_rank(after, pid)}; "
                    f"ΔnDCG@10 {diff[i]:+.3f}",
                    f"- T0 top 3: {', '.join(_name(pairs, d) for d in ev.top_t0[i][:3])}",
                    f"- after top 3: {', '.join(_name(pairs, d) for d in after[:3])}",
                    "",
                ]
        return atomic_write_text(path, "\n".join(lines))


def _rank(top: np.ndarray, pid: int) -> str:
    hits = np.flatnonzero(top == pid)
    return str(int(hits[0]) + 1) if len(hits) else "—"


def _name(pairs: list[Any], doc: int) -> str:
    return "—" if doc < 0 else f"`{pairs[int(doc)].qualname}`"


def write_coverage_csv(path: Path, coverage: list[SliceCoverage]) -> Path:
    buf = io.StringIO()
    fields = [
        "slice",
        "n_calibration",
        "n_test",
        "half_width",
        "coverage",
        "target_low",
        "target_high",
        "within_target",
    ]
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for c in coverage:
        writer.writerow({**asdict(c), "within_target": c.within_target})
    return atomic_write_text(path, buf.getvalue())


def _threshold(c: SustainmentContext) -> float:
    """The deployed router's θ*, the threshold its ε-greedy logging explores around."""
    if c.distiller.routing_threshold is None:
        raise NotFittedError("the distiller has no routing threshold: gate it before sustainment")
    return float(c.distiller.routing_threshold)
