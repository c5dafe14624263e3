from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from fusion_ops.errors import (
    ConfigError,
    InvalidInputError,
    OverlayNotFoundError,
    ScenarioError,
    UnknownCategoryError,
)
from fusion_ops.overlays import KNOWN_SECTIONS, REASON_CODES
from fusion_ops.runtime_router import RuntimeRouter, load_golden_scenarios, main

GOLDEN = load_golden_scenarios()
ROUTER = RuntimeRouter()


def _scenario(
    description: str = "", category: str = "general_inquiry", cx: float = 0.5
) -> dict[str, Any]:
    return {"category": category, "complexity": cx, "description": description}


def test_golden_set_is_large_enough_and_labelled() -> None:
    assert len(GOLDEN) >= 40
    assert all("expected" in s and "id" in s for s in GOLDEN)
    assert len({s["id"] for s in GOLDEN}) == len(GOLDEN)
    expected = {s["expected"] for s in GOLDEN}
    assert {"rollback_first", "state_model_first", "observability_first", None} <= expected


@pytest.mark.parametrize("scenario", GOLDEN, ids=[s["id"] for s in GOLDEN])
def test_golden_scenarios_route_as_expected(scenario: dict[str, Any]) -> None:
    decision = ROUTER.route_scenario(scenario)
    assert decision.selected_overlay == scenario["expected"], decision.reasoning
    assert decision.abstained == (scenario["expected"] is None)


def test_seed_example_routes_to_rollback_first() -> None:
    decision = ROUTER.route_scenario(
        {
            "category": "financial_operations",
            "complexity": 0.8,
            "description": "Process refund with rollback requirements",
        }
    )
    assert decision.selected_overlay == "rollback_first"
    assert 0 < decision.confidence <= 1
    top = decision.scores[0]
    assert (top.category, top.complexity) == (0.5, 0.15)
    assert set(top.matched_keywords) == {"refund", "rollback"}
    assert decision.fallback_options == ("state_model_first",)
    assert decision.reasoning[-1] == "selected rollback_first"
    json.dumps(decision.to_dict())


def test_category_table_from_the_issue() -> None:
    expected = {
        "financial_operations": ("rollback_first", ()),
        "security_operations": ("rollback_first", ()),
        "service_management": ("rollback_first", ()),
        "system_integration": ("rollback_first", ("state_model_first",)),
        "data_operations": ("rollback_first", ("state_model_first",)),
        "compliance_management": ("observability_first", ("state_model_first",)),
        "infrastructure_management": ("observability_first", ("rollback_first",)),
        "customer_success": ("observability_first", ()),
    }
    for category, (primary, secondary) in expected.items():
        rule = ROUTER.rules.categories[category]
        assert (rule.primary, rule.secondary) == (primary, secondary)


@pytest.mark.parametrize(
    ("text", "keyword"),
    [
        ("Check the LOGS", "log"),
        ("review the log.", "log"),
        ("Audit Trail", "audit trail"),
        ("roll   back now", "roll back"),
        ("alerts", "alert"),
    ],
)
def test_keywords_match_whole_words_case_folded(text: str, keyword: str) -> None:
    scores = {s.overlay: s for s in ROUTER.route_scenario(_scenario(text)).scores}
    matched = {k for s in scores.values() for k in s.matched_keywords}
    assert keyword in matched


@pytest.mark.parametrize("text", ["catalog", "blogger", "backlogs", "prologue", "undone", "dialog"])
def test_keywords_never_match_inside_words(text: str) -> None:
    decision = ROUTER.route_scenario(_scenario(f"the {text} entry"))
    assert all(not s.matched_keywords for s in decision.scores)


@given(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=6),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=6),
)
def test_a_keyword_glued_to_letters_never_fires(prefix: str, suffix: str) -> None:
    for keyword in ("log", "audit", "refund", "saga", "slo"):
        text = f"{prefix}{keyword}{suffix}"
        decision = ROUTER.route_scenario(_scenario(text))
        hits = {k for s in decision.scores for k in s.matched_keywords}
        assert keyword not in hits


def test_each_keyword_counts_once() -> None:
    once = ROUTER.route_scenario(_scenario("dashboard"))
    many = ROUTER.route_scenario(_scenario("dashboard dashboard dashboards"))
    assert once.scores[0].keywords == many.scores[0].keywords


