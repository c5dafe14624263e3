"""The HTTP service: the real app under uvicorn on 127.0.0.1, a real HTTP client (httpx)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from prometheus_client import CollectorRegistry

from fusion_ops.governance import EnergyGovernor
from fusion_ops.runtime_router import RuntimeRouter
from hbt_core import verify_proof_bundle
from resontinex.pipeline import (
    DriftSettings,
    DriftWatch,
    GovernedPipeline,
    LocalModelBackend,
    ModelWorker,
)
from resontinex.pipeline.factory import PipelineSettings, open_audit_log
from resontinex.service import MAX_BODY_BYTES, ServiceSettings, create_app
from resontinex.service.app import worst_status
from resontinex.service.observability import fresh_request_id
from resontinex.trust import TrustMonitor

TOKEN = "test-token-0123456789abcdef"
SECRET = "sk-ant-api03-THIS-MUST-NEVER-BE-ECHOED"


class RunningServer:
    """uvicorn serving an app on an ephemeral loopback port, in a background thread."""

    def __init__(self, app: Any) -> None:
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 300
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        # The server listens at once and builds the pipeline in the background.
        while httpx.get(f"{url}/health/ready").status_code != 200:
            if time.monotonic() > deadline:
                raise RuntimeError("the pipeline did not become ready")
            time.sleep(0.05)
        return url

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def pipeline_factory(
    model_dir: Path, state_dir: Path, *, drift: bool
) -> Callable[[CollectorRegistry], GovernedPipeline]:
    def build(registry: CollectorRegistry) -> GovernedPipeline:
        # the service's own worker (one owner per loaded model), recording on its registry
        backend = LocalModelBackend(ModelWorker(model_dir, registry=registry))
        return GovernedPipeline(
            backend=backend,
            router=RuntimeRouter(registry=registry),
            governor=EnergyGovernor(1_000_000.0, registry=registry),
            trust=TrustMonitor(registry=registry),
            audit_log=open_audit_log(PipelineSettings(state_dir=state_dir)),
            drift=DriftWatch(
                backend.fingerprint_model(), DriftSettings(n_probes=8), registry=registry
            )
            if drift
            else None,
            owns_model=True,
        )

    return build


@pytest.fixture(scope="module")
def service(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    state = tmp_path_factory.mktemp("service-state")
    settings = ServiceSettings(state_dir=state, api_token=TOKEN, break_glass_operators=("alice",))
    app = create_app(settings, pipeline_factory=pipeline_factory(model_dir, state, drift=True))
    with RunningServer(app) as url:
        yield url


@pytest.fixture
def client(service: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service, timeout=120) as c:
        yield c


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_health_aggregates_every_member(client: httpx.Client) -> None:
    body = client.get("/health").json()
    assert body["ready"] is True
    assert set(body["components"]) == {"trust", "fusion", "audit", "drift"}
    assert client.get("/health/live").json() == {"status": "alive"}
    assert client.get("/health/ready").json() == {"ready": True}


def test_metrics_come_from_every_member_on_one_registry(client: httpx.Client) -> None:
    client.post(
        "/trust/evaluate",
        json={"alignment_score": 0.8, "epistemic_risk": 0.3, "confidence_band": 0.2},
    )
    client.post(
        "/pipeline/run",
        json={"prompt": "Add tracing to the API", "category": "infrastructure_management"},
    )
    text = client.get("/metrics").text
    for name in (
        "trust_gate_decisions_total",
        "fusion_budget_requests_total",
        "cert_trajectory_analyses_total",
        "hbt_monitor_checks_total",
    ):
        assert name in text


def test_trust_evaluate_returns_the_explanation(client: httpx.Client) -> None:
    response = client.post(
        "/trust/evaluate",
        json={"alignment_score": 0.8, "epistemic_risk": 0.3, "confidence_band": 0.2},
    )
    assert response.status_code == 200
    assert response.json()["aggregation"]["trust_score"] == pytest.approx(0.7681, abs=1e-4)


FAST_PATH_CASES = [
    ("/trust/evaluate", {"alignment_score": 0.8, "epistemic_risk": 0.3, "confidence_band": 0.2}),
    ("/trust/evaluate", {"alignment_score": 0.05, "epistemic_risk": 0.95, "confidence_band": 0.9}),
    ("/trust/evaluate", {"alignment_score": 1, "epistemic_risk": 0, "confidence_band": 0.5}),
    ("/trust/evaluate/batch", {"rows": [[0.9, 0.1, 0.1], [0.5, 0.5, 0.5], [0, 1, 1], [1, 0, 0]]}),
]


@pytest.mark.parametrize(("path", "body"), FAST_PATH_CASES)
def test_the_fast_path_answers_as_the_framework_route_does(
    client: httpx.Client, path: str, body: dict[str, Any]
) -> None:
    """A JSON POST to a trust calculation is answered before the framework; a JSON media type
    the fast path does not take (``+json``) goes to the route. Same answer, headers, metrics."""

    def route_count(text: str) -> float:
        label = f'resontinex_http_requests_total{{method="POST",route="{path}",status="200"}}'
        lines = [line for line in text.splitlines() if line.startswith(label + " ")]
        return float(lines[0].split()[1]) if lines else 0.0

    before = route_count(client.get("/metrics").text)
    fast = client.post(path, json=body, headers={"X-Request-ID": "fast-1"})
    routed = client.post(
        path,
        content=json.dumps(body),
        headers={"X-Request-ID": "routed-1", "content-type": "application/vnd.api+json"},
    )
    for response, request_id in ((fast, "fast-1"), (routed, "routed-1")):
        assert response.status_code == 200, (request_id, response.text)
        assert response.headers["content-type"] == "application/json"
        assert response.headers["x-request-id"] == request_id
    fast_body, routed_body = fast.json(), routed.json()
    for answer in (fast_body, routed_body):
        answer.get("observability", {}).pop("timestamp", None)
    assert fast_body == routed_body
    assert route_count(client.get("/metrics").text) == before + 2


def test_the_fast_path_passes_bad_and_chunked_bodies_to_the_route(client: httpx.Client) -> None:
    """Refusals come from the route (a problem document); a body in several chunks is read whole."""
    bad = client.post("/trust/evaluate", json={"alignment_score": 2, "epistemic_risk": 0})
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"
    assert {e["field"] for e in bad.json()["errors"]} == {
        "body.alignment_score",
        "body.confidence_band",
    }
    text = json.dumps({"alignment_score": 0.8, "epistemic_risk": 0.3, "confidence_band": 0.2})
    chunked = client.post(
        "/trust/evaluate",
        content=iter([text[:10].encode(), text[10:].encode()]),
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert chunked.status_code == 200
    assert chunked.json()["aggregation"]["trust_score"] == pytest.approx(0.7681, abs=1e-4)


@pytest.mark.parametrize(
    "body",
    [
        {"alignment_score": 1.5, "epistemic_risk": 0.3, "confidence_band": 0.2},
        {"alignment_score": "NaN", "epistemic_risk": 0.3, "confidence_band": 0.2},
        {"alignment_score": SECRET, "epistemic_risk": 0.3, "confidence_band": 0.2},
        {"alignment_score": 0.5, "epistemic_risk": 0.3},
        {"alignment_score": 0.5, "epistemic_risk": 0.3, "confidence_band": 0.2, "api_key": SECRET},
    ],
)
def test_bad_bodies_get_field_errors_that_do_not_echo_values(
    client: httpx.Client, body: dict[str, Any]
) -> None:
    response = client.post("/trust/evaluate", json=body)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["field"].startswith("body")
    assert SECRET not in response.text


def test_oversized_bodies_are_refused(client: httpx.Client) -> None:
    response = client.post(
        "/pipeline/run",
        content=b"{" + b" " * (MAX_BODY_BYTES + 10) + b"}",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413


def test_a_pipeline_decision_is_provable_over_http(client: httpx.Client) -> None:
    result = client.post(
        "/pipeline/run",
        json={
            "prompt": "Roll back the failed deploy",
            "category": "financial_operations",
            "complexity": 0.8,
        },
    )
    assert result.status_code == 200, result.text
    decision = result.json()
    assert decision["decision"] in {"execute", "review", "defer", "abort"}
    proof = client.get(f"/audit/proof/{decision['audit_index']}").json()
    public = load_pem_public_key(proof.pop("public_key_pem").encode())
    record = json.loads(verify_proof_bundle(proof, public))
    assert record["request_id"] == decision["request_id"]
    assert client.get("/audit/proof/999999").status_code == 404


def test_unknown_category_is_a_422(client: httpx.Client) -> None:
    response = client.post(
        "/pipeline/run", json={"prompt": "hello", "category": "no_such_category"}
    )
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert (error["field"], error["rule"]) == ("body.category", "literal_error")
    assert "no_such_category" not in response.text


def test_a_prompt_beyond_the_context_is_a_422_naming_the_limit(client: httpx.Client) -> None:
    limits = client.get("/pipeline/limits").json()
    assert limits["context_tokens"] == 2048
    assert 0 < limits["max_prompt_tokens"] < limits["context_tokens"]
    prompt = "Restart the worker pool and report what failed. " * 40  # ~2,000 characters
    response = client.post("/pipeline/run", json={"prompt": prompt})
    assert response.status_code == 422
    assert "context of 2048 tokens" in response.text


def test_an_approver_needs_the_token_and_a_listed_operator(client: httpx.Client) -> None:
    body = {"prompt": "Add alerts to the queue", "emergency": True, "max_new_tokens": 4}
    assert client.post("/pipeline/run", json={**body, "approver": "alice"}).status_code == 401
    refused = client.post("/pipeline/run", json={**body, "approver": "mallory"}, headers=AUTH)
    assert refused.status_code == 403
    approved = client.post("/pipeline/run", json={**body, "approver": "alice"}, headers=AUTH)
    assert approved.status_code == 200
    assert approved.json()["stages"][1]["output"]["emergency"] == "approved by alice"


def test_concurrent_runs_over_http_match_a_lone_run_while_probes_run(service: str) -> None:
    """Issue 12 over HTTP: 20 concurrent identical runs, with a model verification (fingerprint
    probes on the same model) in flight, each get the lone run's answer, perplexity and trust."""
    body = {"prompt": "concurrent request 7 about service restart", "max_new_tokens": 8}

    def seen(response: httpx.Response) -> tuple[Any, ...]:
        assert response.status_code == 200
        result = response.json()
        stages = {s["name"]: s["output"] for s in result["stages"]}
        return (
            result["answer"],
            stages["generate"]["perplexity"],
            stages["trust"]["trust_score"],
            result["decision"],
        )

    async def go() -> tuple[httpx.Response, list[httpx.Response]]:
        async with httpx.AsyncClient(base_url=service, timeout=300) as c:
            alone = await c.post("/pipeline/run", json=body)
            verify = asyncio.create_task(c.post("/hbt/verify", headers=AUTH))
            runs = await asyncio.gather(*(c.post("/pipeline/run", json=body) for _ in range(20)))
            assert (await verify).status_code == 200
            return alone, list(runs)

    alone, runs = asyncio.run(go())
    expected = seen(alone)
    for response in runs:
        answer, perplexity, trust, decision = seen(response)
        assert (answer, decision) == (expected[0], expected[3])
        assert perplexity == pytest.approx(expected[1], rel=1e-6)
        assert trust == pytest.approx(expected[2], rel=1e-6)


