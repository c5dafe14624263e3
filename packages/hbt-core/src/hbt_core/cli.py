"""``hbt`` command line: keys, audit-log verification, fingerprints, edge packages.

Exit codes: 0 ok, 1 verification failed (integrity or "different model"), 2 usage, unreadable
input or any unexpected error. Verifiers open what they verify read-only.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hbt_core.auditlog import AuditLog, Checkpoint, verify_proof_bundle
from hbt_core.auditstore import URL_SCHEMES
from hbt_core.challenges import generate_probes
from hbt_core.edge import export_edge, load_edge
from hbt_core.errors import HBTError, IntegrityError, InvalidInputError
from hbt_core.keys import generate_key, load_private_key, load_public_key
from hbt_core.logs import JsonFormatter
from hbt_core.models import load_fixture
from hbt_core.signature import EncoderConfig, Signature, build_signature
from hbt_core.verification import Calibration, per_probe_similarity, verify


def _emit(data: dict[str, Any], fmt: str) -> None:
    if fmt == "json":
        print(json.dumps(data, sort_keys=True))
    else:
        for k, v in data.items():
            print(f"{k}: {v}")


def _cmd_keygen(a: argparse.Namespace) -> int:
    generate_key(a.path)
    _emit({"private_key": str(a.path), "public_key": f"{a.path}.pub"}, a.output_format)
    return 0


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InvalidInputError(f"cannot read {what} {str(path)!r}: {exc}") from None


def _expected_checkpoint(path: Path) -> Checkpoint:
    """A checkpoint JSON object, or a proof bundle holding one; malformed input is exit 2."""
    raw = _read_json(path, "--expect-checkpoint")
    if isinstance(raw, dict) and "checkpoint" in raw:
        raw = raw["checkpoint"]
    try:
        return Checkpoint.from_json(raw)
    except IntegrityError as exc:
        raise InvalidInputError(f"--expect-checkpoint {str(path)!r}: {exc}") from None


def _cmd_log_verify(a: argparse.Namespace) -> int:
    if not a.db.startswith(URL_SCHEMES) and not Path(a.db).is_file():
        raise FileNotFoundError(f"no audit log at {a.db}")
    pub = load_public_key(a.public_key) if a.public_key else None
    expect = _expected_checkpoint(a.expect_checkpoint) if a.expect_checkpoint else None
    with AuditLog(a.db, read_only=True) as log:
        summary = log.verify(pub, expect)
        latest = log.latest_checkpoint()
    summary["expected_checkpoint_checked"] = expect is not None
    # Keep this for the next run's --expect-checkpoint, so truncation behind it shows.
    summary["latest_checkpoint"] = latest.to_json() if latest else None
    _emit({"status": "ok", **summary}, a.output_format)
    return 0


def _cmd_proof_verify(a: argparse.Namespace) -> int:
    bundle = _read_json(Path(a.bundle), "proof bundle")
    record = verify_proof_bundle(bundle, load_public_key(a.public_key))
    _emit({"status": "ok", "record": record.decode("utf-8", "replace")}, a.output_format)
    return 0


def _cmd_fingerprint(a: argparse.Namespace) -> int:
    model = load_fixture(a.fixture)
    sig = build_signature(
        model, generate_probes(a.probes, a.probe_seed), EncoderConfig(mode=a.mode), a.run_seed
    )
    sig.save(a.out)
    _emit(
        {"model": a.fixture, "probes": a.probes, "root": sig.root.hex(), "out": str(a.out)},
        a.output_format,
    )
    return 0


def _cmd_calibrate(a: argparse.Namespace) -> int:
    ref = Signature.load(a.reference)
    nulls = [Signature.load(p) for p in a.null]
    cal = Calibration.from_null(ref, nulls, alpha=a.alpha)
    cal.save(a.out)
    _emit(
        {
            "score_threshold": round(cal.score_threshold, 6),
            "probe_threshold": round(cal.probe_threshold, 6),
            "null_runs": len(nulls),
            "out": str(a.out),
        },
        a.output_format,
    )
    return 0


def _cmd_compare(a: argparse.Namespace) -> int:
    ref, cand = Signature.load(a.reference), Signature.load(a.candidate)
    out: dict[str, Any]
    if a.calibration is not None:
        result = verify(ref, cand, Calibration.load(a.calibration))
        # "same" needs the calibrated score and a sequential test that did not say "different"
        same = result.same_model and result.sequential.decision != "different"
        out = {
            "similarity": round(result.similarity, 6),
            "threshold": round(result.score_threshold, 6),
            "threshold_source": "calibration",
            "sequential_decision": result.sequential.decision,
        }
    else:
        score = float(per_probe_similarity(ref, cand).mean())
        same = score >= a.threshold
        out = {"similarity": round(score, 6), "threshold": a.threshold}
        out["threshold_source"] = "explicit"
    _emit({**out, "verdict": "same" if same else "different"}, a.output_format)
    return 0 if same else 1


def _number_in(low: float, high: float) -> Callable[[str], float]:
    """An argparse type: a finite number in (low, high]."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not math.isfinite(value) or not low < value <= high:
            raise argparse.ArgumentTypeError(
                f"must be finite and in ({low:g}, {high:g}], got {text!r}"
            )
        return value

    return parse


