"""The RESONTINEX HTTP service (FastAPI, the umbrella's ``server`` extra): ``resontinex serve``.

Each worker process has one Prometheus registry that every member writes to and one governed
pipeline, built in the background so the server listens at once and ``/health/ready`` answers 503 with a reason
until the pipeline is ready. Every 4xx/5xx is a problem document (see ``problems``). Privileged
endpoints (break-glass, budget changes, model verification) and any spending past the review
threshold (``emergency``) need the bearer token from ``RESONTINEX_API_TOKEN``; with no token
configured they are refused, never open.

State lives in the state directory (SQLite) or, with ``RESONTINEX_DATABASE_URL``, in one
PostgreSQL database shared by every worker and replica (``resontinex.pipeline.state``). Under
``resontinex serve --workers N`` each worker builds this app with :func:`app_from_environment`,
and ``/metrics`` aggregates every worker through prometheus-client's multiprocess mode
(``PROMETHEUS_MULTIPROC_DIR``, see docs/operations.md).

This module deliberately has no ``from __future__ import annotations``: the request bodies of
the pipeline and route endpoints are built per app (their ``category`` enum comes from the
router), and FastAPI must see those classes, not strings naming them.
"""

import asyncio
import gc
import hmac
import logging
import os
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from fusion_ops.errors import FusionOpsError, StoreError
from fusion_ops.health import budget_status_payload, health_payload
from fusion_ops.runtime_router import RuntimeRouter
from hbt_core.errors import AuditStoreUnavailableError, HBTError
from resontinex.__about__ import __version__
from resontinex.pipeline import (
    GovernedPipeline,
    PipelineInputError,
    PipelineRequest,
    PipelineSettings,
    build_pipeline,
)
from resontinex.pipeline.errors import StateStoreError
from resontinex.pipeline.factory import PUBLIC_KEY_FILE
from resontinex.pipeline.state import BREAK_GLASS_FILE, DATABASE_URL_ENV
from resontinex.service.bodies import (
    Body,
    BudgetPeriodBody,
    ScoreBody,
    TrustBatch,
    TrustSignals,
    break_glass_body,
    routed_bodies,
)
from resontinex.service.observability import FastAnswer, ServiceMetrics, ServiceMiddleware
from resontinex.service.problems import (
    FieldProblem,
    Problem,
    ProblemError,
    documented,
    field_problems,
    problem_response,
    scrub,
    submitted_strings,
)
from resontinex.trust import (
    CompositeTrustGate,
    InputVector,
    TrustError,
    TrustMonitor,
    TrustStoreError,
    UnauthorizedOverrideError,
    evaluate_batch,
    explain_schema,
)

MAX_BODY_BYTES = 1024 * 1024  # a full batch (10,000 rows at full float precision) fits
TOKEN_ENV = "RESONTINEX_API_TOKEN"
OPERATORS_ENV = "RESONTINEX_BREAK_GLASS_OPERATORS"
# what `resontinex serve` hands its workers (uvicorn starts each one from an import string)
STATE_DIR_ENV = "RESONTINEX_STATE_DIR"
MODEL_DIR_ENV = "RESONTINEX_MODEL_DIR"
LOG_LEVEL_ENV = "RESONTINEX_LOG_LEVEL"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
BEARER = HTTPBearer(auto_error=False)
# Worst first: the health of the service is the worst health of any component. A status this
# list does not know counts as "unhealthy" (fail closed).
SEVERITY = ("critical", "unhealthy", "degraded", "healthy")
log = logging.getLogger("resontinex.service")
# The members' errors for a state store that fails mid-request, with the name a problem gives
# it: 503 and Retry-After from one exception handler of the app, never a 500 or an unrecorded
# decision.
STORES: dict[type[Exception], str] = {
    AuditStoreUnavailableError: "the audit log",
    StoreError: "the budget ledger",
    TrustStoreError: "the break-glass chain",
    StateStoreError: "the drift latch",
}
STORE_OUTAGES: tuple[type[Exception], ...] = tuple(STORES)


