"""Data of the rules tests."""

from __future__ import annotations

# The columns of a customer table like the demo one and their kinds, as rules files are
# validated against them without a database.
DEMO_COLUMNS = {
    "customer_id": "text",
    "first_name": "text",
    "last_name": "text",
    "email": "text",
    "phone": "text",
    "age": "integer",
    "region": "text",
    "segment": "text",
    "revenue_12m": "number",
    "recency_days": "integer",
    "consent_email": "boolean",
    "consent_phone": "boolean",
    "territory": "text",
}
