"""One campaign wave as plain stages: prepare, select, plan, render, record, send.

Contracts:

* ``stages``: ``prepare`` (validate rules and templates), ``select_candidates``, ``plan``,
  ``render_sample``, ``record`` and ``send``, each taking the ``Settings``; ``prepare_cycle`` runs the
  first three for the campaigns of one cycle.
* ``validation.validate_campaign``: everything checked before anything runs.
* ``preview``: a few rendered messages per variant; ``console``: the rich tables of a wave.

May import: every domain package. Imported by ``flows`` and the CLI, never by a domain package.
"""
