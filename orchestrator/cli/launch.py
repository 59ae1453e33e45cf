"""The ``campaign`` console script: a first line at once, then the command line of ``main``.

Importing the engine (pandas, SQLAlchemy, scikit-learn, then Prefect) takes seconds on a busy
machine, so before that every command says what it loads (on stderr; not for ``--help`` and
``--version``, which answer at once); ``main.run`` then reports how long loading the engine and starting Prefect took,
apart from the stages.
"""

from __future__ import annotations

import sys
import time

STARTED = time.perf_counter()  # when the process got here: the engine's load time is counted from it


QUIET = frozenset({"--help", "-h", "--version"})  # answered at once: no "loading" line
GROUPS = frozenset({"db", "import", "models", "dlq", "policy", "suppressions"})  # commands with subcommands


def first_line(args: list[str]) -> str | None:
    """What ``campaign ARGS`` says on stderr before it loads the engine, or ``None`` (help, version, no command)."""
    if not args or args[0].startswith("-") or QUIET & set(args):
        return None
    if args[0] == "run":
        files = " ".join(a for a in args[1:] if a.endswith((".yaml", ".yml")))
        return f"campaign run {files}: loading the engine and starting Prefect ..."
    words = [args[0], *(args[1:2] if args[0] in GROUPS and args[1:2] and not args[1].startswith("-") else [])]
    return f"campaign {' '.join(words)}: loading the engine ..."


def main() -> None:
    line = first_line(sys.argv[1:])
    if line is not None:  # on stderr, so --format json keeps stdout to one document
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    from orchestrator.cli.main import app

    app()
