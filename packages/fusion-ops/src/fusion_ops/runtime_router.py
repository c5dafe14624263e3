"""Runtime micro-overlay router: pick the prompt overlay that fits a scenario, and apply it.

``RuntimeRouter(config_dir)`` loads ``routing.yaml`` and ``micro_overlays/*.md`` once; with no
``config_dir`` it uses the defaults embedded in the package. ``route_scenario`` scores every
overlay (category + complexity band + keyword triggers), returns a typed
:class:`RoutingDecision`, and abstains when no overlay reaches ``scoring.min_score`` or every
score is 0 (no evidence at all, even with ``min_score: 0``).

Ties are broken deterministically, in this order: higher total score, higher category score,
higher keyword score, position in ``tie_break_order``, then overlay name. File order never matters.

Run ``python -m fusion_ops.runtime_router`` for a demo over the golden scenario set.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import hashlib
import json
import logging
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import CollectorRegistry

from fusion_ops import _validate
from fusion_ops.cli_support import guarded_main
from fusion_ops.config import read_yaml_mapping
from fusion_ops.errors import (
    ConfigError,
    OverlayNotFoundError,
    ScenarioError,
    UnknownCategoryError,
)
from fusion_ops.logs import log_event
from fusion_ops.metrics import RouterMetrics
from fusion_ops.overlays import LoadIssue, Overlay, load_overlays, overlay_files
from fusion_ops.routing_rules import KeywordMatcher, parse_rules

__all__ = [
    "OverlayScore",
    "RoutingDecision",
    "RuntimeRouter",
    "embedded_config_dir",
    "load_golden_scenarios",
    "main",
]

log = logging.getLogger("fusion_ops.runtime_router")
MAX_DESCRIPTION_CHARS = 20_000
_EPS = 1e-9


def embedded_config_dir() -> Path:
    """The routing rules and overlays shipped inside the package."""
    return Path(str(resources.files("fusion_ops").joinpath("defaults", "fusion")))


@dataclass(frozen=True)
class OverlayScore:
    """How one overlay scored: the three components and the keywords that fired."""

    overlay: str
    total: float
    category: float
    complexity: float
    keywords: float
    matched_keywords: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "overlay": self.overlay,
            "total": self.total,
            "category": self.category,
            "complexity": self.complexity,
            "keywords": round(self.keywords, 6),
            "matched_keywords": list(self.matched_keywords),
        }


@dataclass(frozen=True)
class RoutingDecision:
    """The router's answer. ``selected_overlay`` is None exactly when ``abstained``.

    ``reasoning`` is rendered from the scores on first access, so routing pays for the text
    only when someone reads it.
    """

    selected_overlay: str | None
    confidence: float
    abstained: bool
    scores: tuple[OverlayScore, ...]  # every overlay, best first
    fallback_options: tuple[str, ...]
    category: str
    complexity: float
    complexity_bands: tuple[str, ...]
    min_score: float

    @functools.cached_property
    def reasoning(self) -> tuple[str, ...]:
        return _explain(
            self.category,
            self.complexity,
            self.complexity_bands,
            self.scores,
            self.selected_overlay,
            self.min_score,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "selected_overlay": self.selected_overlay,
            "confidence": round(self.confidence, 6),
            "abstained": self.abstained,
            "scores": [s.to_dict() for s in self.scores],
            "reasoning": list(self.reasoning),
            "fallback_options": list(self.fallback_options),
            "category": self.category,
            "complexity": self.complexity,
            "complexity_bands": list(self.complexity_bands),
        }


class RuntimeRouter:
    """Routes scenarios to micro-overlays. Thread-safe: state is immutable after construction."""

    def __init__(
        self,
        config_dir: str | Path | None = None,
        *,
        audit_path: str | Path | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.config_dir = Path(config_dir) if config_dir is not None else embedded_config_dir()
        self._metrics = RouterMetrics(registry) if registry is not None else None
        self._audit_path = Path(audit_path) if audit_path is not None else None
        routing_file = self.config_dir / "routing.yaml"
        raw_rules = read_yaml_mapping(routing_file, "routing rules")
        rules = parse_rules(raw_rules)
        overlay_dir = self.config_dir / "micro_overlays"
        if not overlay_dir.is_dir():
            raise ConfigError(f"overlay directory {overlay_dir} does not exist")
        overlays, issues = load_overlays(
            overlay_files(overlay_dir), max_bytes=rules.max_overlay_bytes
        )
        missing = rules.referenced_overlays() - set(overlays)
        issues += [
            LoadIssue(str(routing_file), name, "overlay_unavailable", "referenced by routing.yaml")
            for name in sorted(missing)
        ]
        self.rules = rules.without(missing)
        self.overlays: Mapping[str, Overlay] = dict(sorted(overlays.items()))
        self.load_issues: tuple[LoadIssue, ...] = tuple(issues)
        self._matcher = KeywordMatcher(self.rules.triggers)
        order = {name: i for i, name in enumerate(self.rules.tie_break_order)}
        self._tie_rank = {n: order.get(n, len(order)) for n in self.overlays}
        self.config_hash = _config_hash(routing_file, self.overlays)
        self._report_issues()

    # ------------------------------------------------------------------ loading report
    def _report_issues(self) -> None:
        if self._metrics is not None:
            self._metrics.overlays_loaded.set(len(self.overlays))
            for issue in self.load_issues:
                self._metrics.load_failures.labels(reason=issue.reason).inc()
        for issue in self.load_issues:
            log_event(log, logging.WARNING, "overlay_skipped", **issue.to_dict())
        if self._audit_path is not None and self.load_issues:
            stamp = dt.datetime.now(dt.timezone.utc).isoformat()
            self._audit_path.parent.mkdir(parents=True, exist_ok=True)
            with self._audit_path.open("a", encoding="utf-8") as audit:
                for issue in self.load_issues:
                    record = {"ts": stamp, "event": "overlay_skipped", **issue.to_dict()}
                    audit.write(json.dumps(record, sort_keys=True) + "\n")

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(self.rules.categories)

    # ------------------------------------------------------------------ routing
    def _validate(self, scenario: Any) -> tuple[str, float, str]:
        if not isinstance(scenario, Mapping):
            raise ScenarioError(f"scenario must be a mapping, got {type(scenario).__name__}")
        category = scenario.get("category")
        if not isinstance(category, str):
            raise ScenarioError(
                f"scenario.category must be a string, got {_validate.show(category)}"
            )
        if category not in self.rules.categories:
            raise UnknownCategoryError(
                f"scenario.category {_validate.show(category)} is not one of {sorted(self.rules.categories)}"
            )
        complexity = _validate.finite_number(
            "scenario.complexity",
            scenario.get("complexity"),
            minimum=0.0,
            maximum=1.0,
            error=ScenarioError,
        )
        description = _validate.text(
            "scenario.description",
            scenario.get("description", ""),
            max_chars=MAX_DESCRIPTION_CHARS,
            allow_empty=True,
            error=ScenarioError,
        )
        return category, complexity, description

    def route_scenario(self, scenario: Mapping[str, Any]) -> RoutingDecision:
        """Score every overlay for ``scenario`` (category, complexity, description)."""
        category, complexity, description = self._validate(scenario)
        rules = self.rules
        rule = rules.categories[category]
        band_weights: dict[str, float] = {}
        band_names: list[str] = []
        for band in rules.bands:
            if band.contains(complexity):
                band_names.append(band.name)
                for overlay, weight in band.favours.items():
                    band_weights[overlay] = band_weights.get(overlay, 0.0) + weight
        keyword_hits = self._matcher.match(description)
        keyed = []
        for name in self.overlays:
            if name == rule.primary:
                cat = rules.category_primary
            elif name in rule.secondary:
                cat = rules.category_secondary
            else:
                cat = 0.0
            hits = keyword_hits.get(name, ())
            kw = min(rules.keyword_cap, sum(w for _, w in hits)) if hits else 0.0
            band_score = band_weights.get(name, 0.0)
            total = round(cat + band_score + kw, 9)
            score = OverlayScore(name, total, cat, band_score, kw, tuple(k for k, _ in hits))
            # rounding makes 0.2 + 0.15 and 0.35 compare equal, so ties are real ties
            keyed.append(((-total, -cat, -round(kw, 9), self._tie_rank[name], name), score))
        keyed.sort(key=lambda pair: pair[0])
        ranked = tuple(score for _, score in keyed)
        best = ranked[0] if ranked else None
        # a best score of 0 is no evidence for any overlay, whatever min_score allows (and its
        # confidence would be 0/0): abstain, the safe decision
        abstained = best is None or best.total <= 0 or best.total < rules.min_score - _EPS
        selected = None if abstained or best is None else best.overlay
        runner_up = ranked[1].total if len(ranked) > 1 else 0.0
        if selected is None or best is None:
            confidence = 0.0
        else:
            confidence = best.total / (best.total + runner_up)
        fallbacks = tuple(
            s.overlay
            for s in ranked
            if s.overlay != selected and s.total > 0 and s.total >= rules.min_score - _EPS
        )
        if self._metrics is not None:
            self._metrics.decisions.labels(overlay=selected or "none").inc()
        return RoutingDecision(
            selected_overlay=selected,
            confidence=confidence,
            abstained=abstained,
            scores=ranked,
            fallback_options=fallbacks,
            category=category,
            complexity=complexity,
            complexity_bands=tuple(band_names),
            min_score=rules.min_score,
        )

    # ------------------------------------------------------------------ applying
    def apply_overlay(self, base_prompt: str, overlay_name: str) -> str:
        """Return ``base_prompt`` preceded by the overlay's guidance. Pure: no state changes."""
        _validate.text("base_prompt", base_prompt, max_chars=1_000_000)
        if not isinstance(overlay_name, str):
            raise OverlayNotFoundError(
                f"overlay_name must be a string, got {type(overlay_name).__name__}"
            )
        overlay = self.overlays.get(overlay_name)
        if overlay is None:
            raise OverlayNotFoundError(
                f"overlay_name {_validate.show(overlay_name)} is not loaded; "
                f"available: {sorted(self.overlays)}"
            )
        return (
            f"# Operating overlay: {overlay.title}\n\n{overlay.render()}\n\n"
            f"## Task\n{base_prompt.strip()}\n"
        )

    def health(self) -> dict[str, Any]:
        """Framework-free health summary (used by :func:`fusion_ops.health.health_payload`)."""
        return {
            "overlays_loaded": sorted(self.overlays),
            "load_issues": [i.to_dict() for i in self.load_issues],
            "keyword_triggers": self._matcher.keyword_count,
            "config_hash": self.config_hash,
            "status": "ok" if self.overlays and not self.load_issues else "degraded",
        }


