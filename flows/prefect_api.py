"""The Prefect API the engine's flows run against: a running server, or Prefect's temporary one.

``ensure_prefect_api(settings, notify=)`` is called before the first flow of a command runs
(``flows.run.run_cycle``, ``campaign models retrain``, the demo). With ``PREFECT_API_URL`` set
it returns that URL and starts nothing. Without it, it starts Prefect's temporary API server
(``SubprocessASGIServer``, the one Prefect itself would start on the first flow run; it is one
per process, so Prefect's own client then finds it running) and waits up to
``settings.prefect.startup_timeout`` seconds (``CAMPAIGN_PREFECT_STARTUP_TIMEOUT``, default
180 s; Prefect's own default is 20 s, too short on a busy machine), telling ``notify`` that it
waits and, every ``NOTICE_EVERY`` seconds, for how long so far. If the server does not answer
in time it raises ``PrefectUnavailable``, whose message says which setting to raise and how
to use a running server instead.

``prefect_defaults(settings)`` is a context manager for a whole command that uses Prefect:
Prefect settings whose defaults are the engine's (analytics of the temporary server off, its
start-up timeout the engine's); a value set in the environment or a Prefect profile still wins.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from orchestrator.settings import Settings

__all__ = [
    "NOTICE_EVERY",
    "PrefectUnavailable",
    "console_without_tracebacks",
    "ensure_prefect_api",
    "prefect_defaults",
]

NOTICE_EVERY = 15.0  # seconds between "still waiting" lines


class PrefectUnavailable(RuntimeError):
    """The Prefect API could not be reached or started; the message says what to do."""


def _stderr(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


@contextmanager
def prefect_defaults(settings: Settings) -> Iterator[None]:
    """While the block runs, Prefect's defaults are the engine's (see the module docstring)."""
    from prefect.settings import (
        PREFECT_SERVER_ANALYTICS_ENABLED,
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
        temporary_settings,
    )

    defaults = {
        PREFECT_SERVER_ANALYTICS_ENABLED: False,
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS: int(settings.prefect.startup_timeout),
    }
    with temporary_settings(set_defaults=defaults):
        yield


def ensure_prefect_api(settings: Settings, notify: Callable[[str], None] | None = _stderr) -> str:
    """The URL of the Prefect API flows will use; starts the temporary server if none is configured.

    Raises ``PrefectUnavailable`` when the temporary server does not answer within
    ``settings.prefect.startup_timeout`` seconds.
    """
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

    configured = PREFECT_API_URL.value()
    if configured:
        return str(configured)
    if not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        raise PrefectUnavailable(
            "no Prefect API: PREFECT_API_URL is not set and Prefect's temporary server is disabled "
            "(PREFECT_SERVER_EPHEMERAL_ENABLED=false). Start one with `prefect server start` and set "
            "PREFECT_API_URL=http://127.0.0.1:4200/api."
        )
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    if server.running:
        return server.api_url
    timeout = settings.prefect.startup_timeout
    say = notify or (lambda _message: None)
    say(
        f"starting Prefect's temporary API server (waiting up to {timeout:.0f} s, CAMPAIGN_PREFECT_STARTUP_TIMEOUT; "
        "set PREFECT_API_URL to use a running server instead) ..."
    )
    started = time.perf_counter()
    done = threading.Event()

    def remind() -> None:
        while not done.wait(NOTICE_EVERY):
            say(
                f"... still waiting for Prefect's API server ({time.perf_counter() - started:.0f} s of {timeout:.0f} s)"
            )

    reminder = threading.Thread(target=remind, name="prefect-startup-notice", daemon=True)
    reminder.start()
    try:
        server.start(timeout=max(1, round(timeout)))
    except Exception as exc:  # noqa: BLE001 - Prefect raises RuntimeError (timeout) or httpx errors
        server.stop()
        raise PrefectUnavailable(
            f"Prefect's temporary API server did not start within {timeout:.0f} s "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else 'no detail'}). "
            "On a busy machine give it longer, e.g. CAMPAIGN_PREFECT_STARTUP_TIMEOUT=600, or start a server "
            "once with `prefect server start` (in another terminal) and set PREFECT_API_URL=http://127.0.0.1:4200/api."
        ) from exc
    finally:
        done.set()
    say(f"Prefect's temporary API server answered after {time.perf_counter() - started:.1f} s at {server.api_url}")
    return server.api_url


class _WithoutTraceback(logging.Formatter):
    """A console formatter that leaves out tracebacks (they are still sent to the API and other handlers)."""

    def __init__(self, inner: logging.Formatter | None):
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        try:
            return self.inner.format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved


def console_without_tracebacks() -> None:
    """Prefect's console log lines keep their message but show no traceback (``campaign run`` without ``--debug``):
    the command itself ends with one paragraph that says what failed and what to do."""
    from prefect.logging.handlers import PrefectConsoleHandler

    loggers = [
        logging.getLogger(),
        *(logging.getLogger(n) for n in ("prefect", "prefect.flow_runs", "prefect.task_runs")),
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, PrefectConsoleHandler) and not isinstance(handler.formatter, _WithoutTraceback):
                handler.setFormatter(_WithoutTraceback(handler.formatter))
