"""Filters for campaign managers' templates, added to every template environment.

Contract:

- ``FILTERS`` maps each filter's name in templates to its function; ``orchestrator.templates.loader``
  adds them to Jinja's built-in filters (``title``, ``upper``, ``default``, ``round``, ...).
- A filter given a value it cannot format raises ``_FilterError`` (a Jinja
  ``TemplateRuntimeError``) whose message names the filter and the value's type, never the
  value, so it can be shown as the reason of a ``RenderError``.

    {{ revenue_12m|money }}                    1234.5 -> "1,234.50"
    {{ revenue_12m|money(0) }}                 1234.5 -> "1,234"
    {{ revenue_12m|money(thousands=".", decimal=",") }}  -> "1.234,50"
    {{ 12345|number }}                         -> "12,345"
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from jinja2.exceptions import TemplateRuntimeError

__all__ = ["FILTERS", "money", "number"]


class _FilterError(TemplateRuntimeError):
    """A filter was given a value it cannot format; the message names types, never values."""


def _number(value: Any, places: int = 0, thousands: str = ",", decimal: str = ".", *, _name: str = "number") -> str:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        kind = "None" if value is None else type(value).__name__
        raise _FilterError(
            f"{_name}: expected a number, got {kind} (use |default(0, true) or an {{% if %}} for empty values)"
        )
    if isinstance(value, float) and not math.isfinite(value) or isinstance(value, Decimal) and not value.is_finite():
        raise _FilterError(f"{_name}: expected a finite number")
    if not isinstance(places, int) or isinstance(places, bool) or not 0 <= places <= 10:
        raise _FilterError(f"{_name}: places must be a whole number from 0 to 10")
    text = format(value, f",.{places}f")
    if (thousands, decimal) != (",", "."):
        text = text.translate({ord(","): "\0", ord("."): decimal}).replace("\0", thousands)
    return text


def money(value: Any, places: int = 2, thousands: str = ",", decimal: str = ".") -> str:
    """``1234.5`` -> ``"1,234.50"``.

    ``money(0)`` for whole units, ``thousands="."``/``decimal=","`` for German style.
    """
    return _number(value, places, thousands, decimal, _name="money")


def number(value: Any, places: int = 0, thousands: str = ",", decimal: str = ".") -> str:
    """``12345`` -> ``"12,345"``."""
    return _number(value, places, thousands, decimal, _name="number")


FILTERS = {"money": money, "number": number}
