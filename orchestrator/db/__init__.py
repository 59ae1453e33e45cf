"""The engine's own database: engine, tables, bulk writes, migrations.

Contracts:

* ``engine.connect(settings) -> sa.Engine``: the configured database (SQLite file by default,
  PostgreSQL via ``postgresql+psycopg://``), migrated to the newest Alembic revision on first use;
  ``engine.upgrade(engine)`` is ``campaign db upgrade``. The migrations and ``alembic.ini`` ship
  inside this package (``orchestrator/db/migrations``), so an installed wheel can upgrade.
* ``tables``: the SQLModel/SQLAlchemy tables (waves, contacts, batches, events, models ...).
* ``bulk``: column-oriented inserts (COPY on PostgreSQL, executemany elsewhere) and the staged
  insert-if-new used by every import.

May import: ``orchestrator.settings``, ``orchestrator.errors``.
"""