def _config_hash(routing_file: Path, overlays: Mapping[str, Overlay]) -> str:
    digest = hashlib.sha256(routing_file.read_bytes())
    for name, overlay in overlays.items():
        digest.update(f"\x00{name}\x00{overlay.sha256}".encode())
    return digest.hexdigest()


def _explain(
    category: str,
    complexity: float,
    bands: Sequence[str],
    ranked: Sequence[OverlayScore],
    selected: str | None,
    min_score: float,
) -> tuple[str, ...]:
    lines = [f"category {category}; complexity {complexity:.2f} in band(s) {list(bands) or 'none'}"]
    for score in ranked:
        if score.total <= 0:
            continue
        parts = [f"category {score.category:.2f}", f"complexity {score.complexity:.2f}"]
        if score.matched_keywords:
            parts.append(f"keywords {score.keywords:.2f} {list(score.matched_keywords)}")
        lines.append(f"{score.overlay}: {score.total:.2f} = " + " + ".join(parts))
    if selected is None:
        top = ranked[0].total if ranked else 0.0
        if top <= 0:
            lines.append("abstained: no overlay scored above 0")
        else:
            lines.append(f"abstained: best score {top:.2f} is below min_score {min_score:.2f}")
    else:
        lines.append(f"selected {selected}")
    return tuple(lines)


