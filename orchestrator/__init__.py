"""Multi-channel campaign orchestration engine.

The subpackages follow the data flow of a wave (each ``__init__`` states its contracts and what it
may import; ``docs/architecture.md`` draws the layers, which CI enforces with ``lint-imports``):
``rules`` -> ``customers`` -> ``targeting`` (with ``scoring``) -> ``ledger`` -> ``delivery`` ->
``responses`` -> ``success`` -> ``learning``; ``wave`` runs the stages, ``flows/`` wires them into
Prefect, ``cli`` is the ``campaign`` command and ``demo`` the demo world.

The package's own public API is what every layer shares: the settings and the error types of
campaign managers' input. It is exactly ``__all__`` (pinned by ``tests/test_public_api.py``).
"""

import os as _os
import typing as _typing
from importlib import import_module as _import_module

# OpenMP threads (scikit-learn's gradient boosting) that wait for work sleep instead of spinning: on a
# busy machine spinning threads fight every other process for the cores, and a model that trains in
# 5 s took 130 s (measured on this project's 2-core CI machine under load). Read by the OpenMP runtime
# when it loads, so it is set before scikit-learn is imported; a value the user set is kept.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

if _typing.TYPE_CHECKING:
    from orchestrator.errors import Problem, ValidationFailed, did_you_mean
    from orchestrator.settings import Settings, get_settings, use_settings

# Imported on first use (PEP 562), so that `campaign` can say something before pydantic is loaded.
_LAZY = {
    "Problem": "orchestrator.errors",
    "ValidationFailed": "orchestrator.errors",
    "did_you_mean": "orchestrator.errors",
    "Settings": "orchestrator.settings",
    "get_settings": "orchestrator.settings",
    "use_settings": "orchestrator.settings",
}


def __getattr__(name: str):  # noqa: ANN202 - the attribute's own type
    if name == "__version__":  # importlib.metadata loads the e-mail package: only when asked
        globals()[name] = _version()
        return globals()[name]
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'orchestrator' has no attribute {name!r}")
    value = getattr(_import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | {"__version__"})


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("campaign-orchestrator")
    except metadata.PackageNotFoundError:  # a source tree that is not installed
        return "0+unknown"


__all__ = ["Problem", "Settings", "ValidationFailed", "__version__", "did_you_mean", "get_settings", "use_settings"]
