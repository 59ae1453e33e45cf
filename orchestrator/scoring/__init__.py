"""Scoring models applied at selection: response and uplift models and their registry.

Contracts:

* ``response.ResponseModel`` / ``uplift`` models follow the scikit-learn estimator API
  (``fit`` returns ``self``, learned attributes end in ``_``); ``customers.score_customers`` scores
  customers of the table on column batches, ``customers.apply_score_rules`` keeps the best.
* ``registry``: versioned models with their features, metrics, lineage and the champion per name.

Training from campaign outcomes lives in ``orchestrator.learning``, which sits above success
control; this package only holds what selection needs, so targeting may import it.

May import: ``orchestrator.customers``, ``orchestrator.db``, ``orchestrator.settings``, ``orchestrator.errors``.
"""
