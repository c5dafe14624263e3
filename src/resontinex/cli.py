"""The `resontinex` command: what is installed, and the offline demo of every member.

Members contribute to the demo through the entry-point group ``resontinex.demo``: each entry
is a callable ``showcase(out_dir: pathlib.Path) -> str`` that runs offline, writes its
artifacts under ``out_dir`` and returns a readable summary. The umbrella never imports a
member it does not find installed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path

from resontinex.__about__ import __version__
from resontinex.members import MEMBERS, installed_version

DEMO_ENTRY_POINT_GROUP = "resontinex.demo"

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _installed_members() -> list[dict[str, str | None]]:
    return [
        {
            "dist": m.dist,
            "import": m.import_name,
            "extra": m.extra,
            "version": installed_version(m.dist),
        }
        for m in MEMBERS
    ]


def cmd_version(args: argparse.Namespace) -> int:
    rows = _installed_members()
    if args.output_format == "json":
        print(json.dumps({"resontinex": __version__, "members": rows}, indent=2))
        return EXIT_OK
    print(f"resontinex {__version__}")
    for row in rows:
        print(f"  {row['dist']:<20} {row['version'] or 'not installed'}")
    return EXIT_OK


def _demo_order(name: str) -> int:
    """Showcases run in member order; unknown names go last, alphabetically."""
    dists = [m.dist for m in MEMBERS]
    return dists.index(name) if name in dists else len(dists)


GLOSSARY = """\
glossary (the words the showcases print):
  execute / review / defer / abort
                    the pipeline's four verbs: act on the answer, hold it for a person, try
                    again later, refuse it
  trust score       the trust gate's score in [0, 1]: a weighted log-odds blend of alignment,
                    1 - epistemic risk and 1 - confidence band
  tier_action       the gate rule that maps the trust score's risk tier (block < 0.25 <= review
                    < 0.50 <= monitor < 0.75 <= pass) to a decision
  trust_floor       the gate rule that turns an execute with a score under the floor (0.60)
                    into review
  entropy_threshold the gate rule that defers an execute whose confidence band is >= 0.72
  confidence band   mean per-token entropy of the answer / ln(vocabulary size), in [0, 1]
  epistemic risk    1 - 1/perplexity, raised further while the drift watch is flagged
  perplexity (ppl)  exp of the mean surprise of the tokens; 1 = certain, vocabulary size = guessing
  entropy (nats)    uncertainty of the model's next-token distribution, natural-log units
  γ (gamma)         coordinated score / lone-agent score (> 1: the team helps on average)
  Ω (omega)         coordinated score - best lone-agent score (> 0: the team beats the best one)
  nDCG@10           ranking quality of the top 10 results, 1 = ideal order
  LCB               lower confidence bound of an interval (here 95 %); a guard passes only when
                    the LCB clears its margin
  AECE              adaptive expected calibration error: gap between stated confidence and
                    observed accuracy over equal-mass bins
  ECE, Brier, AUC   calibration error, mean squared probability error, ranking power of scores
  CUSUM             cumulative-sum change detector; an alarm when it crosses its limit h
  BLOCK / FAIL / BLOCKED
                    a gate saying no; in this demo each is the intended outcome of its data