def store_outage(exc: Exception) -> ProblemError:
    """503 with Retry-After for a state store that failed mid-request, logged with its cause."""
    what = next(name for kind, name in STORES.items() if isinstance(exc, kind))
    log.error("%s is unavailable", what, exc_info=exc)
    return ProblemError(
        503, f"{what} is unavailable: {type(exc).__name__}", headers={"Retry-After": "5"}
    )


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
    # default: PipelineSettings(state_dir), its stores at $RESONTINEX_DATABASE_URL if set
    pipeline: PipelineSettings | None = None

    def pipeline_settings(self) -> PipelineSettings:
        return self.pipeline or PipelineSettings(
            state_dir=self.state_dir, database_url=os.environ.get(DATABASE_URL_ENV) or None
        )


ALIASES = {"ok": "healthy"}  # fusion-ops says "ok" where the others say "healthy"


def worst_status(statuses: list[str]) -> str:
    """The most severe status; one no member should report counts as unhealthy."""
    named = [ALIASES.get(s, s) for s in statuses]
    known = [s if s in SEVERITY else "unhealthy" for s in named]
    return min(known, key=SEVERITY.index, default="healthy")


class _Pipeline:
    """The pipeline being built in the background, then built (or failed, with the reason)."""

    def __init__(self) -> None:
        self.pipeline: GovernedPipeline | None = None
        self.failure: str | None = None
        self.task: asyncio.Task[None] | None = None

    def get(self) -> GovernedPipeline:
        if self.pipeline is None:
            raise ProblemError(503, self.reason(), headers={"Retry-After": "5"})
        return self.pipeline

    def reason(self) -> str:
        if self.failure is not None:
            return f"the pipeline failed to build: {self.failure}"
        return "the pipeline is starting (the local model is loaded, or trained on first start)"


