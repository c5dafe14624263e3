"""Holographic Behavioral Twin: hyperdimensional behavioural fingerprints of models,
verification, drift detection, a signed Merkle audit log and edge export."""

import logging

from hbt_core.__about__ import __version__
from hbt_core.auditlog import AuditLog, Checkpoint, InclusionProof, verify_proof_bundle
from hbt_core.challenges import Probe, generate_probes
from hbt_core.distributed import VerificationStrategy
from hbt_core.edge import export_edge, load_edge
from hbt_core.errors import HBTError
from hbt_core.incremental import UpdateStrategy
from hbt_core.keys import generate_key, load_private_key, load_public_key
from hbt_core.production import ProductionHBT
from hbt_core.signature import EncoderConfig, Signature, build_signature
from hbt_core.verification import Calibration, verify

logging.getLogger("hbt_core").addHandler(logging.NullHandler())

__all__ = [
    "AuditLog",
    "Calibration",
    "Checkpoint",
    "EncoderConfig",
    "HBTError",
    "InclusionProof",
    "Probe",
    "ProductionHBT",
    "Signature",
    "UpdateStrategy",
    "VerificationStrategy",
    "__version__",
    "build_signature",
    "export_edge",
    "generate_key",
    "generate_probes",
    "load_edge",
    "load_private_key",
    "load_public_key",
    "verify",
    "verify_proof_bundle",
]