def test_fusion_endpoints(client: httpx.Client) -> None:
    route = client.post(
        "/fusion/route",
        json={"category": "security_operations", "complexity": 0.9, "description": "rotate keys"},
    )
    assert route.json()["selected_overlay"] == "rollback_first"
    assert client.get("/fusion/health").json()["status"] in {"healthy", "degraded", "ok"}
    assert "ledger" in client.get("/fusion/budget/status").json()
    assert client.post("/fusion/budget/period", json={"period": "p2"}).status_code == 401
    assert (
        client.post(
            "/fusion/budget/period", json={"period": "p2", "budget": 5e5}, headers=AUTH
        ).status_code
        == 200
    )


def test_trajectory_score(client: httpx.Client) -> None:
    body = client.post(
        "/cert/trajectory/score", json={"prompt": "Return the", "response": " value of x"}
    ).json()
    assert body["mode"] == "score"
    assert body["perplexity"] > 1


def test_break_glass_needs_the_token_and_an_authorised_operator(client: httpx.Client) -> None:
    body = {
        "alignment_score": 0.1,
        "epistemic_risk": 0.9,
        "confidence_band": 0.9,
        "override_reason": "incident 42",
        "operator_id": "mallory",
    }
    assert client.post("/trust/break-glass", json=body).status_code == 401
    assert (
        client.post(
            "/trust/break-glass", json=body, headers={"Authorization": "Bearer wrong"}
        ).status_code
        == 401
    )
    refused = client.post("/trust/break-glass", json=body, headers=AUTH)
    assert refused.status_code == 403
    granted = client.post("/trust/break-glass", json={**body, "operator_id": "alice"}, headers=AUTH)
    assert granted.status_code == 200, granted.text
    assert granted.json()["granted_decision"] == "execute"
    assert TOKEN not in granted.text


