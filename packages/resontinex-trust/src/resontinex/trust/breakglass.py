"""Break-glass: a time-limited, authorised, audited override of one gate decision to EXECUTE.

Nothing about the gate changes; the caller gets an immutable :class:`OverrideRecord` whose
``effective_decision()`` is EXECUTE until it expires. Grants and refusals are both appended to
the hash-chained :class:`AuditLog`; grants are logged at CRITICAL, refusals at ERROR and counted.
Without an audit log there is no break-glass: an unrecorded override is refused outright.

The audit chain is also where live overrides are kept: a grant's record carries its expiry
(``active_until``), and :func:`active_overrides` reads the grants still live from the chain.
With the chain in SQLite or PostgreSQL (:mod:`resontinex.trust.auditstore`) an override granted
by one process is seen by every other and survives ``kill -9`` and restarts; the record and the
override are one row, written in one transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from resontinex.trust.auditstore import AuditChain, open_audit_chain
from resontinex.trust.errors import AuditTamperError, BreakGlassError, UnauthorizedOverrideError
from resontinex.trust.logs import log_event
from resontinex.trust.signals import Decision

if TYPE_CHECKING:
    from resontinex.trust.composite_trust_gate import CompositeTrustGate
    from resontinex.trust.monitor import TrustMetrics

__all__ = ["Authorizer", "OverrideRecord", "active_overrides", "break_glass_override"]

Authorizer = Collection[str] | Callable[[str, str | None], bool]
"""An allow-list of operator ids, or ``callable(operator_id, operator_token) -> bool``."""

MAX_REASON_CHARS = 2000
MAX_OPERATOR_CHARS = 200
_logger = logging.getLogger("resontinex.trust.breakglass")


@dataclass(frozen=True, slots=True)
class OverrideRecord:
    """An authorised override: who, why, what it replaced, when it expires, its audit hash."""

    override_id: str
    operator_id: str
    override_reason: str
    original_decision: Decision
    granted_decision: Decision
    trust_score: float
    risk_tier: str
    config_hash: str
    issued_at: float
    expires_at: float
    audit_hash: str

    def is_active(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) < self.expires_at

    def effective_decision(self, now: float | None = None) -> Decision:
        """EXECUTE while the override is live, the gate's own decision after it expires."""
        return self.granted_decision if self.is_active(now) else self.original_decision

    @classmethod
    def from_audit(cls, record: dict[str, Any]) -> OverrideRecord:
        """The override a ``break_glass_granted`` record (with ``active_until``) describes."""
        try:
            return cls(
                override_id=str(record["override_id"]),
                operator_id=str(record["operator_id"]),
                override_reason=str(record["override_reason"]),
                original_decision=Decision(record["original_decision"]),
                granted_decision=Decision(record["granted_decision"]),
                trust_score=float(record["trust_score"]),
                risk_tier=str(record["risk_tier"]),
                config_hash=str(record["config_hash"]),
                issued_at=dt.datetime.fromisoformat(record["timestamp"]).timestamp(),
                expires_at=float(record["active_until"]),
                audit_hash=str(record["hash"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise AuditTamperError(
                f"audit record {record.get('seq')!r} is not a break-glass grant ({exc!r})"
            ) from None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["original_decision"] = self.original_decision.value
        data["granted_decision"] = self.granted_decision.value
        return data


def _text(field: str, value: object, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BreakGlassError(f"{field}: a non-empty string is required, got {value!r}")
    if len(value) > limit:
        raise BreakGlassError(f"{field}: longer than {limit} characters ({len(value)})")
    if any(ch in value for ch in "\r\n\x00"):
        raise BreakGlassError(f"{field}: control characters are not allowed, got {value!r}")
    return value.strip()


def _instant(now: object) -> float:
    """The clock's reading as a finite POSIX time: NaN would make an override never expire."""
    if isinstance(now, bool) or not isinstance(now, int | float) or not _finite(now):
        raise BreakGlassError(f"clock: expected a finite POSIX time, got {now!r}")
    return float(now)


def _finite(number: float) -> bool:
    """math.isfinite without its OverflowError for ints beyond the float range (10**400)."""
    try:
        return math.isfinite(number)
    except OverflowError:
        return False


def _iso(instant: float) -> str:
    try:
        return dt.datetime.fromtimestamp(instant, dt.timezone.utc).isoformat()
    except (OverflowError, OSError, ValueError):
        raise BreakGlassError(f"clock: {instant!r} is not a representable time") from None


def _is_authorised(authorizer: Authorizer, operator_id: str, token: str | None) -> bool:
    if callable(authorizer):
        try:
            return authorizer(operator_id, token) is True
        except Exception as exc:  # a failing authoriser refuses; it never grants
            log_event(_logger, logging.ERROR, "break_glass_authorizer_failed", error=repr(exc))
            return False
    if isinstance(authorizer, str):
        return operator_id == authorizer
    return operator_id in authorizer


def break_glass_override(
    gate: CompositeTrustGate,
    override_reason: str,
    operator_id: str,
    *,
    operator_token: str | None = None,
    authorizer: Authorizer | None = None,
    ttl_seconds: float | None = None,
    audit_log: AuditChain | str | os.PathLike[str] | None = None,
    metrics: TrustMetrics | None = None,
    clock: Callable[[], float] = time.time,
) -> OverrideRecord:
    """Grant an audited, expiring EXECUTE override for ``gate`` or raise.

    ``authorizer`` defaults to the config's ``break_glass.authorized_operators`` (empty by
    default, so nobody is authorised until someone is named); ``audit_log`` to its
    ``break_glass.audit_log_path``: an :class:`AuditLog`, a store of
    :mod:`resontinex.trust.auditstore`, a path (``.jsonl``: JSON lines; ``.db``/``.sqlite``:
    SQLite) or a ``postgresql://`` URL; a chain opened here is closed before returning.
    ``operator_token`` is passed to a callable authoriser and is
    never logged or stored. Raises :class:`UnauthorizedOverrideError` for a refused operator and
    :class:`BreakGlassError` for bad arguments or a missing audit log.
    """
    from resontinex.trust.composite_trust_gate import CompositeTrustGate

    if not isinstance(gate, CompositeTrustGate):
        raise BreakGlassError(f"gate: expected a CompositeTrustGate, got {type(gate).__name__}")
    reason = _text("override_reason", override_reason, MAX_REASON_CHARS)
    operator = _text("operator_id", operator_id, MAX_OPERATOR_CHARS)
    settings = gate.config.break_glass
    ttl = settings.ttl_seconds if ttl_seconds is None else ttl_seconds
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not _finite(ttl):
        raise BreakGlassError(f"ttl_seconds: expected a finite number, got {ttl!r}")
    if not 0 < ttl <= settings.max_ttl_seconds:
        raise BreakGlassError(
            f"ttl_seconds: must be in (0, {settings.max_ttl_seconds}] "
            f"(break_glass.max_ttl_seconds), got {ttl!r}"
        )
    log_path = audit_log if audit_log is not None else settings.audit_log_path
    if log_path is None:
        raise BreakGlassError(
            "audit_log: break-glass needs an audit log (argument or break_glass.audit_log_path)"
        )
    allowed = authorizer if authorizer is not None else settings.authorized_operators

    now = _instant(clock())
    expires_at = now + float(ttl)
    log = open_audit_chain(log_path)
    try:
        return _decide(
            gate, log, operator, reason, allowed, operator_token, metrics, now, expires_at
        )
    finally:
        if log is not log_path:
            log.close()


def _decide(
    gate: CompositeTrustGate,
    log: AuditChain,
    operator: str,
    reason: str,
    allowed: Authorizer,
    operator_token: str | None,
    metrics: TrustMetrics | None,
    now: float,
    expires_at: float,
) -> OverrideRecord:
    """Authorise, then append the refusal or the grant (with its expiry) to ``log``."""
    issued, expires = _iso(now), _iso(expires_at)
    context = {
        "operator_id": operator,
        "override_reason": reason,
        "original_decision": gate.decision.value,
        "trust_score": gate.trust_score,
        "risk_tier": gate.risk_tier.value,
        "config_hash": gate.config.config_hash,
        "timestamp": issued,
    }
    if not _is_authorised(allowed, operator, operator_token):
        log.append("break_glass_refused", context)
        if metrics is not None:
            metrics.break_glass.labels(outcome="refused").inc()
        log_event(_logger, logging.ERROR, "break_glass_refused", **context)
        raise UnauthorizedOverrideError(
            f"operator_id: {operator!r} is not authorised for break-glass"
        )

    override_id = uuid.uuid4().hex
    entry = log.append(
        "break_glass_granted",
        {
            **context,
            "override_id": override_id,
            "granted_decision": Decision.EXECUTE.value,
            "expires_at": expires,
        },
        active_until=expires_at,
    )
    if metrics is not None:
        metrics.break_glass.labels(outcome="granted").inc()
    log_event(
        _logger,
        logging.CRITICAL,
        "break_glass_granted",
        override_id=override_id,
        audit_hash=entry["hash"],
        **context,
    )
    return OverrideRecord.from_audit(entry)  # what every reader of the chain will see


def active_overrides(
    audit_log: AuditChain | str | os.PathLike[str], *, now: float | None = None
) -> list[OverrideRecord]:
    """The overrides still live at ``now`` (default: the current time), oldest first.

    Read from the audit chain, so with SQLite or PostgreSQL every process sees the grants of
    every other. A grant whose record does not match its hash raises
    :class:`~resontinex.trust.errors.AuditTamperError`: an edited grant grants nothing.
    """
    instant = _instant(time.time() if now is None else now)
    log = open_audit_chain(audit_log)
    try:
        return [OverrideRecord.from_audit(r) for r in log.active(instant)]
    finally:
        if log is not audit_log:
            log.close()
