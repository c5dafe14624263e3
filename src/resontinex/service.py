"""The RESONTINEX HTTP service (FastAPI, the umbrella's `server` extra): `resontinex serve`.

One process, one Prometheus registry that every member writes to, one governed pipeline.
Mutating and privileged endpoints (break-glass, budget changes, model verification) require the
bearer token from ``RESONTINEX_API_TOKEN``; with no token configured they are disabled (403),
never open. Bodies are validated (422 with field errors that never echo the submitted values,
so a secret pasted into the wrong field does not come back) and limited in size (413).
"""

from __future__ import annotations

import asyncio
import hmac
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import BaseModel, ConfigDict, Field

from fusion_ops.errors import FusionOpsError
from fusion_ops.health import budget_status_payload, health_payload
from hbt_core.errors import HBTError
from resontinex.__about__ import __version__
from resontinex.pipeline import (
    GovernedPipeline,
    PipelineInputError,
    PipelineRequest,
    PipelineSettings,
    build_pipeline,
)
from resontinex.pipeline.factory import PUBLIC_KEY_FILE
from resontinex.trust import TrustError, UnauthorizedOverrideError

MAX_BODY_BYTES = 64 * 1024
TOKEN_ENV = "RESONTINEX_API_TOKEN"
OPERATORS_ENV = "RESONTINEX_BREAK_GLASS_OPERATORS"
# Module level: FastAPI resolves the string annotations of dependencies in this module's globals.
BEARER = HTTPBearer(auto_error=False)


@dataclass
class ServiceSettings:
    """Where state lives and who may do privileged things (read from the environment by default)."""

    state_dir: Path
    api_token: str | None = field(default_factory=lambda: os.environ.get(TOKEN_ENV) or None)
    break_glass_operators: tuple[str, ...] = field(
        default_factory=lambda: tuple(
            o.strip() for o in os.environ.get(OPERATORS_ENV, "").split(",") if o.strip()
        )
    )
    pipeline: PipelineSettings | None = None  # default: PipelineSettings(state_dir)


# ---------------------------------------------------------------- request bodies


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TrustSignals(_Body):
    alignment_score: float = Field(ge=0, le=1, allow_inf_nan=False)
    epistemic_risk: float = Field(ge=0, le=1, allow_inf_nan=False)
    confidence_band: float = Field(ge=0, le=1, allow_inf_nan=False)


class BreakGlassBody(TrustSignals):
    override_reason: str = Field(min_length=1, max_length=2000)
    operator_id: str = Field(min_length=1, max_length=200)
    ttl_seconds: float | None = Field(default=None, gt=0, allow_inf_nan=False)


class PipelineBody(_Body):
    # Characters only bound the body; what must fit is the overlaid prompt in the model's
    # tokens, which GET /pipeline/limits states and the pipeline checks (422 naming the limit).
    prompt: str = Field(min_length=1, max_length=20_000)
    category: str = Field(default="service_management", max_length=100)
    complexity: float = Field(default=0.5, ge=0, le=1, allow_inf_nan=False)
    max_new_tokens: int = Field(default=48, ge=1, le=512)
    emergency: bool = False
    # an approver makes emergency work count; it needs the bearer token and a listed operator
    approver: str | None = Field(default=None, min_length=1, max_length=200)


class RouteBody(_Body):
    category: str = Field(max_length=100)
    complexity: float = Field(ge=0, le=1, allow_inf_nan=False)
    description: str = Field(default="", max_length=20_000)


class ScoreBody(_Body):
    prompt: str = Field(min_length=1, max_length=10_000)
    response: str = Field(min_length=1, max_length=10_000)


class BudgetPeriodBody(_Body):
    period: str = Field(min_length=1, max_length=200)
    budget: float | None = Field(default=None, gt=0, allow_inf_nan=False)


# ---------------------------------------------------------------- the app


