"""The contact ledger, the source of truth: one row per (wave, customer), batches, send journals, snapshots.

Contracts:

* ``contacts``: waves and contacts (a ``targeting.frame.ContactFrame``) written in bulk in one
  transaction before any send; pending contacts read back as ``ContactChunk`` (customer rows
  plus contact ids, variants, assignees) for the builders; status updates pending -> sent |
  failed | skipped in bulk.
* ``batches``: task-list batches fixed in one transaction with their stored ``webhook-id``.
* ``journal``: the e-mail send journal (exactly-once across a kill, see docs/architecture.md).
* ``snapshots``: each wave's point-in-time feature snapshot; ``suppressions``: hard bounces.
* ``approvals``: a wave's frozen plan (counts, rules and template digests, sample file) and its
  approval; voided when a digest changes (``wave_approvals``).
* ``reasons``: the reason code of every selected customer a wave did not record
  (``snapshots/wave-<id>-reasons.parquet``).

May import: ``orchestrator.targeting``, ``orchestrator.customers``, ``orchestrator.db``,
``orchestrator.settings``, ``orchestrator.errors``, ``channels.base``.
"""