def test_hbt_verify_recognises_the_serving_model(client: httpx.Client) -> None:
    assert client.post("/hbt/verify").status_code == 401
    body = client.post("/hbt/verify", headers=AUTH).json()
    assert body["same_model"] is True


def test_privileged_endpoints_are_closed_without_a_configured_token(
    model_dir: Path, tmp_path: Path
) -> None:
    settings = ServiceSettings(state_dir=tmp_path, api_token=None)
    app = create_app(settings, pipeline_factory=pipeline_factory(model_dir, tmp_path, drift=False))
    with RunningServer(app) as url, httpx.Client(base_url=url) as c:
        response = c.post("/fusion/budget/period", json={"period": "x"}, headers=AUTH)
        assert response.status_code == 403
        assert "RESONTINEX_API_TOKEN" in response.text


def test_bounded_concurrent_load_has_no_server_errors(service: str) -> None:
    """400 trust evaluations at concurrency 16 and 16 pipeline runs at concurrency 4, loopback only."""

    async def hammer(
        path: str, body: dict[str, Any], total: int, concurrency: int
    ) -> list[tuple[int, float]]:
        results: list[tuple[int, float]] = []
        gate = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(base_url=service, timeout=120) as c:

            async def one() -> None:
                async with gate:
                    started = time.perf_counter()
                    response = await c.post(path, json=body)
                    results.append((response.status_code, time.perf_counter() - started))

            await asyncio.gather(*(one() for _ in range(total)))
        return results

    trust = asyncio.run(
        hammer(
            "/trust/evaluate",
            {"alignment_score": 0.7, "epistemic_risk": 0.2, "confidence_band": 0.3},
            400,
            16,
        )
    )
    runs = asyncio.run(
        hammer(
            "/pipeline/run",
            {"prompt": "Add alerts to the queue", "category": "infrastructure_management"},
            16,
            4,
        )
    )
    for results in (trust, runs):
        assert [s for s, _ in results if s >= 500] == []
        assert all(s == 200 for s, _ in results)


