"""``customer_table`` reads the columns only, and they are those full reflection gives."""

import pytest
import sqlalchemy as sa

from orchestrator.customers.table import customer_table


def test_customer_table_has_the_columns_of_full_reflection(engine):
    meta = sa.MetaData()
    sa.Table(
        "customers",
        meta,
        sa.Column("customer_id", sa.String(40), primary_key=True),
        sa.Column("age", sa.Integer, nullable=False),
        sa.Column("revenue_12m", sa.Float),
        sa.Column("consent_email", sa.Boolean),
        sa.Column("signup", sa.Date),
        sa.Column("last_seen", sa.DateTime),
        sa.Column("segment", sa.Text),
        sa.Index("ix_customers_segment", "segment"),
    )
    meta.create_all(engine)

    def shape(table: sa.Table) -> list:
        return [(c.name, repr(c.type), c.nullable, c.primary_key) for c in table.c]

    full = sa.Table("customers", sa.MetaData(), autoload_with=engine)
    table = customer_table(engine)
    assert shape(table) == shape(full)
    assert shape(table)[:2] == [("customer_id", repr(full.c.customer_id.type), False, True),
                                ("age", repr(full.c.age.type), False, False)]  # fmt: skip
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one() == 0


def test_customer_table_says_how_to_load_one_when_missing(engine):
    with pytest.raises(LookupError, match="no customer table 'people' yet; load one with `campaign import customers"):
        customer_table(engine, "people")
