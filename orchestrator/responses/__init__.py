"""What flows back: the signed response API, event ingest, conversions and historical results.

Contracts:

* ``api.create_app(settings)``: FastAPI app for ``POST /v1/outcomes`` (Standard Webhooks per source),
  the open pixel, click redirects and one-click unsubscribe.
* ``ingest``: response events, idempotent by (source, event id), rejected per item with a reason.
* ``conversions`` / ``results_import``: bulk, idempotent imports.

May import: ``orchestrator.delivery``, ``orchestrator.ledger`` and everything below them.
"""
