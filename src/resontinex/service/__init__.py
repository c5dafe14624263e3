"""The RESONTINEX HTTP service: ``create_app`` and its settings (see ``app``)."""

from resontinex.service.app import MAX_BODY_BYTES, TOKEN_ENV, ServiceSettings, create_app

__all__ = ["MAX_BODY_BYTES", "TOKEN_ENV", "ServiceSettings", "create_app"]
