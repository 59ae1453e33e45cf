"""Multi-channel campaign orchestration engine.

The subpackages follow the data flow of a wave (each ``__init__`` states its contracts and what it
may import; ``docs/architecture.md`` draws the layers, which CI enforces with ``lint-imports``):
``rules`` -> ``customers`` -> ``targeting`` (with ``scoring``) -> ``ledger`` -> ``delivery`` ->
``responses`` -> ``success`` -> ``learning``; ``wave`` runs the stages, ``flows/`` wires them into
Prefect, ``cli`` is the ``campaign`` command and ``demo`` the demo world.

The package's own public API is what every layer shares: the settings and the error types of
campaign managers' input. It is exactly ``__all__`` (pinned by ``tests/test_public_api.py``).
"""

from importlib import metadata as _metadata

from orchestrator.errors import Problem, ValidationFailed, did_you_mean
from orchestrator.settings import Settings, get_settings, use_settings

try:
    __version__ = _metadata.version("campaign-orchestrator")
except _metadata.PackageNotFoundError:  # a source tree that is not installed
    __version__ = "0+unknown"

__all__ = ["Problem", "Settings", "ValidationFailed", "__version__", "did_you_mean", "get_settings", "use_settings"]
