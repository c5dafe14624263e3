"""Confounding resolution for logged router decisions.

Logs are observational: the router upshifted the queries it judged hard, so upshifted queries
differ from the rest before any treatment. The resolver stratifies on {NL-confidence decile ×
query-length bin × language (top-level module)}, takes the propensities the router logged with
its decisions (ε-greedy: known exactly) — or, for logs without them, fits a logistic propensity
model on the router's context features and score — and estimates the effect of upshifting with
per-stratum Hajek inverse-propensity weighting combined by stratum size. Diagnostics: Kish ESS/N
per slice, the PSIS Pareto k̂ of the weights, a within-stratum permutation test, and two
negative controls (a placebo outcome that T1 cannot change — T0's own nDCG — and a placebo
treatment made by shuffling T within strata), each with its p-value and its simulated power.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from t1_deploy._io import atomic_write_text
from t1_deploy._validate import check_array, check_int, check_number, check_same_length
from t1_deploy.errors import ConfigError, InvalidInputError
from t1_deploy.stats import kish_ess, psis_khat

STRATIFICATION_VARS = ("nl_confidence_decile", "query_length", "language")


@dataclass(frozen=True)
class ConfoundingResolutionConfig:
    stratification_vars: tuple[str, ...] = STRATIFICATION_VARS
    ess_threshold: float = 0.2
    kappa_max: float = 0.5
    n_permutations: int = 1000
    power_effect: float = 0.05
    power_simulations: int = 100
    power_permutations: int = 200
    n_languages: int = 4
    length_bins: int = 3
    propensity_clip: float = 0.02
    alpha: float = 0.05
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = set(self.stratification_vars) - set(STRATIFICATION_VARS)
        if unknown or not self.stratification_vars:
            raise ConfigError(
                f"ConfoundingResolutionConfig.stratification_vars: unknown {sorted(unknown)}"
            )
        check_number("ConfoundingResolutionConfig.ess_threshold", self.ess_threshold, low=0, high=1)
        check_number("ConfoundingResolutionConfig.kappa_max", self.kappa_max, low=-1, high=5)
        check_int(
            "ConfoundingResolutionConfig.n_permutations", self.n_permutations, low=50, high=10**6
        )
        check_number("ConfoundingResolutionConfig.power_effect", self.power_effect, low=0, high=1)
        check_int("ConfoundingResolutionConfig.power_simulations", self.power_simulations, low=10)
        check_int("ConfoundingResolutionConfig.power_permutations", self.power_permutations, low=50)
        check_int("ConfoundingResolutionConfig.n_languages", self.n_languages, low=1, high=100)
        check_int("ConfoundingResolutionConfig.length_bins", self.length_bins, low=1, high=20)
        check_number(
            "ConfoundingResolutionConfig.propensity_clip", self.propensity_clip, low=1e-6, high=0.4
        )
        check_number("ConfoundingResolutionConfig.alpha", self.alpha, low=1e-4, high=0.5)


@dataclass
class Observations:
    """Logged queries: context features, strata inputs, treatment (upshifted) and outcome."""

    features: npt.NDArray[np.float64]
    nl_confidence: npt.NDArray[np.float64]
    query_length: npt.NDArray[np.float64]
    language: npt.NDArray[np.str_]
    treatment: npt.NDArray[np.float64]
    outcome: npt.NDArray[np.float64]
    placebo_outcome: npt.NDArray[np.float64]
    router_score: npt.NDArray[np.float64] | None = None  # logged with each decision when known
    oracle_effect: float | None = None  # known only in the reference system (both arms measured)
    logged_propensity: npt.NDArray[np.float64] | None = None  # P(upshift | query) as logged

    def __post_init__(self) -> None:
        self.features = check_array("features", self.features, ndim=2, min_len=20)
        names = ["nl_confidence", "query_length", "treatment", "outcome", "placebo_outcome"]
        for n in names:
            setattr(self, n, check_array(n, getattr(self, n)))
        self.language = np.asarray(self.language, dtype=str)
        check_same_length(
            ["features", *names, "language"],
            [self.features, *(getattr(self, n) for n in names), self.language],
        )
        if self.router_score is not None:
            self.router_score = check_array("router_score", self.router_score)
            check_same_length(["features", "router_score"], [self.features, self.router_score])
        if self.logged_propensity is not None:
            self.logged_propensity = check_array("logged_propensity", self.logged_propensity)
            check_same_length(
                ["features", "logged_propensity"], [self.features, self.logged_propensity]
            )
            if self.logged_propensity.min() <= 0 or self.logged_propensity.max() >= 1:
                raise InvalidInputError("logged_propensity must lie in (0, 1) for IPW")
        if not np.isin(self.treatment, (0.0, 1.0)).all():
            raise InvalidInputError("treatment must be 0/1")
        if self.treatment.min() == self.treatment.max():
            raise InvalidInputError("treatment must contain both arms")


@dataclass
class ConfoundingReport:
    naive_effect: float
    adjusted_effect: float
    oracle_effect: float | None
    effect_p_value: float
    placebo_outcome: dict[str, float]
    placebo_treatment: dict[str, float]
    naive_placebo_outcome_p_value: float
    ess_ratio: dict[str, float]
    min_ess_ratio: float
    khat: float
    n_strata: int
    n_used: int
    propensity_source: str = "fitted"  # "logged" when the router logged its own propensities
    passed: dict[str, bool] = field(default_factory=dict)


def epsilon_greedy(
    scores: npt.NDArray[np.float64], theta: float, epsilon: float, rng: np.random.Generator
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.float64]]:
    """ε-greedy around θ: upshift iff τ̂ ≥ θ, except that with probability ε a fair coin decides.

    Returns the decisions and P(upshift | τ̂) — known exactly, so the audit needs no model of it.
    """
    greedy = scores >= theta
    explore = rng.random(len(scores)) < epsilon
    coin = rng.random(len(scores)) < 0.5
    upshift = np.where(explore, coin, greedy)
    p_upshift = np.where(greedy, 1.0 - epsilon / 2.0, epsilon / 2.0)
    return upshift, p_upshift


def log_router_decisions(
    features: npt.ArrayLike,
    router_scores: npt.ArrayLike,
    ndcg_t0: npt.ArrayLike,
    ndcg_t1: npt.ArrayLike,
    nl_confidence: npt.ArrayLike,
    query_length: npt.ArrayLike,
    language: npt.ArrayLike,
    *,
    theta: float,
    epsilon: float = 0.1,
    seed: int = 0,
) -> Observations:
    """The router's own ε-greedy decisions around θ on measured queries, with their propensities;
    the outcome logged is the measured nDCG@10 of the arm actually served."""
    scores = check_array("router_scores", router_scores)
    theta = check_number("theta", theta)
    epsilon = check_number("epsilon", epsilon, low=0.001, high=1.0)
    upshift, p_upshift = epsilon_greedy(scores, theta, epsilon, np.random.default_rng(seed))
    t = upshift.astype(float)
    y0, y1 = check_array("ndcg_t0", ndcg_t0), check_array("ndcg_t1", ndcg_t1)
    return Observations(
        features=np.asarray(features, dtype=float),
        nl_confidence=np.asarray(nl_confidence, dtype=float),
        query_length=np.asarray(query_length, dtype=float),
        language=np.asarray(language, dtype=str),
        treatment=t,
        outcome=np.where(t == 1, y1, y0),
        placebo_outcome=y0,
        router_score=scores,
        oracle_effect=float(np.mean(y1 - y0)),
        logged_propensity=p_upshift,
    )


class ConfoundingResolver:
    def __init__(self, config: ConfoundingResolutionConfig | None = None) -> None:
        self.config = config or ConfoundingResolutionConfig()
        self.report: ConfoundingReport | None = None

    def strata(self, obs: Observations) -> npt.NDArray[np.int64]:
        cfg = self.config
        keys = []
        if "nl_confidence_decile" in cfg.stratification_vars:
            edges = np.unique(np.quantile(obs.nl_confidence, np.linspace(0, 1, 11))[1:-1])
            keys.append(np.searchsorted(edges, obs.nl_confidence, side="right"))
        if "query_length" in cfg.stratification_vars:
            edges = np.unique(
                np.quantile(obs.query_length, np.linspace(0, 1, cfg.length_bins + 1))[1:-1]
            )
            keys.append(np.searchsorted(edges, obs.query_length, side="right"))
        if "language" in cfg.stratification_vars:
            names, counts = np.unique(obs.language, return_counts=True)
            top = set(names[np.argsort(-counts, kind="stable")][: cfg.n_languages])
            keys.append(
                np.array([sorted(top).index(x) if x in top else len(top) for x in obs.language])
            )
        combined = np.stack(keys, axis=1)
        _, ids = np.unique(combined, axis=0, return_inverse=True)
        return ids.ravel().astype(np.int64)

    def propensity(
        self, obs: Observations, strata: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.float64]:
        if obs.logged_propensity is not None:
            return obs.logged_propensity
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        columns = (
            [obs.features]
            if obs.router_score is None
            else [obs.features, obs.router_score[:, None]]
        )
        X = StandardScaler().fit_transform(np.hstack(columns))
        model = LogisticRegression(C=1.0, max_iter=1000).fit(X, obs.treatment)
        clip = self.config.propensity_clip
        return np.clip(model.predict_proba(X)[:, 1], clip, 1 - clip)

    @staticmethod
    def _effect(
        t: npt.NDArray[np.float64],
        y: npt.NDArray[np.float64],
        e: npt.NDArray[np.float64],
        onehot: npt.NDArray[np.float64],
    ) -> npt.NDArray[np.float64]:
        """Stratum-size-weighted per-stratum Hajek IPW effect; `t` may be (B, n) permutations."""
        t2 = np.atleast_2d(t)
        w1, w0 = t2 / e, (1 - t2) / (1 - e)
        s1, s0 = w1 @ onehot, w0 @ onehot
        m1 = np.divide((w1 * y) @ onehot, s1, out=np.zeros_like(s1), where=s1 > 0)
        m0 = np.divide((w0 * y) @ onehot, s0, out=np.zeros_like(s0), where=s0 > 0)
        sizes = onehot.sum(axis=0)
        valid = (s1 > 0) & (s0 > 0)
        weight = np.where(valid, sizes, 0.0)
        return np.sum((m1 - m0) * weight, axis=1) / np.maximum(weight.sum(axis=1), 1e-12)

    def _permute(
        self,
        t: npt.NDArray[np.float64],
        strata: npt.NDArray[np.int64],
        n: int,
        rng: np.random.Generator,
    ) -> npt.NDArray[np.float64]:
        """`n` within-stratum shuffles of `t` (rows)."""
        keys = rng.random((n, len(t)))
        order = np.lexsort((keys, np.broadcast_to(strata, keys.shape)), axis=1)
        base = np.lexsort((np.arange(len(t)), strata))
        out = np.empty((n, len(t)))
        out[np.arange(n)[:, None], base[None, :]] = t[order]
        return out

    def _perm_test(
        self,
        t: npt.NDArray[np.float64],
        y: npt.NDArray[np.float64],
        e: npt.NDArray[np.float64],
        strata: npt.NDArray[np.int64],
        onehot: npt.NDArray[np.float64],
        n_perm: int,
        rng: np.random.Generator,
    ) -> tuple[float, float]:
        observed = float(self._effect(t, y, e, onehot)[0])
        null = self._effect(self._permute(t, strata, n_perm, rng), y, e, onehot)
        p = (1 + np.sum(np.abs(null) >= abs(observed) - 1e-15)) / (n_perm + 1)
        return observed, float(p)

    def _power(
        self,
        t: npt.NDArray[np.float64],
        y: npt.NDArray[np.float64],
        e: npt.NDArray[np.float64],
        strata: npt.NDArray[np.int64],
        onehot: npt.NDArray[np.float64],
        rng: np.random.Generator,
    ) -> float:
        """Share of simulations in which the test rejects a true effect of `power_effect`."""
        cfg = self.config
        hits = 0
        for _ in range(cfg.power_simulations):
            t_sim = self._permute(t, strata, 1, rng)[0]
            y_sim = rng.permutation(y) + cfg.power_effect * t_sim
            _, p = self._perm_test(t_sim, y_sim, e, strata, onehot, cfg.power_permutations, rng)
            hits += p < cfg.alpha
        return hits / cfg.power_simulations

    def resolve_confounding(self, observations: Observations) -> ConfoundingReport:
        if not isinstance(observations, Observations):
            raise InvalidInputError(
                f"observations must be Observations, got {type(observations).__name__}"
            )
        cfg, obs = self.config, observations
        rng = np.random.default_rng(cfg.seed)
        strata = self.strata(obs)
        onehot = np.eye(strata.max() + 1)[strata]
        e = self.propensity(obs, strata)
        t, y = obs.treatment, obs.outcome
        effect = float(self._effect(t, y, e, onehot)[0])
        # Tests: the IPW statistic is not exchangeable under shuffles, so the permutation tests use
        # the stratified difference in means within strata refined by propensity quintile.
        edges = np.quantile(e, [0.2, 0.4, 0.6, 0.8])
        _, test_strata = np.unique(
            np.stack([strata, np.searchsorted(edges, e)], axis=1), axis=0, return_inverse=True
        )
        test_strata = test_strata.ravel().astype(np.int64)
        test_onehot = np.eye(test_strata.max() + 1)[test_strata]
        flat = np.full(len(t), 0.5)
        _, p_effect = self._perm_test(t, y, flat, test_strata, test_onehot, cfg.n_permutations, rng)
        pl_out, p_pl_out = self._perm_test(
            t, obs.placebo_outcome, flat, test_strata, test_onehot, cfg.n_permutations, rng
        )
        t_placebo = self._permute(t, test_strata, 1, rng)[0]
        pl_treat, p_pl_treat = self._perm_test(
            t_placebo, y, flat, test_strata, test_onehot, cfg.n_permutations, rng
        )
        power = self._power(t, y, flat, test_strata, test_onehot, rng)
        naive = float(y[t == 1].mean() - y[t == 0].mean())
        ones = np.ones(len(t))
        _, naive_pl_p = self._perm_test(
            t,
            obs.placebo_outcome,
            np.full(len(t), 0.5),
            np.zeros(len(t), dtype=np.int64),
            ones[:, None],
            cfg.n_permutations,
            rng,
        )
        weights = np.where(t == 1, 1 / e, 1 / (1 - e))
        slices = {f"language={x}": obs.language == x for x in np.unique(obs.language)}
        slices.update(
            {
                f"stratum_len_bin={b}": self._length_bins(obs) == b
                for b in np.unique(self._length_bins(obs))
            }
        )
        slices["all"] = np.ones(len(t), dtype=bool)
        ess = {name: kish_ess(weights[m]) / m.sum() for name, m in slices.items() if m.sum() >= 20}
        khat = psis_khat(weights)
        valid = (onehot[t == 1].sum(0) > 0) & (onehot[t == 0].sum(0) > 0)
        report = ConfoundingReport(
            naive_effect=naive,
            adjusted_effect=effect,
            oracle_effect=obs.oracle_effect,
            effect_p_value=p_effect,
            placebo_outcome={"estimate": pl_out, "p_value": p_pl_out, "power": power},
            placebo_treatment={"estimate": pl_treat, "p_value": p_pl_treat, "power": power},
            naive_placebo_outcome_p_value=naive_pl_p,
            ess_ratio=ess,
            min_ess_ratio=min(ess.values()),
            khat=khat,
            n_strata=int(valid.sum()),
            n_used=int(onehot[:, valid].sum()),
            propensity_source="fitted" if obs.logged_propensity is None else "logged",
        )
        report.passed = {
            "ess": report.min_ess_ratio >= cfg.ess_threshold,
            "khat": khat < cfg.kappa_max,
            "placebo_outcome": p_pl_out > cfg.alpha,
            "placebo_treatment": p_pl_treat > cfg.alpha,
        }
        self.report = report
        return report

    def _length_bins(self, obs: Observations) -> npt.NDArray[np.int64]:
        edges = np.unique(
            np.quantile(obs.query_length, np.linspace(0, 1, self.config.length_bins + 1))[1:-1]
        )
        return np.searchsorted(edges, obs.query_length, side="right").astype(np.int64)

    def export_audit_csv(self, path: str | Path) -> Path:
        if self.report is None:
            raise InvalidInputError("resolve_confounding must run first")
        r, cfg = self.report, self.config
        rows: list[dict[str, Any]] = [
            {
                "check": "naive_effect",
                "estimate": r.naive_effect,
                "p_value": "",
                "power": "",
                "threshold": "",
                "passed": "",
                "detail": "difference in means, upshifted − not",
            },
            {
                "check": "adjusted_effect",
                "estimate": r.adjusted_effect,
                "p_value": r.effect_p_value,
                "power": "",
                "threshold": "",
                "passed": "",
                "detail": f"per-stratum Hajek IPW, {r.n_strata} strata, {r.n_used} queries",
            },
            {
                "check": "oracle_effect",
                "estimate": "" if r.oracle_effect is None else r.oracle_effect,
                "p_value": "",
                "power": "",
                "threshold": "",
                "passed": "",
                "detail": "mean(T1 − T0) over all logged queries; both arms measured",
            },
            {
                "check": "placebo_outcome",
                "estimate": r.placebo_outcome["estimate"],
                "p_value": r.placebo_outcome["p_value"],
                "power": r.placebo_outcome["power"],
                "threshold": f"p > {cfg.alpha}",
                "passed": r.passed["placebo_outcome"],
                "detail": "outcome = T0 nDCG; naive test p = "
                f"{r.naive_placebo_outcome_p_value:.4f}; "
                f"power at effect {cfg.power_effect}",
            },
            {
                "check": "placebo_treatment",
                "estimate": r.placebo_treatment["estimate"],
                "p_value": r.placebo_treatment["p_value"],
                "power": r.placebo_treatment["power"],
                "threshold": f"p > {cfg.alpha}",
                "passed": r.passed["placebo_treatment"],
                "detail": "treatment shuffled within strata",
            },
            {
                "check": "psis_khat",
                "estimate": r.khat,
                "p_value": "",
                "power": "",
                "threshold": f"< {cfg.kappa_max}",
                "passed": r.passed["khat"],
                "detail": "Pareto tail shape of the IPW weights (Zhang-Stephens, PSIS prior)",
            },
        ]
        for name, value in sorted(r.ess_ratio.items()):
            rows.append(
                {
                    "check": f"ess_ratio[{name}]",
                    "estimate": value,
                    "p_value": "",
                    "power": "",
                    "threshold": f">= {cfg.ess_threshold}",
                    "passed": value >= cfg.ess_threshold,
                    "detail": "Kish ESS / N of the IPW weights",
                }
            )
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return atomic_write_text(Path(path), buf.getvalue())