# 0.5 is the similarity of strangers, so a threshold must lie above it
_threshold = _number_in(0.5, 1.0)
_alpha = _number_in(0.0, 0.5)


def _count(low: int, high: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be in [{low}, {high}], got {value}")
        return value

    return parse


def _cmd_edge_export(a: argparse.Namespace) -> int:
    sig = Signature.load(a.signature)
    data = export_edge(sig, load_private_key(a.key), a.level, a.compression)
    Path(a.out).write_bytes(data)
    _emit({"bytes": len(data), "level": a.level, "out": str(a.out)}, a.output_format)
    return 0


def _cmd_edge_verify(a: argparse.Namespace) -> int:
    pkg = load_edge(Path(a.package).read_bytes(), load_public_key(a.public_key))
    _emit(
        {
            "status": "ok",
            "level": pkg.level,
            "dim": pkg.dim,
            "probes": pkg.n_probes,
            "root": pkg.root.hex(),
        },
        a.output_format,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hbt", description=__doc__)
    p.add_argument("--output-format", choices=("text", "json"), default="text")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("keygen", help="create an Ed25519 key file (refuses to overwrite)")
    s.add_argument("path", type=Path)
    s.set_defaults(fn=_cmd_keygen)
    s = sub.add_parser("log-verify", help="re-hash an audit log and check its checkpoints")
    s.add_argument(
        "--db",
        required=True,
        help="a SQLite file or a postgresql://user@host:port/db URL (password from PGPASSWORD "
        "or ~/.pgpass); opened read-only",
    )
    s.add_argument("--public-key", type=Path)
    s.add_argument(
        "--expect-checkpoint",
        type=Path,
        help="checkpoint JSON (or a proof bundle) seen earlier: fail if the log no longer "
        "contains it (truncated or rewritten)",
    )
    s.set_defaults(fn=_cmd_log_verify)
    s = sub.add_parser("proof-verify", help="verify an inclusion-proof bundle (JSON)")
    s.add_argument("bundle", type=Path)
    s.add_argument("--public-key", required=True, type=Path)
    s.set_defaults(fn=_cmd_proof_verify)
    s = sub.add_parser("fingerprint", help="fingerprint a shipped fixture model")
    s.add_argument("--fixture", required=True)
    s.add_argument("--out", required=True, type=Path)
    s.add_argument("--probes", type=_count(1, 100_000), default=64)
    s.add_argument("--probe-seed", type=_count(0, 2**63 - 1), default=0)
    s.add_argument("--run-seed", type=_count(0, 2**63 - 1), default=0)
    s.add_argument("--mode", choices=("logit", "text"), default="logit")
    s.set_defaults(fn=_cmd_fingerprint)
    s = sub.add_parser(
        "calibrate", help="learn thresholds from same-model runs under other run seeds"
    )
    s.add_argument("reference", type=Path)
    s.add_argument("null", type=Path, nargs="+", help="the reference model, other --run-seed")
    s.add_argument("--out", required=True, type=Path)
    s.add_argument("--alpha", type=_alpha, default=0.01, help="false 'different' rate")
    s.set_defaults(fn=_cmd_calibrate)
    s = sub.add_parser("compare", help="similarity of two signatures; exit 1 if different")
    s.add_argument("reference", type=Path)
    s.add_argument("candidate", type=Path)
    how = s.add_mutually_exclusive_group(required=True)
    how.add_argument(
        "--calibration", type=Path, help="thresholds from `hbt calibrate` for this reference"
    )
    how.add_argument(
        "--threshold", type=_threshold, help="explicit mean-similarity threshold in (0.5, 1]"
    )
    s.set_defaults(fn=_cmd_compare)
    s = sub.add_parser("edge-export", help="write a signed edge package")
    s.add_argument("signature", type=Path)
    s.add_argument("--key", required=True, type=Path)
    s.add_argument("--out", required=True, type=Path)
    s.add_argument(
        "--level", default="balanced", choices=("minimal", "balanced", "full", "streaming")
    )
    s.add_argument("--compression", default="zlib", choices=("zlib", "lz4", "zstd"))
    s.set_defaults(fn=_cmd_edge_export)
    s = sub.add_parser("edge-verify", help="verify a signed edge package")
    s.add_argument("package", type=Path)
    s.add_argument("--public-key", required=True, type=Path)
    s.set_defaults(fn=_cmd_edge_verify)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    pkg_logger = logging.getLogger("hbt_core")
    if not any(isinstance(h.formatter, JsonFormatter) for h in pkg_logger.handlers):
        # cert-runtime's formatter: structured, with the correlation id, secrets redacted
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        pkg_logger.addHandler(handler)
    try:
        return int(args.fn(args))
    except IntegrityError as exc:
        _emit({"status": "failed", "error": str(exc)}, args.output_format)
        return 1
    except (HBTError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # never exit 1 ("failed") on a crash: that is a verdict
        print(f"error: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
