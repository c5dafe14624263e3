"""The core import stays light: no third-party module but PyYAML, heavy parts load lazily."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = """
import json, sys
before = set(sys.modules)
import resontinex.trust
from resontinex.trust import CompositeTrustGate, InputVector, CalibrationAdapter, Decision
gate = CompositeTrustGate(InputVector(0.8, 0.3, 0.2))
new = sorted(m.split('.')[0] for m in set(sys.modules) - before)
print(json.dumps(sorted(set(new))))
"""


def test_core_import_pulls_in_no_third_party_module_but_yaml() -> None:
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    top_level = set(json.loads(proc.stdout))
    third_party = {m for m in top_level - set(sys.stdlib_module_names) if not m.startswith("_")} - {
        "resontinex"
    }
    assert third_party <= {"yaml", "cython_runtime"}  # cython_runtime: PyYAML's C extension
    assert not {"prometheus_client", "numpy", "matplotlib", "jsonschema"} & top_level


def test_lazy_names_resolve() -> None:
    import resontinex.trust as trust

    assert trust.TrustMonitor.__name__ == "TrustMonitor"
    assert callable(trust.evaluate_batch)
    with pytest.raises(AttributeError):
        trust.DoesNotExist  # noqa: B018
    assert "TrustMonitor" in dir(trust)
