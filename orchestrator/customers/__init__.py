"""The customer table: import from CSV/Parquet, reflection, reads by id.

Contracts:

* ``importer.import_customers(engine, path, ...)``: sniff, validate (errors by line) and bulk upsert.
* ``table.customer_table(engine)``: the reflected table; ``table.frame_of`` / ``among_ids`` read rows
  in column form; ``identifiers.normalise_names`` turns file headers into safe SQL names.

May import: ``orchestrator.db``, ``orchestrator.settings``, ``orchestrator.errors``.
"""