# ---------------------------------------------------------------------- golden scenarios + demo
def load_golden_scenarios(path: str | Path | None = None) -> list[dict[str, Any]]:
    """The golden scenario set (package data unless ``path``): scenario + ``expected`` overlay."""
    if path is None:
        text = resources.files("fusion_ops").joinpath("defaults", "golden_scenarios.yaml")
        data = yaml.safe_load(text.read_text(encoding="utf-8"))
    else:
        data = read_yaml_mapping(Path(path), "golden scenarios")
    scenarios = data.get("scenarios") if isinstance(data, dict) else None
    if not isinstance(scenarios, list) or not all(isinstance(s, dict) for s in scenarios):
        raise ConfigError("golden scenarios: 'scenarios' must be a list of mappings")
    return scenarios


@guarded_main
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fusion_ops.runtime_router",
        description="Route the golden scenarios (or a file of your own) and show the decisions.",
    )
    parser.add_argument("--config-dir", help="routing.yaml + micro_overlays/ (default: embedded)")
    parser.add_argument("--scenarios", help="YAML file with a 'scenarios' list (default: golden)")
    parser.add_argument("--output-format", choices=("text", "json"), default="text")
    args = parser.parse_args(argv)
    router = RuntimeRouter(args.config_dir)
    rows = [(s, router.route_scenario(s)) for s in load_golden_scenarios(args.scenarios)]
    agree = sum(1 for s, d in rows if "expected" in s and s["expected"] == d.selected_overlay)
    labelled = sum(1 for s, _ in rows if "expected" in s)
    if args.output_format == "json":
        out = [{"id": s.get("id"), "expected": s.get("expected"), **d.to_dict()} for s, d in rows]
        print(json.dumps({"decisions": out, "agree": agree, "labelled": labelled}, indent=2))
        return 0
    print(f"{'id':<28} {'category':<26} {'cx':>4}  {'selected':<20} {'conf':>5}  expected")
    for scenario, decision in rows:
        mark = (
            ""
            if scenario.get("expected", decision.selected_overlay) == decision.selected_overlay
            else "  MISMATCH"
        )
        print(
            f"{scenario.get('id', '-')!s:<28} {decision.category:<26} {decision.complexity:>4.2f}"
            f"  {decision.selected_overlay or '(abstain)':<20} {decision.confidence:>5.2f}"
            f"  {scenario.get('expected') or '(abstain)'}{mark}"
        )
    print(f"\n{agree}/{labelled} decisions match the golden expectations")
    first = rows[0][1] if rows else None
    if first is not None:
        print("\nreasoning for the first scenario:")
        for line in first.reasoning:
            print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
