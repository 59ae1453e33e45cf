"""Plain helpers of the tests (no fixtures; those live in ``tests/conftest.py`` and
``tests/<subpackage>/conftest.py``): data, expected values computed independently, and small
drivers of the code under test. Test modules import from here, never from each other.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
