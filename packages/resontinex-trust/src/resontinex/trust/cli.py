"""``resontinex-trust``: evaluate signals, fit a calibrator from CSV, check configs and audit logs.

Exit codes: 0 ok; 1 policy verdict (the gate said ABORT, a calibration could not be fitted, an
audit log failed verification); 2 usage or input error (a missing audit log included, unless
``--allow-missing``), and any unexpected error.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from resontinex.trust.audit import GENESIS_HASH, AuditVerification
from resontinex.trust.auditstore import SQLITE_SUFFIXES, open_audit_chain
from resontinex.trust.calibration import METHODS, CalibrationAdapter, reliability_diagram
from resontinex.trust.composite_trust_gate import CompositeTrustGate
from resontinex.trust.config import load_config
from resontinex.trust.errors import TrustError
from resontinex.trust.files import atomic_write, file_lock
from resontinex.trust.signals import Decision, InputVector

EXIT_OK, EXIT_VERDICT, EXIT_USAGE = 0, 1, 2
MAX_CSV_ROWS = 10_000_000
_LABELS = {"0": 0, "1": 1, "false": 0, "true": 1}


def _probability(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _json_safe(value: Any) -> Any:
    """``value`` with non-finite floats as null: an undefined metric (AUC of one class) is not
    a number, and ``NaN`` is not JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _emit(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    if args.output_format == "json":
        print(json.dumps(_json_safe(data), indent=2, sort_keys=True, allow_nan=False))
    else:
        print(text)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    config = load_config(args.config, environment=args.environment)
    calibrator = None
    if args.calibrator:
        calibrator = CalibrationAdapter.from_json(Path(args.calibrator).read_text("utf-8"))
        if not calibrator.is_fitted:  # it would be ignored, and the raw score would decide
            raise TrustError(f"{args.calibrator}: the calibrator is not fitted")
    gate = CompositeTrustGate(
        InputVector(args.alignment, args.risk, args.confidence), config, calibrator
    )
    text = (
        f"decision: {gate.decision.name}  (rule: {gate.rule_fired})\n"
        f"tier:     {gate.risk_tier.value}\n"
        f"score:    {gate.trust_score:.6f} (raw {gate.raw_trust_score:.6f})\n"
        f"config:   {config.config_hash} (version {config.version})"
    )
    _emit(args, gate.explain(), text)
    return EXIT_VERDICT if gate.decision is Decision.ABORT else EXIT_OK


def _csv_score(path: str, line: int, text: object) -> float:
    """A CSV cell as a probability, or an error naming the file and line (not a split index)."""
    try:
        score = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        score = math.nan
    if not 0.0 <= score <= 1.0:  # NaN, inf, 1e999 and words all end here
        raise TrustError(
            f"{path}:{line}: score must be a finite probability in [0, 1], got {text!r}"
        )
    return score


def _read_csv(path: str) -> tuple[list[float], list[int]]:
    scores: list[float] = []
    labels: list[int] = []
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        line = 1
        try:
            if not reader.fieldnames or not {"score", "label"} <= set(reader.fieldnames):
                raise TrustError(f"{path}: header must name the columns 'score' and 'label'")
            for row in reader:
                line = reader.line_num
                if len(scores) >= MAX_CSV_ROWS:
                    raise TrustError(f"{path}: more than {MAX_CSV_ROWS} rows")
                score = _csv_score(path, line, row["score"])
                label = row["label"]
                if not isinstance(label, str) or label.strip().lower() not in _LABELS:
                    raise TrustError(f"{path}:{line}: label must be 0/1/true/false, got {label!r}")
                scores.append(score)
                labels.append(_LABELS[label.strip().lower()])
        except csv.Error as exc:  # e.g. a field over the csv module's size limit
            # The error is raised while the reader takes the line after ``line_num``.
            raise TrustError(f"{path}:{reader.line_num + 1}: unreadable CSV ({exc})") from None
    return scores, labels


def _cmd_calibrate(args: argparse.Namespace) -> int:
    scores, labels = _read_csv(args.csv)
    train = [i for i in range(len(scores)) if i % 5]
    test = [i for i in range(len(scores)) if i % 5 == 0]
    adapter = CalibrationAdapter(args.method)
    fitted = adapter.fit([scores[i] for i in train], [labels[i] for i in train])
    if not fitted:
        _emit(
            args,
            {"fitted": False, **adapter.fit_report},
            f"not fitted: {adapter.fit_report['reason']}",
        )
        return EXIT_VERDICT
    report = adapter.report([scores[i] for i in test], [labels[i] for i in test])
    before, after = report["before"], report["after"]
    result = {
        "fitted": True,
        "method": adapter.fitted_method,
        "train_samples": len(train),
        "heldout_samples": len(test),
        "heldout": {
            k: {m: v[m] for m in ("ece", "brier", "log_loss", "auc")} for k, v in report.items()
        },
    }
    if args.save:
        final = CalibrationAdapter(args.method)
        if not final.fit(scores, labels):  # never save an unfitted calibrator as the result
            _emit(
                args,
                {"fitted": False, **final.fit_report},
                f"not saved: the fit on all rows was refused: {final.fit_report['reason']}",
            )
            return EXIT_VERDICT
        save = Path(args.save)
        with file_lock(save.with_name(save.name + ".lock")):
            atomic_write(save, final.to_json().encode())
        result["saved"] = args.save
    if args.plot:
        drawn = reliability_diagram(
            args.plot, {"raw": before, "calibrated": after}, "Held-out reliability"
        )
        result["plot"] = args.plot if drawn else None
    text = (
        f"method {adapter.fitted_method}; {len(train)} train / {len(test)} held-out rows\n"
        f"ECE   before {before['ece']:.4f}  after {after['ece']:.4f}\n"
        f"Brier before {before['brier']:.4f}  after {after['brier']:.4f}\n"
        f"AUC   before {before['auc']:.4f}  after {after['auc']:.4f}"
    )
    _emit(args, result, text)
    return EXIT_OK


def _cmd_validate_config(args: argparse.Namespace) -> int:
    config = load_config(args.file, environment=args.environment)
    data = {"valid": True, "config_hash": config.config_hash, "config": config.as_dict()}
    _emit(args, data, f"valid; config_hash {config.config_hash}")
    return EXIT_OK


def _verify(target: str, allow_missing: bool) -> AuditVerification:
    """Open the chain read-only (JSON lines, SQLite or PostgreSQL) and walk it."""
    path = Path(target)
    if allow_missing and path.suffix.lower() in SQLITE_SUFFIXES and not path.exists():
        return AuditVerification(True, 0, GENESIS_HASH)
    chain = open_audit_chain(target, read_only=True)
    try:
        return chain.verify(allow_missing=allow_missing)
    finally:
        chain.close()


def _cmd_verify_audit(args: argparse.Namespace) -> int:
    result = _verify(args.file, args.allow_missing)
    data = {
        "ok": result.ok,
        "records": result.records,
        "unanchored": result.unanchored,
        "problem": result.problem,
        "line": result.line,
    }
    where = f" (line {result.line})" if result.line else ""
    pending = (
        " (the last record is not yet in the head file: an append was interrupted before its"
        " head update; the next append anchors it)"
        if result.unanchored
        else ""
    )
    _emit(
        args,
        data,
        f"intact: {result.records} records{pending}"
        if result.ok
        else f"TAMPERED{where}: {result.problem}",
    )
    return EXIT_OK if result.ok else EXIT_VERDICT


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="resontinex-trust", description=__doc__.splitlines()[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--output-format", choices=("text", "json"), default="text")
    sub = parser.add_subparsers(dest="command", required=True)

    ev = sub.add_parser("evaluate", parents=[common], help="evaluate one set of signals")
    ev.add_argument("alignment", type=_probability, help="alignment_score in [0, 1]")
    ev.add_argument("risk", type=_probability, help="epistemic_risk in [0, 1]")
    ev.add_argument("confidence", type=_probability, help="confidence_band in [0, 1]")
    ev.add_argument("--config", help="YAML config (default: $RESONTINEX_TRUST_CONFIG or embedded)")
    ev.add_argument(
        "--environment", help="environment section to merge (development, staging, ...)"
    )
    ev.add_argument("--calibrator", help="calibrator JSON written by `calibrate --save`")
    ev.set_defaults(func=_cmd_evaluate)

    cal = sub.add_parser("calibrate", parents=[common], help="fit a calibrator on score,label CSV")
    cal.add_argument("csv", help="CSV with header columns 'score' and 'label'")
    cal.add_argument("--method", choices=METHODS, default="auto")
    cal.add_argument("--save", help="write the calibrator (fitted on all rows) as JSON here")
    cal.add_argument("--plot", help="write a reliability diagram PNG here (needs matplotlib)")
    cal.set_defaults(func=_cmd_calibrate)

    val = sub.add_parser("validate-config", parents=[common], help="validate a YAML config")
    val.add_argument("file")
    val.add_argument("--environment")
    val.set_defaults(func=_cmd_validate_config)

    ver = sub.add_parser(
        "verify-audit",
        parents=[common],
        help="verify a break-glass audit chain (JSON lines, SQLite or PostgreSQL), read-only",
    )
    ver.add_argument(
        "file",
        help="a JSON-lines log, a SQLite file (.db/.sqlite/.sqlite3 or SQLite's header) or a "
        "postgresql://user@host/db URL (password via PGPASSWORD or ~/.pgpass if you like)",
    )
    ver.add_argument(
        "--allow-missing",
        action="store_true",
        help="accept a log that was never written (no log, or an empty one, and no head file); "
        "without it that is an error (exit 2)",
    )
    ver.set_defaults(func=_cmd_verify_audit)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except (TrustError, OSError, UnicodeDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # never the verdict code 1 for a crash
        print(f"error: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return code


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
