"""JSON Schemas shipped with the package, and validation of a run's artifact directory."""

from __future__ import annotations

import csv
import json
from importlib import resources
from pathlib import Path
from typing import Any

from t1_deploy._io import read_json, verify_checksum
from t1_deploy.errors import ArtifactError

JSON_ARTIFACTS = {
    "router_distilled_int8.json": "router_distilled_int8.schema.json",
    "theta_star_production.json": "theta_star_production.schema.json",
    "latency_harvest_config.json": "latency_harvest_config.schema.json",
    "production_monitoring_config.json": "production_monitoring_config.schema.json",
}
CSV_ARTIFACTS = {
    "conformal_coverage_report.csv": "conformal_coverage_row.schema.json",
    "counterfactual_audit_fixed.csv": "counterfactual_audit_row.schema.json",
}
MARKDOWN_ARTIFACTS = {
    "T1_release_contract.md": ("# T1 release contract", "**Verdict: ", "## Guards"),
    "regression_gallery.md": ("# Regression gallery", "## Improvements", "## Regressions"),
}


def load_schema(name: str) -> dict[str, Any]:
    try:
        text = resources.files("t1_deploy.schemas").joinpath(name).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ArtifactError(f"no shipped schema named {name!r}") from exc
    schema: dict[str, Any] = json.loads(text)
    return schema


def _validate(instance: Any, schema_name: str, source: str) -> None:
    import jsonschema

    try:
        jsonschema.validate(instance, load_schema(schema_name))
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        raise ArtifactError(f"{source}: field {where}: {exc.message}") from exc


def _csv_rows(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            rows.append({k: _coerce(v) for k, v in row.items()})
    if not rows:
        raise ArtifactError(f"{path}: no data rows")
    return rows


def _coerce(value: str | None) -> Any:
    if value is None or value == "":
        return None
    if value in ("True", "False"):
        return value == "True"
    try:
        return float(value)
    except ValueError:
        return value


def validate_artifacts(out_dir: Path) -> dict[str, str]:
    """Validate every seed artifact in `out_dir`; raise ArtifactError naming the first problem."""
    out = Path(out_dir)
    status: dict[str, str] = {}
    for artifact, schema in JSON_ARTIFACTS.items():
        payload = read_json(out / artifact)
        _validate(payload, schema, artifact)
        if "checksum" in payload:
            verify_checksum(payload, artifact)
        status[artifact] = "valid"
    for artifact, schema in CSV_ARTIFACTS.items():
        path = out / artifact
        if not path.is_file():
            raise ArtifactError(f"{artifact} is missing from {out}")
        for i, row in enumerate(_csv_rows(path)):
            _validate(row, schema, f"{artifact} row {i + 1}")
        status[artifact] = "valid"
    for artifact, needles in MARKDOWN_ARTIFACTS.items():
        path = out / artifact
        if not path.is_file():
            raise ArtifactError(f"{artifact} is missing from {out}")
        text = path.read_text(encoding="utf-8")
        for needle in needles:
            if needle not in text:
                raise ArtifactError(f"{artifact}: required section {needle!r} is missing")
        status[artifact] = "valid"
    return status