def test_keyword_score_is_capped() -> None:
    text = " ".join(ROUTER.rules.triggers["observability_first"])
    top = ROUTER.route_scenario(_scenario(text)).scores[0]
    assert top.overlay == "observability_first"
    assert top.keywords == ROUTER.rules.keyword_cap


def test_complexity_bands_edges() -> None:
    at_07 = ROUTER.route_scenario(_scenario("", cx=0.7))
    above = ROUTER.route_scenario(_scenario("", cx=0.71))
    at_04 = ROUTER.route_scenario(_scenario("", cx=0.4))
    assert all(s.complexity == 0 for s in at_07.scores)
    assert {s.overlay: s.complexity for s in above.scores}["state_model_first"] == 0.45
    assert {s.overlay: s.complexity for s in at_04.scores}["observability_first"] == 0.25


def test_ties_are_broken_by_tie_break_order_not_by_name() -> None:
    decision = ROUTER.route_scenario(_scenario("saga monitoring"))
    first, second = decision.scores[:2]
    assert first.total == second.total
    assert decision.selected_overlay == "state_model_first"  # alphabetical would pick observability


def test_decisions_do_not_depend_on_file_or_yaml_order(router_dir: Path) -> None:
    rules = yaml.safe_load((router_dir / "routing.yaml").read_text())
    shuffled = dict(rules)
    rng = random.Random(4)
    for key in ("categories", "keyword_triggers"):
        items = list(rules[key].items())
        rng.shuffle(items)
        shuffled[key] = dict(items)
    (router_dir / "routing.yaml").write_text(yaml.safe_dump(shuffled, sort_keys=False))
    other = RuntimeRouter(router_dir)
    for scenario in GOLDEN:
        assert other.route_scenario(scenario) == ROUTER.route_scenario(scenario)


@pytest.mark.parametrize(
    ("scenario", "error", "match"),
    [
        ({"category": "space_travel", "complexity": 0.5}, UnknownCategoryError, "space_travel"),
        ({"category": 3, "complexity": 0.5}, ScenarioError, "scenario.category must be a string"),
        ({"category": "customer_success", "complexity": 1.5}, ScenarioError, "<= 1.0"),
        ({"category": "customer_success", "complexity": -0.1}, ScenarioError, ">= 0.0"),
        ({"category": "customer_success", "complexity": float("nan")}, ScenarioError, "finite"),
        ({"category": "customer_success", "complexity": True}, ScenarioError, "number"),
        ({"category": "customer_success"}, ScenarioError, "complexity must be a number"),
        (
            {"category": "customer_success", "complexity": 0.5, "description": 42},
            ScenarioError,
            "description must be a string",
        ),
        (
            {"category": "customer_success", "complexity": 0.5, "description": "x" * 20_001},
            ScenarioError,
            "too long",
        ),
        (["not", "a", "mapping"], ScenarioError, "must be a mapping"),
    ],
)
def test_bad_scenarios_raise_typed_errors(
    scenario: Any, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        ROUTER.route_scenario(scenario)


def test_apply_overlay_is_pure_and_contains_the_sections() -> None:
    before = dict(ROUTER.overlays)
    prompt = ROUTER.apply_overlay(
        base_prompt="Analyze this scenario.", overlay_name="rollback_first"
    )
    assert prompt == ROUTER.apply_overlay("Analyze this scenario.", "rollback_first")
    assert dict(ROUTER.overlays) == before
    for section in KNOWN_SECTIONS:
        assert f"## {section}" in prompt
    assert prompt.rstrip().endswith("Analyze this scenario.")


def test_apply_overlay_rejects_unknown_names_and_bad_prompts() -> None:
    with pytest.raises(OverlayNotFoundError, match="'nope' is not loaded"):
        ROUTER.apply_overlay("x", "nope")
    with pytest.raises(OverlayNotFoundError):
        ROUTER.apply_overlay("x", None)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="base_prompt must be a string"):
        ROUTER.apply_overlay(b"x", "rollback_first")  # type: ignore[arg-type]


def test_shipped_overlays_have_all_six_sections() -> None:
    for overlay in ROUTER.overlays.values():
        assert [h for h, _ in overlay.sections] == list(KNOWN_SECTIONS)
        assert all(len(body) > 80 for _, body in overlay.sections)