def create_app(
    settings: ServiceSettings,
    *,
    registry: CollectorRegistry | None = None,
    pipeline_factory: Callable[[CollectorRegistry], GovernedPipeline] | None = None,
) -> FastAPI:
    """The service. ``pipeline_factory`` builds the pipeline at startup (tests pass their own)."""
    registry = registry or CollectorRegistry()
    metrics = ServiceMetrics(registry)
    pipeline_settings = settings.pipeline_settings()
    shared_metrics = os.environ.get(MULTIPROC_ENV)  # several workers: aggregate their files
    factory = pipeline_factory or (lambda reg: build_pipeline(pipeline_settings, registry=reg))
    built = _Pipeline()
    PipelineBody, RouteBody = routed_bodies(RuntimeRouter().categories)
    trust_config = TrustMonitor(config_path=pipeline_settings.trust_config_path).config
    BreakGlassBody = break_glass_body(trust_config.break_glass.max_ttl_seconds)

    async def build() -> None:
        try:
            built.pipeline = await asyncio.to_thread(factory, registry)
        except Exception as exc:  # reported by /health/ready; the process stays up to say so
            built.failure = type(exc).__name__
            log.exception("the pipeline failed to build")
            return
        # The model and libraries leave ~450k long-lived objects that every full collection
        # would scan again; frozen, a 10,000-row batch request took 13 ms instead of 35-50 ms.
        gc.collect()
        gc.freeze()
        metrics.ready.set(1)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        built.task = asyncio.create_task(build())
        yield
        built.task.cancel()
        await asyncio.gather(built.task, return_exceptions=True)
        if built.pipeline is not None:
            built.pipeline.close()
        if shared_metrics:
            multiprocess.mark_process_dead(os.getpid())  # drop this worker's live gauges

    app = FastAPI(
        title="RESONTINEX",
        version=__version__,
        lifespan=lifespan,
        responses=documented(413, 503),
    )

    # The two ungoverned calculation endpoints: anonymous callers reach them, so they are
    # counted apart (``resontinex_adhoc_*``) from the pipeline's governed decisions, which the
    # alert rules watch. Each answer is the response body; TrustError is a refusal.

    def adhoc_explanation(signals: TrustSignals) -> bytes:
        """What the gate would decide for one set of signals, with its full explanation."""
        monitor = built.get().trust
        gate = CompositeTrustGate(
            InputVector(signals.alignment_score, signals.epistemic_risk, signals.confidence_band),
            monitor.config,
            monitor.calibrator,
        )
        metrics.adhoc.labels(gate.decision.value).inc()
        return orjson.dumps(gate.explain())

    def adhoc_batch(batch: TrustBatch) -> bytes:
        """Every row through the vectorised gate, as columns."""
        monitor = built.get().trust
        aligned, risk, band = zip(*batch.rows, strict=True)
        result = evaluate_batch(aligned, risk, band, monitor.config, monitor.calibrator)
        decisions = result.decisions
        for decision, count in Counter(decisions).items():
            metrics.adhoc.labels(decision.value).inc(count)
        columns = {
            "trust_score": result.trust_scores,
            "tier": result.tiers,
            "decision": decisions,
            "rule_fired": result.rules,
        }
        return orjson.dumps(columns, option=orjson.OPT_SERIALIZE_NUMPY)

    def fast_path(body_model: type[Body], answer: Callable[[Any], bytes]) -> FastAnswer:
        """The answer to a valid body once the pipeline is ready; ``None`` for anything else,
        which the framework's route then answers (with its problem document)."""

        def fast(body: bytes) -> bytes | None:
            if built.pipeline is None:
                return None
            try:
                return answer(body_model.model_validate_json(body))
            except (ValidationError, TrustError):
                return None

        return fast

    app.add_middleware(
        ServiceMiddleware,
        metrics=metrics,
        max_body_bytes=MAX_BODY_BYTES,
        fast_json_posts={
            "/trust/evaluate": fast_path(TrustSignals, adhoc_explanation),
            "/trust/evaluate/batch": fast_path(TrustBatch, adhoc_batch),
        },
    )

    def request_id(request: Request) -> str | None:
        return getattr(request.state, "request_id", None)

    # ------------------------------------------------------------ errors: one model

    @app.exception_handler(ProblemError)
    async def service_problem(request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(
            exc.status,
            exc.detail,
            request_id=request_id(request),
            errors=exc.errors,
            headers=exc.headers,
        )

    async def unavailable_store(request: Request, exc: Exception) -> JSONResponse:
        """Any route whose store fails mid-request (a read of the ledger for a status page as
        much as an admission): the same 503 as every other store outage."""
        return await service_problem(request, store_outage(exc))

    for outage in STORE_OUTAGES:
        app.add_exception_handler(outage, unavailable_store)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = field_problems(exc.errors())
        if any(e.rule in {"json_invalid", "model_attributes_type"} for e in errors) or any(
            e.field == "body" and e.rule == "dict_type" for e in errors
        ):
            return problem_response(
                400,
                "the body must be a JSON object",
                request_id=request_id(request),
                errors=errors,
            )
        return problem_response(
            422, "the request broke a rule", request_id=request_id(request), errors=errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = {404: "no such resource", 405: "method not allowed"}.get(
            exc.status_code, "request refused"
        )
        return problem_response(
            exc.status_code, detail, request_id=request_id(request), headers=exc.headers
        )

    def rejected(exc: Exception, body: Any, field_name: str = "body") -> ProblemError:
        """A member refused the request: 422 naming the error type, its text scrubbed of values."""
        message = scrub(str(exc), submitted_strings(body.model_dump()))
        problem = FieldProblem(field=field_name, rule=type(exc).__name__, message=message)
        return ProblemError(422, f"refused: {type(exc).__name__}", errors=[problem])

    def bearer_ok(credentials: HTTPAuthorizationCredentials | None) -> bool:
        if settings.api_token is None or credentials is None:
            return False
        return hmac.compare_digest(credentials.credentials.encode(), settings.api_token.encode())

    def privileged(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    ) -> None:
        if settings.api_token is None:
            raise ProblemError(403, f"privileged endpoints are disabled: set {TOKEN_ENV}")
        if not bearer_ok(credentials):
            raise ProblemError(
                401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"}
            )

    # ------------------------------------------------------------ health and metrics

    def audit_health(p: GovernedPipeline) -> dict[str, Any]:
        try:
            return {"status": "healthy", "entries": p.audit_log.size}
        except HBTError as exc:  # the store is unreachable: say so, never a 500
            return {"status": "unhealthy", "reason": type(exc).__name__}

    def fusion_component(p: GovernedPipeline) -> dict[str, Any]:
        try:
            return health_payload(governor=p.governor, router=p.router)
        except StoreError as exc:  # the ledger is unreachable: say so, never a 500
            return {"status": "unhealthy", "reason": type(exc).__name__}

    def health_report() -> dict[str, Any]:
        p = built.pipeline
        if p is None:
            return {
                "status": "unhealthy",
                "ready": False,
                "reason": built.reason(),
                "components": {},
            }
        components = {
            "trust": p.trust.get_health_status(),
            "fusion": fusion_component(p),
            "audit": audit_health(p),
        }
        if p.drift is not None:
            drift = p.drift.status()
            components["drift"] = {"status": "degraded" if drift["flagged"] else "healthy", **drift}
        status = worst_status([str(c.get("status", "unknown")) for c in components.values()])
        return {"status": status, "ready": True, "version": __version__, "components": components}

    def probe(path: str, handler: Callable[[], Any], **options: Any) -> None:
        """GET and HEAD (load balancers and kubelets use either) as two documented operations."""
        for method in ("GET", "HEAD"):
            app.add_api_route(
                path,
                handler,
                methods=[method],
                operation_id=f"{handler.__name__}_{method.lower()}",
                **options,
            )

    def health() -> JSONResponse:
        """The worst status of any component; 503 when unhealthy or critical."""
        report = health_report()
        failing = report["status"] in {"unhealthy", "critical"}
        return JSONResponse(report, status_code=503 if failing else 200)

    def live() -> dict[str, str]:
        return {"status": "alive"}

    def ready() -> JSONResponse:
        if built.pipeline is None:
            return JSONResponse({"ready": False, "reason": built.reason()}, status_code=503)
        return JSONResponse({"ready": True})

    probe("/health", health, responses=documented(503))
    probe("/health/live", live)
    probe("/health/ready", ready, responses=documented(503))

    @app.get(
        "/metrics",
        response_class=PlainTextResponse,
        responses={
            200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}}
        },
    )
    def prometheus_metrics() -> PlainTextResponse:
        """Prometheus text exposition (not JSON); under several workers, all of them summed."""
        if built.pipeline is not None:
            audit = audit_health(built.pipeline)
            if "entries" in audit:
                metrics.audit_entries.set(audit["entries"])
        exposed = registry
        if shared_metrics:
            exposed = CollectorRegistry()
            multiprocess.MultiProcessCollector(exposed, path=shared_metrics)
        return PlainTextResponse(generate_latest(exposed), media_type=CONTENT_TYPE_LATEST)

    # ------------------------------------------------------------ trust

    explanation = {k: v for k, v in explain_schema().items() if not k.startswith("$")}

    @app.post(
        "/trust/evaluate",
        responses={
            200: {"content": {"application/json": {"schema": explanation}}},
            **documented(400, 422),
        },
    )
    async def trust_evaluate(body: TrustSignals) -> Response:
        """What the gate would decide: a calculation, not a governed decision (counted apart).

        A valid JSON body is answered by the middleware's fast path before the router; this
        route is the schema, every error and the same answer for any request passed on.
        """
        try:
            return Response(adhoc_explanation(body), media_type="application/json")
        except TrustError as exc:
            raise rejected(exc, body) from None

    column = {"type": "array", "items": {"type": "string"}}
    batch_result = {
        "type": "object",
        "required": ["trust_score", "tier", "decision", "rule_fired"],
        "properties": {
            "trust_score": {"type": "array", "items": {"type": "number"}},
            "tier": column,
            "decision": column,
            "rule_fired": column,
        },
    }

    @app.post(
        "/trust/evaluate/batch",
        responses={
            200: {"content": {"application/json": {"schema": batch_result}}},
            **documented(400, 422),
        },
    )
    async def trust_evaluate_batch(body: TrustBatch) -> Response:
        """Many rows in one vectorised pass (at most 10,000); ungoverned, like /trust/evaluate."""
        try:
            return Response(adhoc_batch(body), media_type="application/json")
        except TrustError as exc:
            raise rejected(exc, body) from None

    @app.post(
        "/trust/break-glass",
        dependencies=[Depends(privileged)],
        responses=documented(400, 401, 403, 422),
    )
    def trust_break_glass(body: BreakGlassBody) -> dict[str, Any]:  # type: ignore[valid-type]
        p = built.get()
        given = body.model_dump()  # type: ignore[attr-defined]
        gate = p.trust.evaluate(
            given["alignment_score"], given["epistemic_risk"], given["confidence_band"]
        )
        try:
            record = p.trust.break_glass_override(
                gate,
                given["override_reason"],
                given["operator_id"],
                authorizer=settings.break_glass_operators,
                ttl_seconds=given["ttl_seconds"],
                audit_log=pipeline_settings.stores.target(BREAK_GLASS_FILE),
            )
        except UnauthorizedOverrideError:
            raise ProblemError(
                403,
                "this operator is not authorised for break-glass",
                errors=[
                    FieldProblem(
                        field="body.operator_id",
                        rule="authorised_operator",
                        message="not in the authorised operators",
                    )
                ],
            ) from None
        except TrustStoreError:  # never granted unrecorded: 503 from the outage handler
            raise
        except TrustError as exc:
            raise rejected(exc, body) from None
        return record.as_dict()

    # ------------------------------------------------------------ pipeline

    @app.post(
        "/pipeline/run",
        responses=documented(400, 401, 403, 422),
        # the token is optional: anonymous requests are ordinary, emergency ones need it
        openapi_extra={"security": [{}, {"HTTPBearer": []}]},
    )
    async def pipeline_run(
        request: Request,
        body: PipelineBody,  # type: ignore[valid-type]
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    ) -> dict[str, Any]:
        """One governed decision. ``emergency`` (admission past the review threshold) counts only
        with an ``approver``, which needs the bearer token and a listed operator and is recorded
        in the audit record; without one the request is ordinary."""
        fields = body.model_dump()  # type: ignore[attr-defined]
        if fields["approver"] is not None:
            if not bearer_ok(credentials):
                raise ProblemError(
                    401,
                    "an approver needs a valid bearer token",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            if fields["approver"] not in settings.break_glass_operators:
                raise ProblemError(
                    403,
                    f"the approver is not one of the operators in {OPERATORS_ENV}",
                    errors=[
                        FieldProblem(
                            field="body.approver",
                            rule="authorised_operator",
                            message="not an authorised operator",
                        )
                    ],
                )
        p = built.get()
        try:
            run = PipelineRequest(**fields, request_id=request_id(request) or "")
            result = await p.run(run)
        except PipelineInputError as exc:
            raise rejected(exc, body) from None
        # a store outage (nothing acknowledged that was not recorded) is the handler's 503
        metrics.decisions.labels(result.decision).inc()
        if result.reason.startswith("backend error"):
            metrics.backend_errors.inc()
        return result.to_dict()

    @app.get("/pipeline/limits")
    def pipeline_limits() -> dict[str, Any]:
        """What a prompt must fit: the model's context, the overlay's share, max_new_tokens."""
        return built.get().limits()

    # ------------------------------------------------------------ fusion

    @app.get("/fusion/health")
    def fusion_health() -> dict[str, Any]:
        p = built.get()
        return health_payload(governor=p.governor, router=p.router)

    @app.get("/fusion/budget/status")
    def fusion_budget_status() -> dict[str, Any]:
        return budget_status_payload(built.get().governor)

    @app.post(
        "/fusion/budget/period",
        dependencies=[Depends(privileged)],
        responses=documented(400, 401, 403, 422),
    )
    def fusion_budget_period(body: BudgetPeriodBody) -> dict[str, Any]:
        p = built.get()
        try:
            p.governor.start_period(body.period, body.budget)
        except StoreError:  # 503 from the outage handler, not a refusal of the body
            raise
        except FusionOpsError as exc:
            raise rejected(exc, body) from None
        return budget_status_payload(p.governor)

    @app.post("/fusion/route", responses=documented(400, 422))
    def fusion_route(body: RouteBody) -> dict[str, Any]:  # type: ignore[valid-type]
        try:
            return built.get().router.route_scenario(body.model_dump()).to_dict()  # type: ignore[attr-defined]
        except FusionOpsError as exc:
            raise rejected(exc, body) from None

    # ------------------------------------------------------------ cert and hbt

    @app.post("/cert/trajectory/score", responses=documented(400, 422))
    async def trajectory_score(body: ScoreBody) -> dict[str, Any]:
        try:
            result = await built.get().backend.local.score(body.prompt, body.response)
        except ValueError as exc:
            raise rejected(exc, body) from None
        return result.to_dict()

    @app.post(
        "/hbt/verify", dependencies=[Depends(privileged)], responses=documented(401, 403, 409)
    )
    async def hbt_verify() -> dict[str, Any]:
        p = built.get()
        if p.drift is None:
            raise ProblemError(409, "behavioural fingerprinting is disabled in this deployment")
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

    @app.post(
        "/hbt/drift/acknowledge",
        dependencies=[Depends(privileged)],
        responses=documented(401, 403, 409, 503),
    )
    def hbt_drift_acknowledge() -> dict[str, Any]:
        """Clear the drift alarm latch after re-baselining (for every worker and replica that
        shares the state); the latch survives restarts, so this is the only way to clear it."""
        p = built.get()
        if p.drift is None:
            raise ProblemError(409, "behavioural fingerprinting is disabled in this deployment")
        p.drift.acknowledge()  # a latch store outage: 503 from the outage handler
        log.warning("drift alarm acknowledged by an operator")
        return p.drift.status()

    @app.get("/audit/proof/{index}", responses=documented(404, 422))
    def audit_proof(index: int) -> dict[str, Any]:
        log = built.get().audit_log
        if not 0 <= index < log.size:
            raise ProblemError(404, "no audit record at this index")
        try:
            bundle = log.proof_bundle(index)
        except AuditStoreUnavailableError:  # 503 from the outage handler, not a refusal
            raise
        except HBTError as exc:
            raise ProblemError(422, f"refused: {type(exc).__name__}") from None
        public = pipeline_settings.state_dir / PUBLIC_KEY_FILE
        return {**bundle, "public_key_pem": public.read_text() if public.exists() else None}

    _register_problem_schema(app)
    return app


def app_from_environment() -> FastAPI:
    """The app of one ``resontinex serve`` worker, configured by the environment the command set
    (``RESONTINEX_STATE_DIR``, ``RESONTINEX_MODEL_DIR``, ``RESONTINEX_DATABASE_URL``, ...)."""
    from cert.runtime.logging import configure_logging

    # One JSON line per record, each with the request's id (X-Request-ID) as correlation_id.
    configure_logging(os.environ.get(LOG_LEVEL_ENV, "INFO"), "json", logger="")
    state_dir = Path(os.environ[STATE_DIR_ENV])
    model_dir = os.environ.get(MODEL_DIR_ENV)
    pipeline = PipelineSettings(
        state_dir=state_dir,
        model_dir=Path(model_dir) if model_dir else None,
        database_url=os.environ.get(DATABASE_URL_ENV) or None,
    )
    return create_app(ServiceSettings(state_dir=state_dir, pipeline=pipeline))


def _register_problem_schema(app: FastAPI) -> None:
    """Put ``Problem`` in components/schemas, where every documented error response points."""
    build_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build_openapi()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(
                Problem.model_json_schema(ref_template="#/components/schemas/{model}")["$defs"]
            )
            components["Problem"] = {
                k: v
                for k, v in Problem.model_json_schema(
                    ref_template="#/components/schemas/{model}"
                ).items()
                if k != "$defs"
            }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