def create_app(
    settings: ServiceSettings,
    *,
    registry: CollectorRegistry | None = None,
    pipeline_factory: Callable[[CollectorRegistry], GovernedPipeline] | None = None,
) -> FastAPI:
    """The service. ``pipeline_factory`` builds the pipeline at startup (tests pass their own)."""
    registry = registry or CollectorRegistry()
    pipeline_settings = settings.pipeline or PipelineSettings(state_dir=settings.state_dir)
    factory = pipeline_factory or (lambda reg: build_pipeline(pipeline_settings, registry=reg))
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state["pipeline"] = factory(registry)
        yield
        state["pipeline"].close()

    app = FastAPI(title="RESONTINEX", version=__version__, lifespan=lifespan)

    def pipeline() -> GovernedPipeline:
        if "pipeline" not in state:
            raise HTTPException(503, "the pipeline is still starting")
        return state["pipeline"]

    def privileged(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    ) -> None:
        check_token(credentials)

    def check_token(credentials: HTTPAuthorizationCredentials | None) -> None:
        if settings.api_token is None:
            raise HTTPException(403, f"privileged endpoints are disabled: set {TOKEN_ENV}")
        given = "" if credentials is None else credentials.credentials
        if not hmac.compare_digest(given.encode(), settings.api_token.encode()):
            raise HTTPException(
                401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"}
            )

    @app.middleware("http")
    async def limit_body(request: Request, call_next: Callable[[Request], Any]) -> Any:
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
            return JSONResponse(
                {"detail": f"request body over {MAX_BODY_BYTES} bytes"}, status_code=413
            )
        if (
            request.method in {"POST", "PUT", "PATCH"}
            and len(await request.body()) > MAX_BODY_BYTES
        ):
            return JSONResponse(
                {"detail": f"request body over {MAX_BODY_BYTES} bytes"}, status_code=413
            )
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    def reject(exc: Exception) -> HTTPException:
        return HTTPException(422, f"{type(exc).__name__}: {exc}")

    # ------------------------------------------------------------ health and metrics

    def health_report() -> dict[str, Any]:
        p = state.get("pipeline")
        if p is None:
            return {"status": "unhealthy", "ready": False, "components": {}}
        components = {
            "trust": p.trust.get_health_status(),
            "fusion": health_payload(governor=p.governor, router=p.router),
            "audit": {"status": "healthy", "entries": p.audit_log.size},
        }
        if p.drift is not None:
            drift = p.drift.status()
            components["drift"] = {"status": "degraded" if drift["flagged"] else "healthy", **drift}
        statuses = [str(c.get("status", "healthy")) for c in components.values()]
        worst = next((s for s in ("unhealthy", "degraded") if s in statuses), "healthy")
        return {"status": worst, "ready": True, "version": __version__, "components": components}

    @app.get("/health")
    def health() -> JSONResponse:
        report = health_report()
        return JSONResponse(report, status_code=503 if report["status"] == "unhealthy" else 200)

    @app.get("/health/live")
    def live() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/health/ready")
    def ready() -> JSONResponse:
        is_ready = "pipeline" in state
        return JSONResponse({"ready": is_ready}, status_code=200 if is_ready else 503)

    @app.get("/metrics")
    def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    # ------------------------------------------------------------ trust

    @app.post("/trust/evaluate")
    def trust_evaluate(body: TrustSignals) -> dict[str, Any]:
        gate = pipeline().trust.evaluate(
            body.alignment_score, body.epistemic_risk, body.confidence_band
        )
        return gate.explain()

    @app.post("/trust/break-glass", dependencies=[Depends(privileged)])
    def trust_break_glass(body: BreakGlassBody) -> dict[str, Any]:
        p = pipeline()
        gate = p.trust.evaluate(body.alignment_score, body.epistemic_risk, body.confidence_band)
        try:
            record = p.trust.break_glass_override(
                gate,
                body.override_reason,
                body.operator_id,
                authorizer=settings.break_glass_operators,
                ttl_seconds=body.ttl_seconds,
                audit_log=settings.state_dir / "break-glass-audit.jsonl",
            )
        except UnauthorizedOverrideError as exc:
            raise HTTPException(403, str(exc)) from None
        except TrustError as exc:
            raise reject(exc) from None
        return record.as_dict()

    # ------------------------------------------------------------ pipeline

    @app.post("/pipeline/run")
    async def pipeline_run(
        body: PipelineBody,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    ) -> dict[str, Any]:
        if body.approver is not None:  # an approver lifts the review threshold: privileged
            check_token(credentials)
            if body.approver not in settings.break_glass_operators:
                raise HTTPException(403, f"approver is not in {OPERATORS_ENV}")
        try:
            request = PipelineRequest(**body.model_dump())
            result = await pipeline().run(request)
        except PipelineInputError as exc:
            raise reject(exc) from None
        return result.to_dict()

    @app.get("/pipeline/limits")
    def pipeline_limits() -> dict[str, Any]:
        return pipeline().limits()

    # ------------------------------------------------------------ fusion

    @app.get("/fusion/health")
    def fusion_health() -> dict[str, Any]:
        p = pipeline()
        return health_payload(governor=p.governor, router=p.router)

    @app.get("/fusion/budget/status")
    def fusion_budget_status() -> dict[str, Any]:
        return budget_status_payload(pipeline().governor)

    @app.post("/fusion/budget/period", dependencies=[Depends(privileged)])
    def fusion_budget_period(body: BudgetPeriodBody) -> dict[str, Any]:
        p = pipeline()
        try:
            p.governor.start_period(body.period, body.budget)
        except FusionOpsError as exc:
            raise reject(exc) from None
        return budget_status_payload(p.governor)

    @app.post("/fusion/route")
    def fusion_route(body: RouteBody) -> dict[str, Any]:
        try:
            return pipeline().router.route_scenario(body.model_dump()).to_dict()
        except FusionOpsError as exc:
            raise reject(exc) from None

    # ------------------------------------------------------------ cert and hbt

    @app.post("/cert/trajectory/score")
    async def trajectory_score(body: ScoreBody) -> dict[str, Any]:
        try:
            result = await pipeline().backend.local.score(body.prompt, body.response)
        except ValueError as exc:
            raise reject(exc) from None
        return result.to_dict()

    @app.post("/hbt/verify", dependencies=[Depends(privileged)])
    async def hbt_verify() -> dict[str, Any]:
        p = pipeline()
        if p.drift is None:
            raise HTTPException(409, "behavioural fingerprinting is disabled in this deployment")
        watch = p.drift
        result = await asyncio.to_thread(
            watch.hbt.verify_model, watch.reference, watch.served_model, watch.calibration
        )
        return {
            "same_model": result.same_model,
            "similarity": result.similarity,
            "threshold": watch.calibration.score_threshold,
            "sequential_decision": result.sequential.decision,
            "queries": result.sequential.queries,
        }

    @app.get("/audit/proof/{index}")
    def audit_proof(index: int) -> dict[str, Any]:
        log = pipeline().audit_log
        if not 0 <= index < log.size:
            raise HTTPException(404, f"index {index} is not in the audit log (size {log.size})")
        try:
            bundle = log.proof_bundle(index)
        except HBTError as exc:
            raise reject(exc) from None
        public = log.path.with_name(PUBLIC_KEY_FILE)
        return {**bundle, "public_key_pem": public.read_text() if public.exists() else None}

    return app
