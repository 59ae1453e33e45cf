"""One campaign wave as plain stages: prepare, select, plan, render, record, send.

Contracts:

* ``stages``: ``prepare`` (validate rules and templates), ``open_wave``, ``select_candidates``
  (``filter_candidates`` + ``score_candidates``), ``plan``, ``render_selection``, ``record`` and
  ``send_pending`` (from ``orchestrator.delivery.sending``), each taking the ``Settings``;
  ``prepare_cycle`` runs prepare, select and plan for the campaigns of one cycle, recording nothing.
* ``validation.validate_campaign``: everything checked before anything runs.
* ``preview``: a few rendered messages per variant; ``console``: the rich tables of a wave.
* ``approval.gate``: with ``approval: required``, may the recorded wave send (freezes, voids, re-freezes
  its plan); ``approval.approve``.
* ``explain.explain_customer``: one customer's path through the funnel, plan and ledger.

May import: every domain package. Imported by ``flows`` and the CLI, never by a domain package.
"""
