"""routing.yaml: validated into immutable rules with a precompiled keyword matcher."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fusion_ops import _validate
from fusion_ops.errors import ConfigError

__all__ = ["CategoryRule", "ComplexityBand", "KeywordMatcher", "RoutingRules", "parse_rules"]


@dataclass(frozen=True)
class CategoryRule:
    primary: str | None
    secondary: tuple[str, ...]


@dataclass(frozen=True)
class ComplexityBand:
    name: str
    above: float | None  # exclusive lower edge
    at_most: float | None  # inclusive upper edge
    favours: Mapping[str, float]

    def contains(self, complexity: float) -> bool:
        if self.above is not None and not complexity > self.above:
            return False
        return not (self.at_most is not None and complexity > self.at_most)


class KeywordMatcher:
    """One compiled alternation over every keyword: whole words/phrases, case-folded.

    A keyword matches where it is not preceded or followed by a word character, so "log" never
    matches inside "catalog"; phrases match across any run of whitespace; a trailing plural
    "s"/"es" also matches. Longer keywords are tried first so "audit trail" beats "audit".
    """

    def __init__(self, triggers: Mapping[str, Mapping[str, float]]) -> None:
        self._by_keyword: dict[str, list[tuple[str, float]]] = {}
        for overlay, keywords in triggers.items():
            for keyword, weight in keywords.items():
                self._by_keyword.setdefault(_normalise(keyword), []).append((overlay, weight))
        alternatives = sorted(self._by_keyword, key=lambda k: (-len(k), k))
        body = "|".join(r"\s+".join(map(re.escape, k.split())) for k in alternatives)
        self._pattern = re.compile(rf"(?<!\w)(?:{body})(?:e?s)?(?!\w)") if body else None

    @property
    def keyword_count(self) -> int:
        return len(self._by_keyword)

    def _keyword_of(self, matched: str) -> str | None:
        text = _normalise(matched)
        for candidate in (text, text[:-1], text[:-2]):
            if candidate in self._by_keyword:
                return candidate
        return None

    def match(self, text: str) -> dict[str, list[tuple[str, float]]]:
        """Overlay → [(keyword, weight)], each keyword once, in order of first appearance."""
        found: dict[str, list[tuple[str, float]]] = {}
        if self._pattern is None:
            return found
        seen: set[str] = set()
        for hit in self._pattern.finditer(text.casefold()):
            keyword = self._keyword_of(hit.group())
            if keyword is None or keyword in seen:
                continue
            seen.add(keyword)
            for overlay, weight in self._by_keyword[keyword]:
                found.setdefault(overlay, []).append((keyword, weight))
        return found


def _normalise(keyword: str) -> str:
    return " ".join(keyword.casefold().split())


@dataclass(frozen=True)
class RoutingRules:
    category_primary: float
    category_secondary: float
    keyword_cap: float
    min_score: float
    tie_break_order: tuple[str, ...]
    categories: Mapping[str, CategoryRule]
    bands: tuple[ComplexityBand, ...]
    triggers: Mapping[str, Mapping[str, float]]
    max_overlay_bytes: int

    def referenced_overlays(self) -> set[str]:
        names = set(self.triggers) | set(self.tie_break_order)
        for rule in self.categories.values():
            names |= {n for n in (rule.primary, *rule.secondary) if n}
        for band in self.bands:
            names |= set(band.favours)
        return names

    def without(self, missing: set[str]) -> RoutingRules:
        """The same rules with every reference to ``missing`` overlays dropped."""
        if not missing:
            return self
        categories = {
            name: CategoryRule(
                rule.primary if rule.primary not in missing else None,
                tuple(s for s in rule.secondary if s not in missing),
            )
            for name, rule in self.categories.items()
        }
        bands = tuple(
            ComplexityBand(
                b.name, b.above, b.at_most, {o: w for o, w in b.favours.items() if o not in missing}
            )
            for b in self.bands
        )
        return RoutingRules(
            category_primary=self.category_primary,
            category_secondary=self.category_secondary,
            keyword_cap=self.keyword_cap,
            min_score=self.min_score,
            tie_break_order=tuple(n for n in self.tie_break_order if n not in missing),
            categories=categories,
            bands=bands,
            triggers={o: k for o, k in self.triggers.items() if o not in missing},
            max_overlay_bytes=self.max_overlay_bytes,
        )


def _weight(value: Any, where: str, *, high: float = 10.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where} must be a number, got {_validate.show(value)}")
    number = _validate.as_float(value)
    if not math.isfinite(number) or not 0 <= number <= high:
        raise ConfigError(f"{where} must be in [0, {high}], got {_validate.show(value)}")
    return number


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ConfigError(f"{where} must be a mapping with string keys")
    return value


def _overlay_name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", value):
        raise ConfigError(f"{where} must be an overlay name, got {_validate.show(value)}")
    return value


def parse_rules(data: Mapping[str, Any]) -> RoutingRules:
    """Validate a decoded routing.yaml; every error names the key path."""
    if data.get("version") != 1:
        raise ConfigError(f"routing.version must be 1, got {_validate.show(data.get('version'))}")
    scoring = _mapping(data.get("scoring"), "routing.scoring")
    weights = {
        k: _weight(scoring.get(k), f"routing.scoring.{k}")
        for k in ("category_primary", "category_secondary", "keyword_cap", "min_score")
    }
    order = data.get("tie_break_order", [])
    if not isinstance(order, list):
        raise ConfigError("routing.tie_break_order must be a list")
    tie_break = tuple(
        _overlay_name(n, f"routing.tie_break_order[{i}]") for i, n in enumerate(order)
    )
    categories: dict[str, CategoryRule] = {}
    for name, raw in _mapping(data.get("categories"), "routing.categories").items():
        where = f"routing.categories.{name}"
        rule = _mapping(raw, where)
        primary = rule.get("primary")
        secondary = rule.get("secondary", [])
        if not isinstance(secondary, list):
            raise ConfigError(f"{where}.secondary must be a list")
        categories[name] = CategoryRule(
            None if primary is None else _overlay_name(primary, f"{where}.primary"),
            tuple(_overlay_name(s, f"{where}.secondary[{i}]") for i, s in enumerate(secondary)),
        )
    if not categories:
        raise ConfigError("routing.categories must name at least one category")
    bands_raw = data.get("complexity_bands", [])
    if not isinstance(bands_raw, list):
        raise ConfigError("routing.complexity_bands must be a list")
    bands: list[ComplexityBand] = []
    for i, raw in enumerate(bands_raw):
        where = f"routing.complexity_bands[{i}]"
        band = _mapping(raw, where)
        above = band.get("above")
        at_most = band.get("at_most")
        if above is None and at_most is None:
            raise ConfigError(f"{where} needs 'above' or 'at_most'")
        favours = _mapping(band.get("favours"), f"{where}.favours")
        bands.append(
            ComplexityBand(
                name=str(band.get("name", i)),
                above=None if above is None else _weight(above, f"{where}.above", high=1),
                at_most=None if at_most is None else _weight(at_most, f"{where}.at_most", high=1),
                favours={
                    _overlay_name(o, f"{where}.favours"): _weight(w, f"{where}.favours.{o}")
                    for o, w in favours.items()
                },
            )
        )
    triggers: dict[str, dict[str, float]] = {}
    for overlay, raw in _mapping(
        data.get("keyword_triggers", {}), "routing.keyword_triggers"
    ).items():
        where = f"routing.keyword_triggers.{overlay}"
        _overlay_name(overlay, where)
        keywords = _mapping(raw, where)
        for keyword, weight in keywords.items():
            if not _normalise(keyword) or not re.search(r"\w", keyword):
                raise ConfigError(f"{where} has an empty keyword {keyword!r}")
            triggers.setdefault(overlay, {})[keyword] = _weight(weight, f"{where}.{keyword}")
    limits = _mapping(data.get("limits", {}), "routing.limits")
    max_bytes = limits.get("max_overlay_bytes", 65536)
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or not 1 <= max_bytes <= 10**7:
        raise ConfigError(
            "routing.limits.max_overlay_bytes must be an integer in [1, 10000000], "
            f"got {_validate.show(max_bytes)}"
        )
    return RoutingRules(
        category_primary=weights["category_primary"],
        category_secondary=weights["category_secondary"],
        keyword_cap=weights["keyword_cap"],
        min_score=weights["min_score"],
        tie_break_order=tie_break,
        categories=categories,
        bands=tuple(bands),
        triggers=triggers,
        max_overlay_bytes=max_bytes,
    )
