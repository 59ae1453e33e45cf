"""Logging a server fault of the response API without personal data.

``log_fault(what, exc)`` logs ``what``, the exception's type, SQLSTATE and stack, never its message
(it may quote customer data or SQL parameters). The logger is ``orchestrator.responses.api``.
"""

from __future__ import annotations

import logging
import traceback

__all__ = ["log_fault"]

log = logging.getLogger("orchestrator.responses.api")  # the API's logger, named as before the split


def log_fault(what: str, exc: BaseException) -> None:
    """Log a server fault with its type and stack, never its message (it may quote personal data)."""
    frames = "".join(traceback.format_tb(exc.__traceback__))
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    log.error(
        "%s: %s%s (message withheld: it may hold personal data)\n%s",
        what,
        type(exc).__name__,
        f" sqlstate {sqlstate}" if sqlstate else "",
        frames,
    )
