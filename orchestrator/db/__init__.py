"""The engine's own database: engine, tables, bulk writes, migrations.

Contracts:

* ``engine.connect(settings) -> sa.Engine``: the configured database (SQLite file by default,
  PostgreSQL via ``postgresql+psycopg://``), migrated to the newest Alembic revision on first use;
  ``engine.upgrade(engine)`` is ``campaign db upgrade``. The migrations and ``alembic.ini`` ship
  inside this package (``orchestrator/db/migrations``), so an installed wheel can upgrade.
* ``tables``: the SQLModel/SQLAlchemy tables (waves, contacts, batches, events, models ...).
* ``bulk``: column-oriented inserts (COPY on PostgreSQL, executemany elsewhere) and the staged
  insert-if-new used by every import.
* ``audit``: the audit trail, table ``audit_events`` (migration 0007): append-only (the database
  refuses UPDATE and DELETE), one row per action with ``occurred_at``, ``actor`` (who asked),
  ``action`` (e.g. ``erase``), ``subject`` (what, identifying no person) and ``counts`` (JSON,
  rows affected by kind); never personal data. ``audit.record(conn, ...)`` appends in the
  caller's transaction; ``audit.events(engine, action=, campaign=, since=)`` reads. Recorded:
  validations, approvals, wave start/finish, erasures, suppression imports, model promotions,
  deployment changes (``audit.ACTIONS``); ``campaign`` and ``details`` (short non-personal facts such
  as digests) came with migration 0009.

May import: ``orchestrator.settings``, ``orchestrator.errors``.
"""
