"""Resilient Anthropic client, multi-agent orchestration, LLM-as-judge and coordination metrics.

Public API (see docs/packages/cert-coordination.md):

* :class:`AnthropicClientWithResilience` / :class:`SyncAnthropicClient`: SDK client with cost cap,
  sliding-window rate limiter and circuit breaker; a :class:`ChatBackend`;
* :class:`ChatBackend`, :class:`ChatMessage`, :class:`ChatResult`, :class:`TokenUsage`: the backend
  protocol that lets a local model stand in for the API;
* :class:`QualityEvaluator` (LLM judge), :class:`BaselineMeasurer` (SQLite-cached baselines),
  :class:`CoordinationOrchestrator` (sequential / parallel / debate) and
  :class:`CoordinationMetrics` (γ, Ω, consensus, bootstrap intervals);
* :class:`PriceTable`, :class:`CostLedger`, :class:`SlidingWindowRateLimiter`,
  :class:`JudgeDriftDetector`; :mod:`cert.coordination.testing` holds the fake Messages API server.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from cert.coordination.__about__ import __version__

if TYPE_CHECKING:
    from cert.coordination.backend import ChatBackend, ChatMessage, ChatResult, TokenUsage
    from cert.coordination.baseline import BaselineMeasurer, BaselineResult
    from cert.coordination.client import (
        DEFAULT_MODEL,
        AnthropicClientWithResilience,
        SyncAnthropicClient,
    )
    from cert.coordination.drift import JudgeDriftDetector
    from cert.coordination.evaluator import QualityEvaluator, QualityScore
    from cert.coordination.metrics import CoordinationMetrics, consensus_rate, cosine_similarity
    from cert.coordination.orchestrator import CoordinationOrchestrator, expected_requests
    from cert.coordination.pricing import CostLedger, PriceTable
    from cert.coordination.ratelimit import SlidingWindowRateLimiter
    from cert.coordination.tokens import TokenEstimator

# Names resolve on first use (PEP 562), so `import cert.coordination.metrics` does not pay for
# importing the anthropic SDK (seconds on a cold disk).
_LAZY = {
    "ChatBackend": "backend",
    "ChatMessage": "backend",
    "ChatResult": "backend",
    "TokenUsage": "backend",
    "BaselineMeasurer": "baseline",
    "BaselineResult": "baseline",
    "DEFAULT_MODEL": "client",
    "AnthropicClientWithResilience": "client",
    "SyncAnthropicClient": "client",
    "JudgeDriftDetector": "drift",
    "QualityEvaluator": "evaluator",
    "QualityScore": "evaluator",
    "CoordinationMetrics": "metrics",
    "consensus_rate": "metrics",
    "cosine_similarity": "metrics",
    "CoordinationOrchestrator": "orchestrator",
    "expected_requests": "orchestrator",
    "CostLedger": "pricing",
    "PriceTable": "pricing",
    "SlidingWindowRateLimiter": "ratelimit",
    "TokenEstimator": "tokens",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cert.coordination' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"cert.coordination.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "DEFAULT_MODEL",
    "AnthropicClientWithResilience",
    "BaselineMeasurer",
    "BaselineResult",
    "ChatBackend",
    "ChatMessage",
    "ChatResult",
    "CoordinationMetrics",
    "CoordinationOrchestrator",
    "CostLedger",
    "JudgeDriftDetector",
    "PriceTable",
    "QualityEvaluator",
    "QualityScore",
    "SlidingWindowRateLimiter",
    "SyncAnthropicClient",
    "TokenEstimator",
    "TokenUsage",
    "__version__",
    "consensus_rate",
    "cosine_similarity",
    "expected_requests",
]
