"""``hbt`` command line: keys, audit-log verification, fingerprints, edge packages.

Exit codes: 0 ok, 1 verification failed (integrity or "different model"), 2 usage/input error.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hbt_core.auditlog import AuditLog, verify_proof_bundle
from hbt_core.challenges import generate_probes
from hbt_core.edge import export_edge, load_edge
from hbt_core.errors import HBTError, IntegrityError
from hbt_core.keys import generate_key, load_private_key, load_public_key
from hbt_core.logs import JsonFormatter
from hbt_core.models import load_fixture
from hbt_core.signature import EncoderConfig, Signature, build_signature
from hbt_core.verification import per_probe_similarity


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


def _cmd_log_verify(a: argparse.Namespace) -> int:
    if not Path(a.db).is_file():
        raise FileNotFoundError(f"no audit log at {a.db}")
    pub = load_public_key(a.public_key) if a.public_key else None
    with AuditLog(a.db) as log:
        _emit({"status": "ok", **log.verify(pub)}, a.output_format)
    return 0


def _cmd_proof_verify(a: argparse.Namespace) -> int:
    bundle = json.loads(Path(a.bundle).read_text())
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


def _cmd_compare(a: argparse.Namespace) -> int:
    ref, cand = Signature.load(a.reference), Signature.load(a.candidate)
    sims = per_probe_similarity(ref, cand)
    same = float(sims.mean()) >= a.threshold
    _emit(
        {
            "similarity": round(float(sims.mean()), 6),
            "threshold": a.threshold,
            "verdict": "same" if same else "different",
        },
        a.output_format,
    )
    return 0 if same else 1


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
    s.add_argument("--db", required=True, type=Path)
    s.add_argument("--public-key", type=Path)
    s.set_defaults(fn=_cmd_log_verify)
    s = sub.add_parser("proof-verify", help="verify an inclusion-proof bundle (JSON)")
    s.add_argument("bundle", type=Path)
    s.add_argument("--public-key", required=True, type=Path)
    s.set_defaults(fn=_cmd_proof_verify)
    s = sub.add_parser("fingerprint", help="fingerprint a shipped fixture model")
    s.add_argument("--fixture", required=True)
    s.add_argument("--out", required=True, type=Path)
    s.add_argument("--probes", type=int, default=64)
    s.add_argument("--probe-seed", type=int, default=0)
    s.add_argument("--run-seed", type=int, default=0)
    s.add_argument("--mode", choices=("logit", "text"), default="logit")
    s.set_defaults(fn=_cmd_fingerprint)
    s = sub.add_parser("compare", help="similarity of two signatures; exit 1 if different")
    s.add_argument("reference", type=Path)
    s.add_argument("candidate", type=Path)
    s.add_argument("--threshold", type=float, default=0.85)
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


if __name__ == "__main__":
    sys.exit(main())
