"""The public API of the ``orchestrator`` package is exactly its ``__all__``, and the top level holds
only the settings, the errors and that API (everything else lives in the subpackages)."""

from pathlib import Path

import orchestrator
from orchestrator.errors import Problem, ValidationFailed
from orchestrator.settings import Settings, get_settings, use_settings


def test_exported_members():
    public = {name for name in dir(orchestrator) if not name.startswith("_")}
    subpackages = {p.name for p in Path(orchestrator.__file__).parent.iterdir() if (p / "__init__.py").exists()}
    modules = {"errors", "settings"}
    assert public - subpackages - modules == set(orchestrator.__all__) - {"__version__"}
    assert orchestrator.Settings is Settings and orchestrator.get_settings is get_settings
    assert orchestrator.use_settings is use_settings
    assert orchestrator.Problem is Problem and orchestrator.ValidationFailed is ValidationFailed
    assert isinstance(orchestrator.__version__, str) and orchestrator.__version__


def test_the_top_level_holds_only_settings_errors_and_the_public_api():
    top = {p.name for p in Path(orchestrator.__file__).parent.glob("*.py")}
    assert top == {"__init__.py", "errors.py", "settings.py"}
