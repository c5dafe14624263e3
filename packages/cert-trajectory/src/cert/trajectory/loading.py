"""Loading a causal LM and its tokenizer for monitoring (local path or hub name).

``trust_remote_code`` is False unless the caller asks: loading must never run code shipped
with a checkpoint by default. 8-bit loading goes through ``BitsAndBytesConfig(load_in_8bit=True)``
(transformers 5 rejects the old ``load_in_8bit=`` keyword).
"""

from __future__ import annotations

import re
from typing import Any

from cert.trajectory.errors import ConfigError, ModelLoadError

__all__ = ["load_model_for_monitoring", "parse_device", "parse_dtype"]

_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
_DTYPES = ("auto", "float32", "float16", "bfloat16")


def parse_device(device: object) -> str:
    """Validate a device string; ``auto`` resolves through cert-runtime's resolve_device."""
    if not isinstance(device, str) or not _DEVICE.match(device):
        raise ConfigError(
            f"device must be 'auto', 'cpu', 'mps', 'cuda' or 'cuda:N', got {device!r}",
            context={"field": "device", "value": repr(device)},
        )
    if device == "auto":
        from cert.runtime.config import resolve_device

        return resolve_device("auto")
    return device


def parse_dtype(dtype: object) -> Any:
    """Map a dtype name (or a torch.dtype) to what ``from_pretrained(dtype=...)`` accepts."""
    import torch

    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if isinstance(dtype, str) and dtype in _DTYPES:
        return dtype if dtype == "auto" else getattr(torch, dtype)
    raise ConfigError(
        f"dtype must be one of {', '.join(_DTYPES)} or a torch.dtype, got {dtype!r}",
        context={"field": "dtype", "value": repr(dtype)},
    )


def load_model_for_monitoring(
    name_or_path: str,
    *,
    device: str = "auto",
    dtype: object = None,
    use_8bit: bool = False,
    trust_remote_code: bool = False,
) -> tuple[Any, Any]:
    """Load ``(model, tokenizer)`` in eval mode on ``device``; errors name the path."""
    if not isinstance(name_or_path, str) or not name_or_path.strip():
        raise ConfigError(
            f"model name or path must be a non-empty string, got {name_or_path!r}",
            context={"field": "model_name", "value": repr(name_or_path)},
        )
    resolved_device = parse_device(device)
    torch_dtype = parse_dtype(dtype)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs: dict[str, Any] = {"trust_remote_code": bool(trust_remote_code)}
    if torch_dtype is not None:
        kwargs["dtype"] = torch_dtype
    if use_8bit:
        try:
            import bitsandbytes  # noqa: F401
        except ImportError as exc:
            raise ModelLoadError(
                "use_8bit=True needs bitsandbytes: pip install 'cert-trajectory[bitsandbytes]'",
                context={"field": "use_8bit", "value": True},
            ) from exc
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True)
        kwargs["device_map"] = resolved_device
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            name_or_path, trust_remote_code=bool(trust_remote_code)
        )
        model: Any = AutoModelForCausalLM.from_pretrained(name_or_path, **kwargs)
        if not use_8bit:
            model = model.to(resolved_device)
    except Exception as exc:  # transformers raises OSError, ValueError, KeyError, ...
        raise ModelLoadError(
            f"could not load model {name_or_path!r} on {resolved_device}: {exc}",
            context={"field": "model_name", "value": name_or_path},
        ) from exc
    model.eval()
    return model, tokenizer
