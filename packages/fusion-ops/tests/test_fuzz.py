"""Parsers never fail with anything but their typed error, whatever they are fed."""

from __future__ import annotations

import contextlib
import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fusion_ops.errors import ConfigError, ReportError, ScenarioError
from fusion_ops.overlays import parse_overlay
from fusion_ops.report import parse_report
from fusion_ops.routing_rules import parse_rules
from fusion_ops.runtime_router import RuntimeRouter, embedded_config_dir
from fusion_ops.tripwire import BudgetTripwire

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
ROUTER = RuntimeRouter()
RULES = yaml.safe_load((embedded_config_dir() / "routing.yaml").read_text())


@given(JSON)
def test_report_parser_raises_only_report_error(document: Any) -> None:
    with contextlib.suppress(ReportError):
        parse_report(document)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60)
@given(
    path=st.lists(
        st.sampled_from(["scenarios", 0, 1, "baseline", "samples", "metadata", "candidate"]),
        max_size=4,
    ),
    value=JSON,
)
def test_report_parser_on_mutated_valid_documents(
    report_dict: dict[str, Any], path: list[Any], value: Any
) -> None:
    doc = copy.deepcopy(report_dict)
    node: Any = doc
    try:
        for key in path[:-1]:
            node = node[key]
        if path:
            node[path[-1]] = value
    except (KeyError, IndexError, TypeError):
        return
    with contextlib.suppress(ReportError):
        parse_report(doc)


@given(section=st.sampled_from(sorted(RULES)), value=JSON)
def test_routing_rules_raise_only_config_error(section: str, value: Any) -> None:
    rules = copy.deepcopy(RULES)
    rules[section] = value
    with contextlib.suppress(ConfigError):
        parse_rules(rules)


@given(
    st.dictionaries(
        st.sampled_from(["category", "complexity", "description", "x"]), JSON, max_size=4
    )
)
def test_route_scenario_raises_only_scenario_error(scenario: dict[str, Any]) -> None:
    with contextlib.suppress(ScenarioError):
        ROUTER.route_scenario(scenario)


@given(st.text(max_size=300))
def test_overlay_parser_raises_only_value_error(text: str) -> None:
    try:
        overlay = parse_overlay("x", text)
    except ValueError:
        return
    assert overlay.section("Core Directive")


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=300))
def test_any_state_file_content_is_parsed_or_moved_aside(
    tmp_path_factory: pytest.TempPathFactory, content: bytes
) -> None:
    path = Path(tmp_path_factory.mktemp("wire")) / "state.json"
    path.write_bytes(content)
    status = BudgetTripwire(path).record(1.0)
    if status.corrupt_file_moved_to is not None:
        assert Path(status.corrupt_file_moved_to).read_bytes() == content
        assert status.state.downgraded