"""


def _quiet_third_party() -> None:
    """Silence library chatter (transformers' length warnings, weight-loading progress bars)
    for this process only: set by our CLI, never by library code a user imports."""
    import logging
    import os
    import warnings

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore", module=r"(transformers|torch|huggingface_hub)(\.|$)")
    for name in ("transformers", "huggingface_hub", "torch"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # transformers is an optional member dependency
        return
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def _artifacts(directory: Path) -> list[str]:
    """What a showcase left in its directory: files by name, directories (models, state) as one
    line each, so the summary names every artifact without listing model weights."""
    if not directory.is_dir():
        return []
    names = []
    for path in sorted(directory.iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_dir():
            count = sum(1 for p in path.rglob("*") if p.is_file())
            names.append(f"{path}/ ({count} files)")
        else:
            names.append(str(path))
    return names


def cmd_demo(args: argparse.Namespace) -> int:
    _quiet_third_party()
    out_dir: Path = args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    print(f"RESONTINEX demo (umbrella {__version__}); artifacts in {out_dir}/")
    print("Installed members:")
    for row in _installed_members():
        print(f"  {row['dist']:<20} {row['version'] or 'not installed'}")

    showcases = sorted(
        entry_points(group=DEMO_ENTRY_POINT_GROUP), key=lambda e: (_demo_order(e.name), e.name)
    )
    failed: list[str] = []
    rows: list[tuple[str, str, list[str]]] = []
    for ep in showcases:
        print(f"\n== {ep.name} ==", flush=True)
        started = time.perf_counter()
        try:
            showcase = ep.load()
            summary = showcase(out_dir / ep.name)
        except Exception:  # a demo reports every member's failure, then exits non-zero
            failed.append(ep.name)
            traceback.print_exc()
            rows.append((ep.name, "FAILED", _artifacts(out_dir / ep.name)))
            continue
        took = f"{time.perf_counter() - started:.1f} s"
        # one blank line between sections and none inside; the time is printed once, below
        print("\n".join(line.rstrip() for line in summary.splitlines() if line.strip()), flush=True)
        rows.append((ep.name, took, _artifacts(out_dir / ep.name)))
    if not showcases:
        print("\nNo member showcases are installed yet.")
    else:
        print("\n== summary ==")
        print(f"  {'showcase':<20} {'time':>8}  artifacts")
        for name, took, paths in rows:
            for i, path in enumerate(paths or ["(none)"]):
                print(f"  {name if i == 0 else '':<20} {took if i == 0 else '':>8}  {path}")
    if failed:
        print(f"\nDemo failed for: {', '.join(failed)}", file=sys.stderr)
        return EXIT_USAGE  # a crashed showcase is an unexpected error, never a policy verdict
    return EXIT_OK


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def cmd_serve(args: argparse.Namespace) -> int:
    """Check every store before serving (a bad URL, credentials or schema exits 2 here), then
    run uvicorn with ``--workers`` processes, each building the app from the environment."""
    try:
        import uvicorn

        from resontinex.service import app as service
    except ImportError as exc:
        print(
            f"resontinex serve needs the server extra: pip install 'resontinex[all]' ({exc})",
            file=sys.stderr,
        )
        return EXIT_USAGE
    from cert.runtime.logging import configure_logging
    from cert.trajectory import build_tiny_model
    from resontinex.pipeline import PipelineSettings
    from resontinex.pipeline.factory import prepare_state
    from resontinex.pipeline.state import DATABASE_URL_ENV

    configure_logging(args.log_level, "json", logger="")
    database_url = args.database_url or os.environ.get(DATABASE_URL_ENV) or None
    try:
        settings = PipelineSettings(
            state_dir=args.state_dir, model_dir=args.model_dir, database_url=database_url
        )
        where = prepare_state(settings)
        if args.workers > 1 and args.model_dir is None:
            # trained once here, not by N workers racing for one directory
            build_tiny_model(args.state_dir / "model", settings.model_spec)
    except Exception as exc:  # a store or setting that cannot be used: never serve without it
        print(f"resontinex serve: cannot start: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"resontinex serve: state in {where}, {args.workers} worker(s)", file=sys.stderr)
    os.environ[service.STATE_DIR_ENV] = str(args.state_dir.resolve())
    os.environ[service.LOG_LEVEL_ENV] = args.log_level
    if args.model_dir is not None:
        os.environ[service.MODEL_DIR_ENV] = str(args.model_dir.resolve())
    if database_url:
        os.environ[DATABASE_URL_ENV] = database_url
    with contextlib.ExitStack() as cleanup:
        if args.workers > 1:
            metrics_dir = os.environ.get(service.MULTIPROC_ENV)
            if metrics_dir:  # prometheus-client: the directory must be empty at start
                for stale in Path(metrics_dir).glob("*.db"):
                    stale.unlink()
            else:
                metrics_dir = cleanup.enter_context(
                    tempfile.TemporaryDirectory(prefix="resontinex-metrics-")
                )
                os.environ[service.MULTIPROC_ENV] = metrics_dir
        uvicorn.run(
            "resontinex.service.app:app_from_environment",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_config=None,
            access_log=args.access_log,
        )
    return EXIT_OK


def cmd_verify_audit(args: argparse.Namespace) -> int:
    from hbt_core import AuditLog, load_public_key
    from hbt_core.errors import HBTError, IntegrityError
    from resontinex.pipeline.errors import PipelineConfigError
    from resontinex.pipeline.state import URL_SCHEMES, redact

    target: str | Path
    if args.log.startswith(URL_SCHEMES):
        try:
            target, shown = args.log, redact(args.log)
        except PipelineConfigError as exc:  # a malformed URL, named without its password
            print(f"cannot verify: {exc}", file=sys.stderr)
            return EXIT_USAGE
        key_path = args.public_key
    else:
        target = Path(args.log)
        shown = str(target)
        if not target.is_file() or target.stat().st_size == 0:
            # Nothing to verify is not "valid"; and an empty file must not be opened.
            print(f"audit log not found or empty: {target}", file=sys.stderr)
            return EXIT_USAGE
        key_path = args.public_key or target.with_name("audit-public-key.pem")
    try:
        public = load_public_key(key_path) if key_path and key_path.exists() else None
        with AuditLog(target, read_only=True) as log:
            summary = log.verify(public)
    except IntegrityError as exc:
        report = {"valid": False, "problem": str(exc)}
        code = EXIT_FAILED
    except Exception as exc:  # HBTError, or a file that is not a database: never exit 1
        kind = "" if isinstance(exc, HBTError) else f"{type(exc).__name__}: "
        print(f"cannot verify {shown}: {kind}{exc}", file=sys.stderr)
        return EXIT_USAGE
    else:
        report = {"valid": True, **summary}
        code = EXIT_OK
    if args.output_format == "json":
        print(json.dumps(report, indent=2))
    elif report["valid"]:
        signed = (
            "signatures checked"
            if report["signatures_checked"]
            else "NO public key: signatures not checked"
        )
        print(
            f"audit log valid: {report['entries']} entries, {report['checkpoints']} checkpoints, {signed}"
        )
    else:
        print(f"audit log INVALID: {report['problem']}")
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="resontinex", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"resontinex {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p_version = sub.add_parser("version", help="list each installed member and its version")
    p_version.add_argument("--output-format", choices=("text", "json"), default="text")
    p_version.set_defaults(func=cmd_version)

    p_demo = sub.add_parser(
        "demo",
        help="run every installed member's offline showcase",
        description="Run every installed member's offline showcase, then print one summary "
        "table with every artifact path.",
        epilog=GLOSSARY,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p_demo.add_argument("--out", type=Path, default=Path("demo-output"), help="artifact directory")
    p_demo.set_defaults(func=cmd_demo)

    p_serve = sub.add_parser("serve", help="run the HTTP service (needs the server extra)")
    p_serve.add_argument("--host", default="127.0.0.1")
    p_serve.add_argument("--port", type=int, default=8000)
    p_serve.add_argument(
        "--state-dir", type=Path, default=Path("resontinex-state"), help="model, audit log, keys"
    )
    p_serve.add_argument(
        "--database-url",
        help="postgresql://user@host:port/db for every store, shared by workers and replicas "
        "(default: $RESONTINEX_DATABASE_URL; without it, SQLite files in the state directory). "
        "Prefer PGPASSWORD or ~/.pgpass to a password in the URL. Needs HBT_SIGNING_KEY_PATH: "
        "the same audit signing key on every replica",
    )
    p_serve.add_argument(
        "--workers", type=_positive_int, default=1, help="server processes (default 1)"
    )
    p_serve.add_argument(
        "--model-dir", type=Path, help="serve this model (default: <state-dir>/model, trained once)"
    )
    p_serve.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    p_serve.add_argument(
        "--access-log",
        action="store_true",
        help="a log line per HTTP request (off: the HTTP metrics count every request)",
    )
    p_serve.set_defaults(func=cmd_serve)

    p_audit = sub.add_parser("verify-audit", help="check an audit log and its signed checkpoints")
    p_audit.add_argument(
        "log",
        help="the audit log: audit.sqlite, or the postgresql:// URL of the service's database",
    )
    p_audit.add_argument(
        "--public-key",
        type=Path,
        help="PEM (default for a file: audit-public-key.pem beside LOG; for a URL: none)",
    )
    p_audit.add_argument("--output-format", choices=("text", "json"), default="text")
    p_audit.set_defaults(func=cmd_verify_audit)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