# ---------------------------------------------------------------- the service contract

PROBLEM = "application/problem+json"
SIGNALS = {"alignment_score": 0.8, "epistemic_risk": 0.3, "confidence_band": 0.2}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/pipeline/run", {"prompt": "hi", "emergency": "yes"}),
        ("/pipeline/run", {"prompt": "hi", "emergency": 0}),
        ("/pipeline/run", {"prompt": "hi", "max_new_tokens": 2.5}),
        ("/pipeline/run", {"prompt": "hi", "max_new_tokens": "2"}),
        ("/trust/evaluate", {**SIGNALS, "confidence_band": False}),
        ("/trust/evaluate", {**SIGNALS, "alignment_score": "0.5"}),
    ],
)
def test_types_are_not_coerced(client: httpx.Client, path: str, body: dict[str, Any]) -> None:
    response = client.post(path, json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM


def test_an_integral_number_is_an_integer_as_json_schema_says(client: httpx.Client) -> None:
    response = client.post(
        "/pipeline/run", json={"prompt": "Restart the queue", "max_new_tokens": 2.0}
    )
    assert response.status_code == 200, response.text


SECRET_PLACES = [
    ("/trust/evaluate", dict(SIGNALS), ["alignment_score"]),
    ("/trust/evaluate/batch", {"rows": [[0.5, 0.5, 0.5]]}, ["rows"]),
    ("/pipeline/run", {"prompt": "hi"}, ["category", "approver", "max_new_tokens"]),
    ("/fusion/route", {"category": "general_inquiry", "complexity": 0.5}, ["category"]),
    ("/fusion/budget/period", {"period": "p"}, ["budget"]),
    (
        "/trust/break-glass",
        {**SIGNALS, "override_reason": "r", "operator_id": "x"},
        ["operator_id"],
    ),
    ("/cert/trajectory/score", {"prompt": "a", "response": "b"}, []),  # any text is valid
]


@pytest.mark.parametrize(("path", "base", "fields"), SECRET_PLACES)
@pytest.mark.parametrize("auth", [False, True])
def test_no_submitted_value_comes_back_in_an_error(
    client: httpx.Client, path: str, base: dict[str, Any], fields: list[str], auth: bool
) -> None:
    """A secret in any field, as an unknown key, or in a malformed body never comes back."""
    headers = AUTH if auth else {}
    bodies: list[Any] = [{**base, field: SECRET} for field in fields]
    bodies += [{**base, SECRET: 1}, [SECRET], SECRET]
    for body in bodies:
        response = client.post(path, json=body, headers=headers)
        assert 400 <= response.status_code < 500, response.text
        assert response.headers["content-type"] == PROBLEM
        assert SECRET not in response.text
    raw = client.post(path, content=b'{"x": "' + SECRET.encode(), headers=headers)
    assert raw.status_code in {400, 401}  # privileged routes check the token first
    assert SECRET not in raw.text


def test_an_unauthorised_operator_is_not_echoed(client: httpx.Client) -> None:
    body = {**SIGNALS, "override_reason": "outage", "operator_id": "mallory-operator"}
    refused = client.post("/trust/break-glass", json=body, headers=AUTH)
    assert refused.status_code == 403
    assert "mallory-operator" not in refused.text


def test_anonymous_emergency_is_an_ordinary_request(client: httpx.Client) -> None:
    """Without an approver (which needs the token) emergency=true lifts no budget limit."""
    body = {"prompt": "Restart the queue", "emergency": True}
    anonymous = client.post("/pipeline/run", json=body)
    assert anonymous.status_code == 200, anonymous.text
    budget = next(s for s in anonymous.json()["stages"] if s["name"] == "budget")
    assert budget["output"]["emergency"] == "not approved (no approver): an ordinary request"
    assert client.post("/pipeline/run", json={**body, "approver": "alice"}).status_code == 401
    approved = client.post("/pipeline/run", json={**body, "approver": "alice"}, headers=AUTH)
    assert approved.status_code == 200, approved.text
    budget = next(s for s in approved.json()["stages"] if s["name"] == "budget")
    assert budget["output"]["emergency"] == "approved by alice"


def test_fresh_request_ids_are_unique_within_and_across_processes() -> None:
    """A counter behind a per-process random prefix: a forked worker starts its own prefix."""
    ids = [fresh_request_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the forked worker writes its first id and leaves without cleanup
        os.write(write, fresh_request_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    forked = os.read(read, 64).decode()
    os.close(read)
    assert forked not in ids
    assert forked[:16] != ids[0][:16]


def test_request_ids_are_taken_or_made_and_reach_the_audit_record(client: httpx.Client) -> None:
    given = client.post("/trust/evaluate", json=SIGNALS, headers={"X-Request-ID": "req-123"})
    assert given.headers["x-request-id"] == "req-123"
    junk = client.post("/trust/evaluate", json=SIGNALS, headers={"X-Request-ID": "a b\tc"})
    assert junk.headers["x-request-id"] != "a b\tc"
    assert len(junk.headers["x-request-id"]) == 32
    run = client.post(
        "/pipeline/run", json={"prompt": "Add a dashboard"}, headers={"X-Request-ID": "run-42"}
    ).json()
    assert run["request_id"] == "run-42"
    proof = client.get(f"/audit/proof/{run['audit_index']}").json()
    public = load_pem_public_key(proof.pop("public_key_pem").encode())
    assert json.loads(verify_proof_bundle(proof, public))["request_id"] == "run-42"
    problem = client.get("/audit/proof/999999", headers={"X-Request-ID": "p-1"})
    assert problem.json()["request_id"] == "p-1"


def test_anonymous_evaluations_cannot_raise_governed_alert_metrics(client: httpx.Client) -> None:
    def sample(text: str, name: str) -> float:
        lines = [line for line in text.splitlines() if line.startswith(name + " ")]
        return float(lines[0].split()[1]) if lines else 0.0

    before = client.get("/metrics").text
    low = {"alignment_score": 0.05, "epistemic_risk": 0.95, "confidence_band": 0.9}
    for _ in range(30):
        assert client.post("/trust/evaluate", json=low).status_code == 200
    after = client.get("/metrics").text
    name = "trust_gate_floor_violations_total"
    assert sample(after, name) == sample(before, name)
    adhoc = 'resontinex_adhoc_trust_evaluations_total{decision="abort"}'
    assert sample(after, adhoc) >= sample(before, adhoc) + 30


def test_http_pipeline_and_process_metrics(client: httpx.Client) -> None:
    client.post("/pipeline/run", json={"prompt": "Rotate the logs"})
    text = client.get("/metrics").text
    assert (
        'resontinex_http_requests_total{method="POST",route="/pipeline/run",status="200"}' in text
    )
    assert 'resontinex_http_request_duration_seconds_bucket{le="0.001",method="GET"' in text
    assert "resontinex_pipeline_decisions_total{decision=" in text
    assert "resontinex_audit_log_entries " in text
    assert "process_cpu_seconds_total" in text
    assert 'route="unmatched"' not in text or "/no/such/path" not in text
    client.get("/no/such/path")
    assert "/no/such/path" not in client.get("/metrics").text


def test_metrics_pass_promtool(client: httpx.Client, tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is missing: `make lint` installs Debian's prometheus package")
    checked = subprocess.run(
        [promtool, "check", "metrics"],
        input=client.get("/metrics").text,
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_health_is_the_worst_component_status() -> None:
    assert worst_status(["healthy", "ok", "degraded"]) == "degraded"
    assert worst_status(["healthy", "critical", "unhealthy"]) == "critical"
    assert worst_status(["healthy", "something new"]) == "unhealthy"
    assert worst_status([]) == "healthy"


def test_probes_answer_head(client: httpx.Client) -> None:
    for path in ("/health", "/health/live", "/health/ready"):
        assert client.head(path).status_code == 200


def test_batch_evaluation_matches_single_evaluations(client: httpx.Client) -> None:
    rows = [(0.9, 0.1, 0.1), (0.5, 0.5, 0.5), (0.05, 0.95, 0.1)]
    batch = client.post(
        "/trust/evaluate/batch",
        json={"rows": rows},
    ).json()
    for i, (a, r, c) in enumerate(rows):
        one = client.post(
            "/trust/evaluate",
            json={"alignment_score": a, "epistemic_risk": r, "confidence_band": c},
        ).json()
        assert batch["trust_score"][i] == pytest.approx(one["aggregation"]["trust_score"], abs=1e-9)
        assert batch["decision"][i] == one["risk_assessment"]["decision"]
    too_many = {"rows": [[0.5, 0.5, 0.5]] * 10_001}
    assert client.post("/trust/evaluate/batch", json=too_many).status_code in {413, 422}


def test_the_server_listens_while_the_pipeline_builds(model_dir: Path, tmp_path: Path) -> None:
    release = threading.Event()
    build = pipeline_factory(model_dir, tmp_path, drift=False)

    def slow(registry: CollectorRegistry) -> GovernedPipeline:
        release.wait(60)
        return build(registry)

    app = create_app(ServiceSettings(state_dir=tmp_path), pipeline_factory=slow)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.02)
        url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
        starting = httpx.get(f"{url}/health/ready")
        assert starting.status_code == 503
        assert "starting" in starting.json()["reason"]
        assert httpx.get(f"{url}/health/live").status_code == 200
        assert httpx.post(f"{url}/trust/evaluate", json=SIGNALS).status_code == 503
        release.set()
        deadline = time.monotonic() + 120
        while httpx.get(f"{url}/health/ready").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        release.set()
        server.should_exit = True
        thread.join(timeout=30)


def test_schemathesis_finds_no_contract_violation(service: str, tmp_path: Path) -> None:
    """schemathesis (all checks, examples, coverage and fuzzing phases) on every route of the live server, with and
    without the token: every response matches the OpenAPI schema, no 5xx, no undocumented status."""
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    assert st is not None, "schemathesis is a test dependency of the umbrella"
    for headers in ([], ["-H", f"Authorization: Bearer {TOKEN}"]):
        done = subprocess.run(
            [
                st,
                "run",
                f"{service}/openapi.json",
                "--checks",
                "all",
                "--phases",
                "examples,coverage,fuzzing",
                "--max-examples",
                "25",
                "--seed",
                "7",
                "--request-timeout",
                "60",
                *headers,
            ],
            capture_output=True,
            text=True,
            timeout=900,
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]


def test_drift_acknowledge_needs_the_token_and_clears_the_latch(client: httpx.Client) -> None:
    assert client.post("/hbt/drift/acknowledge").status_code == 401
    response = client.post("/hbt/drift/acknowledge", headers=AUTH)
    assert response.status_code == 200
    assert response.json()["flagged"] is False
