"""The ``campaign`` command: one module per command group.

``main.app`` is the Typer application (the ``campaign`` script). Nothing imports this package
except the script itself and tests. May import everything else.
"""
