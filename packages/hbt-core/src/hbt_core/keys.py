"""Ed25519 signing keys loaded from configuration: a file path or an environment variable.

Keys are never generated silently: a process without a configured key cannot sign, and says so.
:func:`generate_key` is the one explicit way to create a key file (mode 0600, atomic write,
refuses to overwrite).
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from hbt_core.errors import KeyConfigurationError
from hbt_core.files import atomic_write

KEY_PATH_ENV = "HBT_SIGNING_KEY_PATH"
PUBLIC_KEY_PATH_ENV = "HBT_PUBLIC_KEY_PATH"


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Write a key file that must not exist yet (never overwrite a key)."""
    if path.exists():
        raise KeyConfigurationError(f"key file {str(path)!r} already exists; not overwriting")
    atomic_write(path, data, mode=mode)


def generate_key(path: str | Path) -> Ed25519PublicKey:
    """Create a new Ed25519 key at ``path`` (PEM, 0600) and its public key at ``path.pub``."""
    p = Path(path)
    if p.exists():
        raise KeyConfigurationError(f"key file {str(p)!r} already exists; not overwriting")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_new(p, pem, 0o600)
    public = key.public_key()
    _write_new(p.with_name(p.name + ".pub"), public_key_pem(public), 0o644)
    return public


def public_key_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_key_raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _resolve(path: str | Path | None, env: str, what: str) -> Path:
    if path is None:
        value = os.environ.get(env)
        if not value:
            raise KeyConfigurationError(
                f"no {what} configured: pass a path or set the {env} environment variable"
            )
        path = value
    return Path(path)


def load_private_key(path: str | Path | None = None) -> Ed25519PrivateKey:
    """Load the signing key from ``path`` or from the file named by ``$HBT_SIGNING_KEY_PATH``."""
    p = _resolve(path, KEY_PATH_ENV, "signing key")
    try:
        data = p.read_bytes()
        key = serialization.load_pem_private_key(data, password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise KeyConfigurationError(
            f"cannot load signing key from {str(p)!r}: {type(exc).__name__}"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyConfigurationError(f"key in {str(p)!r} is not an Ed25519 private key")
    return key


def load_public_key(path: str | Path | None = None) -> Ed25519PublicKey:
    """Load a verification key (PEM) from ``path`` or ``$HBT_PUBLIC_KEY_PATH``."""
    p = _resolve(path, PUBLIC_KEY_PATH_ENV, "public key")
    try:
        key = serialization.load_pem_public_key(p.read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise KeyConfigurationError(
            f"cannot load public key from {str(p)!r}: {type(exc).__name__}"
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyConfigurationError(f"key in {str(p)!r} is not an Ed25519 public key")
    return key
