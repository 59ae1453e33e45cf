"""Rendering and dispatch: message builders, e-mail sending by journal, task lists by batch.

Contracts:

* ``prepared.PreparedWave``: a validated campaign with its compiled templates (picklable).
* ``messages`` / ``tasks``: build a channel's outbound items from ledger rows and templates.
* ``sending.send``: e-mail chunks by contact-id range, task-list chunks by batch, through the
  adapters of ``channels``; ``dispatch``: deliver fixed batches exactly once.

May import: ``channels``, ``orchestrator.ledger``, ``orchestrator.templates``, ``orchestrator.rules``,
and everything below them.
"""
