"""The ``campaign`` console script: a first line at once, then the command line of ``main``.

Importing the engine (pandas, SQLAlchemy, scikit-learn, then Prefect) takes seconds on a busy
machine, so before that ``campaign run`` says what it starts (on stderr, not with ``--json``
or ``--help``); ``main.run`` then reports how long loading the engine and starting Prefect took,
apart from the stages.
"""

from __future__ import annotations

import sys
import time

STARTED = time.perf_counter()  # when the process got here: the engine's load time is counted from it


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["run"] and not {"--json", "--help", "-h"} & set(args):
        files = " ".join(a for a in args[1:] if a.endswith((".yaml", ".yml")))
        sys.stderr.write(f"campaign run {files}: loading the engine and starting Prefect ...\n")
        sys.stderr.flush()
    from orchestrator.cli.main import app

    app()