BAD_FILES: list[tuple[str, bytes, str]] = [
    ("empty", b"", "empty"),
    ("blank", b"  \n\t\n", "empty"),
    ("latin1", "## Core Directive\ncaf\xe9".encode("latin-1"), "not_utf8"),
    ("nul", b"## Core Directive\x00\x00", "binary"),
    ("no_sections", b"just prose, no headings", "malformed"),
    ("no_core", b"## Quality Gates\nbe good", "malformed"),
    ("empty_core", b"## Core Directive\n\n## Tone Adjustments\ncalm", "malformed"),
    ("dupes", b"## Core Directive\na\n## Core Directive\nb", "malformed"),
    ("Bad-Name", b"## Core Directive\nfine", "invalid_name"),
]


@pytest.mark.parametrize(("name", "content", "reason"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_overlay_files_are_skipped_with_reason(
    router_dir: Path, tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    (router_dir / "micro_overlays" / f"{name}.md").write_bytes(content)
    audit = tmp_path / "audit.jsonl"
    registry = CollectorRegistry()
    router = RuntimeRouter(router_dir, audit_path=audit, registry=registry)
    assert set(router.overlays) == {"rollback_first", "state_model_first", "observability_first"}
    [issue] = router.load_issues
    assert (issue.overlay, issue.reason) == (name, reason)
    assert reason in REASON_CODES
    [record] = [json.loads(line) for line in audit.read_text().splitlines()]
    assert record["reason"] == reason
    assert record["event"] == "overlay_skipped"
    count = registry.get_sample_value(
        "fusion_router_overlay_load_failures_total", {"reason": reason}
    )
    assert count == 1
    assert router.route_scenario(GOLDEN[0]).selected_overlay == "rollback_first"
    assert router.health()["status"] == "degraded"


def test_oversize_overlay_is_skipped(router_dir: Path) -> None:
    rules = yaml.safe_load((router_dir / "routing.yaml").read_text())
    rules["limits"]["max_overlay_bytes"] = 1000
    (router_dir / "routing.yaml").write_text(yaml.safe_dump(rules))
    (router_dir / "micro_overlays" / "huge.md").write_text("## Core Directive\n" + "x" * 5000)
    router = RuntimeRouter(router_dir)
    reasons = {i.overlay: i.reason for i in router.load_issues}
    assert reasons["huge"] == "oversize"


def test_unreadable_overlay_is_skipped(router_dir: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root can read any file")
    path = router_dir / "micro_overlays" / "locked.md"
    path.write_text("## Core Directive\nfine")
    path.chmod(0)
    try:
        router = RuntimeRouter(router_dir)
    finally:
        path.chmod(0o600)
    assert {i.overlay: i.reason for i in router.load_issues}["locked"] == "unreadable"


def test_corrupt_referenced_overlay_drops_its_rules_and_keeps_serving(router_dir: Path) -> None:
    (router_dir / "micro_overlays" / "rollback_first.md").write_bytes(b"\xff\xfe garbage")
    router = RuntimeRouter(router_dir)
    reasons = sorted((i.overlay, i.reason) for i in router.load_issues)
    assert reasons == [("rollback_first", "not_utf8"), ("rollback_first", "overlay_unavailable")]
    decision = router.route_scenario(GOLDEN[0])  # the seed refund scenario
    assert decision.selected_overlay == "state_model_first"
    assert "rollback_first" not in {s.overlay for s in decision.scores}
    with pytest.raises(OverlayNotFoundError):
        router.apply_overlay("x", "rollback_first")


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda r: r.update(version=2), "routing.version must be 1"),
        (
            lambda r: r["scoring"].update(min_score="high"),
            r"routing.scoring.min_score must be a number",
        ),
        (lambda r: r["scoring"].update(keyword_cap=float("nan")), "routing.scoring.keyword_cap"),
        (
            lambda r: r["categories"]["customer_success"].update(primary="Bad Name"),
            r"routing.categories.customer_success.primary",
        ),
        (
            lambda r: r["keyword_triggers"]["rollback_first"].update({"refund": -1}),
            r"routing.keyword_triggers.rollback_first.refund",
        ),
        (lambda r: r["complexity_bands"][0].pop("above"), r"routing.complexity_bands\[0\] needs"),
        (lambda r: r.update(categories={}), "at least one category"),
    ],
)
def test_malformed_routing_yaml_names_the_key(router_dir: Path, mutate: Any, match: str) -> None:
    rules = yaml.safe_load((router_dir / "routing.yaml").read_text())
    mutate(rules)
    (router_dir / "routing.yaml").write_text(yaml.safe_dump(rules))
    with pytest.raises(ConfigError, match=match):
        RuntimeRouter(router_dir)


def test_unparseable_or_missing_config(router_dir: Path, tmp_path: Path) -> None:
    (router_dir / "routing.yaml").write_text("version: [1,\n")
    with pytest.raises(ConfigError, match="not valid UTF-8 YAML"):
        RuntimeRouter(router_dir)
    with pytest.raises(ConfigError, match="cannot read"):
        RuntimeRouter(tmp_path / "nowhere")


def test_repo_config_dir_works_from_the_repo_root(repo_root: Path) -> None:
    cwd = Path.cwd()
    os.chdir(repo_root)
    try:
        router = RuntimeRouter("./configs/fusion")
    finally:
        os.chdir(cwd)
    assert router.load_issues == ()
    assert router.config_hash == ROUTER.config_hash  # the repo copy equals the embedded defaults


def test_metrics_count_decisions() -> None:
    registry = CollectorRegistry()
    router = RuntimeRouter(registry=registry)
    router.route_scenario(GOLDEN[0])
    router.route_scenario(_scenario("nothing here"))
    assert (
        registry.get_sample_value("fusion_router_decisions_total", {"overlay": "rollback_first"})
        == 1
    )
    assert registry.get_sample_value("fusion_router_decisions_total", {"overlay": "none"}) == 1
    assert registry.get_sample_value("fusion_router_overlays_loaded") == 3


def test_demo_module_runs_over_the_golden_set(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    assert f"{len(GOLDEN)}/{len(GOLDEN)} decisions match" in out
    assert main(["--output-format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["agree"] == len(GOLDEN)


def test_demo_module_as_subprocess(tmp_path: Path) -> None:
    bad = tmp_path / "scenarios.yaml"
    bad.write_text(yaml.safe_dump({"scenarios": [{"category": "nope", "complexity": 0.2}]}))
    proc = subprocess.run(
        [sys.executable, "-m", "fusion_ops.runtime_router", "--scenarios", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "nope" in proc.stderr


def _min_score_zero(router_dir: Path) -> Path:
    rules = yaml.safe_load((router_dir / "routing.yaml").read_text())
    rules["scoring"]["min_score"] = 0
    (router_dir / "routing.yaml").write_text(yaml.safe_dump(rules))
    return router_dir


def test_min_score_zero_and_a_zero_score_scenario_abstain(router_dir: Path) -> None:
    """Every overlay scores 0 (no category overlay, no band, no keyword): 0/0 confidence used
    to raise ZeroDivisionError; no evidence at all is an abstention, whatever min_score says."""
    router = RuntimeRouter(_min_score_zero(router_dir))
    decision = router.route_scenario(_scenario("nothing relevant here", cx=0.5))
    assert all(s.total == 0 for s in decision.scores)
    assert decision.abstained
    assert decision.selected_overlay is None
    assert (decision.confidence, decision.fallback_options) == (0.0, ())
    assert decision.reasoning[-1] == "abstained: no overlay scored above 0"
    positive = router.route_scenario(_scenario("plan the rollback", cx=0.5))
    assert positive.selected_overlay == "rollback_first"
    assert positive.confidence == 1.0


def test_router_demo_with_min_score_zero_exits_0(router_dir: Path, tmp_path: Path) -> None:
    scenarios = tmp_path / "s.yaml"
    scenarios.write_text(yaml.safe_dump({"scenarios": [_scenario("nothing relevant", cx=0.5)]}))
    args = ["--config-dir", str(_min_score_zero(router_dir)), "--scenarios", str(scenarios)]
    assert main(args) == 0


def test_router_demo_unreadable_scenarios_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--scenarios", str(tmp_path)]) == 2  # a directory
    assert capsys.readouterr().err.startswith("error: ")


def test_a_huge_integer_weight_is_a_config_error(router_dir: Path) -> None:
    text = (router_dir / "routing.yaml").read_text()
    (router_dir / "routing.yaml").write_text(
        text.replace("min_score: 0.30", "min_score: " + "9" * 400)
    )
    with pytest.raises(ConfigError, match=r"routing\.scoring\.min_score must be in \[0, 10\.0\]"):
        RuntimeRouter(router_dir)
