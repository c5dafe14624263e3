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

from cert.coordination.__about__ import __version__
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
    "TokenUsage",
    "__version__",
    "consensus_rate",
    "cosine_similarity",
    "expected_requests",
]
