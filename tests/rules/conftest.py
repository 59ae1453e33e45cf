"""Fixtures of the rules tests: small customer tables in the test database."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from orchestrator.customers.table import customer_table


@pytest.fixture
def make_customer_table(engine) -> Callable[..., sa.Table]:
    """``make_customer_table(columns, rows)``: a table ``customers`` of ``columns`` holding ``rows``
    (dicts), reflected back from the database as the engine does."""

    def make(columns: list[sa.Column], rows: list[dict]) -> sa.Table:
        metadata = sa.MetaData()
        table = sa.Table("customers", metadata, *columns)
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(table.insert(), rows)
        return customer_table(engine, "customers")

    return make


@pytest.fixture
def write(tmp_path, monkeypatch):
    """Write a rules file into the (temporary) working folder; return its relative path."""
    monkeypatch.chdir(tmp_path)

    def write(text: str, name: str = "campaign.yaml") -> Path:
        path = Path(name)
        path.write_text(text, encoding="utf-8")
        return path

    return write
