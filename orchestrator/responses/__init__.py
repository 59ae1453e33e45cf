"""What flows back: the signed response API, event ingest, conversions and historical results.

Contracts:

* ``api.create_app(settings)``: FastAPI app for ``POST /v1/outcomes`` (Standard Webhooks per source),
  ``POST /v1/erasures``, the open pixel, click redirects, one-click unsubscribe and ``/healthz``. It wires
  the route groups ``outcome_routes``, ``erasure_routes``, ``link_routes`` (also ``click_url``) and
  ``unsubscribe_routes``, built on ``webhook_auth`` (signature check per source), ``api_models`` (the
  bodies), ``api_docs`` (what ``/docs`` shows), ``pages`` (HTML answers) and ``faults`` (logging).
* ``ingest``: response events, idempotent by (source, event id), rejected per item with a reason.
* ``conversions`` / ``results_import``: bulk, idempotent imports.

May import: ``orchestrator.delivery``, ``orchestrator.ledger`` and everything below them.
"""
