"""How work runs: chunks of customers, the ``Mapper`` that runs them, progress bars.

Contracts:

* ``chunks.Mapper``: called with a chunk function and its argument tuples, yields the results in
  call order; ``chunks.in_process`` runs them in this process. ``flows.chunk_runner`` provides the
  Prefect one. ``chunks.id_ranges`` cuts disjoint contact-id ranges in one query.
* ``progress.progress(description, total)``: a rich progress bar, silent unless a command enables it.

May import: ``orchestrator.settings``, ``orchestrator.errors``.
"""
