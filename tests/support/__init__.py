"""Plain helpers of the tests (no fixtures; those live in ``tests/conftest.py`` and
``tests/<subpackage>/conftest.py``): data, expected values computed independently, and small
drivers of the code under test. Test modules import from here, never from each other.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent

# Seconds a test gives a subprocess (a server, the CLI) to start or stop: generous, because the test
# machine may be busy; a test that passes waits only as long as the start takes.
STARTUP_TIMEOUT = float(os.environ.get("CAMPAIGN_TEST_STARTUP_TIMEOUT", "300"))
