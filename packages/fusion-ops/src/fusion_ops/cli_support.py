"""The one place where a fusion-ops command line turns failures into exit codes.

Exit 1 means a policy verdict ("block") and nothing else, so a crash must never produce it:
:func:`guarded_main` wraps every ``main`` and maps a typed error, an OS error (an unwritable
``--comment-file``) and any unexpected exception alike to exit 2 with a one-line message on
stderr. argparse's own exits (``--help`` 0, usage 2) pass through unchanged.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Sequence
from typing import Protocol

from fusion_ops.errors import FusionOpsError
from fusion_ops.logs import log_event

__all__ = ["EXIT_ERROR", "guarded_main"]

EXIT_ERROR = 2
log = logging.getLogger("fusion_ops.cli")


class Main(Protocol):
    def __call__(self, argv: Sequence[str] | None = None) -> int: ...


def _fail(message: str) -> int:
    text = message if len(message) <= 500 else message[:497] + "..."
    print(f"error: {text}", file=sys.stderr)
    return EXIT_ERROR


def guarded_main(main: Main) -> Main:
    """``main`` with every failure mapped to exit 2, and only 0, 1 or 2 ever returned."""

    @functools.wraps(main)
    def wrapper(argv: Sequence[str] | None = None) -> int:
        try:
            code = main(argv)
        except FusionOpsError as exc:
            return _fail(str(exc))
        except OSError as exc:
            where = f" ({exc.filename})" if exc.filename else ""
            return _fail(f"{exc.strerror or exc}{where}")
        except KeyboardInterrupt:
            return _fail("interrupted")
        except Exception as exc:  # the point: no crash may exit 1
            log_event(log, logging.ERROR, "cli_unexpected_error", error=type(exc).__name__)
            return _fail(f"unexpected {type(exc).__name__}: {exc}")
        if code not in (0, 1, EXIT_ERROR):
            return _fail(f"internal: {main.__module__}.main returned {code!r}")
        return code

    return wrapper
