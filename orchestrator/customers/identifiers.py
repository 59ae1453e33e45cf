"""Column names from campaign managers' files turned into safe SQL identifiers.

``normalise_names(["Customer ID", "emp.var.rate", "2nd phone", "", "Name", "name"])`` gives
``["customer_id", "emp_var_rate", "c_2nd_phone", "col_4", "name", "name_2"]``: lowercase ASCII
(accents dropped), every run of other characters one ``_``, no leading or trailing ``_``, a
``c_`` prefix before a leading digit, ``col_N`` (1-based position) for a name left empty,
duplicates numbered from ``_2``, at most 63 characters (PostgreSQL's limit). Reserved words
such as ``default`` stay as they are: the engine always quotes identifiers.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

MAX_LENGTH = 63

_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


def normalise_name(name: str, position: int) -> str:
    """``name`` as a safe identifier (not yet de-duplicated); ``position`` is 1-based, for ``col_N``."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    result = _NOT_ALNUM.sub("_", ascii_name.lower()).strip("_")
    if not result:
        result = f"col_{position}"
    elif result[0].isdigit():
        result = f"c_{result}"
    return result[:MAX_LENGTH].rstrip("_")


def normalise_names(names: Sequence[str], *, reserved: Iterable[str] = ()) -> list[str]:
    """Every name normalised and made unique, also against the ``reserved`` names."""
    taken = set(reserved)
    result = []
    for position, name in enumerate(names, start=1):
        base = normalise_name(name, position)
        candidate, number = base, 1
        while candidate in taken:
            number += 1
            suffix = f"_{number}"
            candidate = base[: MAX_LENGTH - len(suffix)] + suffix
        taken.add(candidate)
        result.append(candidate)
    return result
