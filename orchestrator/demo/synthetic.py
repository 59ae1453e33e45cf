"""A realistic synthetic customer base for demos, tests and benchmarks (no real people).

Columns: customer_id, first_name, last_name, email, phone, age, region, segment,
revenue_12m, recency_days, consent_email, consent_phone, territory. Addresses use the
reserved example domains; about 0.5% of e-mail addresses are malformed and 1% are missing,
as in real data. Generation is vectorised (numpy) and reproducible from the seed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

FIRST_NAMES = (
    "Anna Ben Clara David Emma Felix Greta Hannah Ida Jonas Karl Lena Max Mia Noah Olivia Paul "
    "Quentin Rosa Sophie Tom Ulla Viktor Wilma Xaver Yara Zoe Amelie Bruno Carla Dario Elif Finn "
    "Gina Hugo Ines Jan Kira Luca Marta Nils Oskar Pia Rafael Sara Timo Vera Aylin Mehmet Ewa Piotr"
).split()
LAST_NAMES = (
    "Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Koch Richter Klein "
    "Wolf Schröder Neumann Schwarz Braun Zimmermann Krüger Hofmann Hartmann Lange Schmitt Werner "
    "Krause Meier Lehmann Schmid Schulze Maier Köhler Herrmann König Walter Mayer Huber Kaiser Fuchs "
    "Peters Lang Scholz Möller Weiß Jung Hahn Vogel Friedrich Keller Günther Yilmaz Kowalski Nowak"
).split()
REGIONS = np.array(["North", "South", "East", "West", "Central"])
REGION_WEIGHTS = np.array([0.22, 0.24, 0.16, 0.23, 0.15])
SEGMENTS = np.array(["gold", "silver", "bronze"])
SEGMENT_WEIGHTS = np.array([0.12, 0.33, 0.55])
DOMAINS = np.array(["example.com", "example.org", "example.net", "mail.example.com"])


def _ascii(names: list[str]) -> np.ndarray:
    table = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue"})
    return np.array([n.translate(table).lower() for n in names])


def customers(n: int, seed: int = 7) -> pa.Table:
    """``n`` synthetic customers as an Arrow table."""
    rng = np.random.default_rng(seed)
    first_idx = rng.integers(0, len(FIRST_NAMES), n)
    last_idx = rng.integers(0, len(LAST_NAMES), n)
    first = np.array(FIRST_NAMES)[first_idx]
    last = np.array(LAST_NAMES)[last_idx]
    ids = np.char.add("C", np.char.zfill(np.arange(1, n + 1).astype(str), 7))
    local = np.char.add(np.char.add(_ascii(FIRST_NAMES)[first_idx], "."), _ascii(LAST_NAMES)[last_idx])
    local = np.char.add(local, np.arange(1, n + 1).astype(str))
    email = np.char.add(np.char.add(local, "@"), DOMAINS[rng.integers(0, len(DOMAINS), n)]).astype(object)
    broken = rng.random(n) < 0.005
    email[broken] = np.char.add(local[broken], "@").astype(object)  # malformed: no domain
    email[rng.random(n) < 0.01] = None
    phone = np.char.add("+49 30 ", rng.integers(1_000_000, 9_999_999, n).astype(str)).astype(object)
    phone[rng.random(n) < 0.15] = None
    region_idx = rng.choice(len(REGIONS), n, p=REGION_WEIGHTS)
    segment = SEGMENTS[rng.choice(len(SEGMENTS), n, p=SEGMENT_WEIGHTS)]
    revenue_scale = np.select([segment == "gold", segment == "silver"], [2500.0, 900.0], 250.0)
    revenue = np.round(rng.lognormal(0, 0.6, n) * revenue_scale, 2)
    recency = np.minimum(rng.exponential(120, n).astype(np.int64), 1095)
    territory = np.char.add(np.char.add("T", region_idx.astype(str)), rng.integers(1, 4, n).astype(str))
    return pa.table(
        {
            "customer_id": ids,
            "first_name": first,
            "last_name": last,
            "email": pa.array(email, type=pa.string()),
            "phone": pa.array(phone, type=pa.string()),
            "age": rng.integers(18, 86, n),
            "region": REGIONS[region_idx],
            "segment": segment,
            "revenue_12m": revenue,
            "recency_days": recency,
            "consent_email": rng.random(n) < 0.82,
            "consent_phone": rng.random(n) < 0.6,
            "territory": territory,
        }
    )


def write_csv(path: Path, n: int, seed: int = 7) -> Path:
    """Write ``n`` synthetic customers to a CSV file and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pacsv.write_csv(customers(n, seed), path)
    return path
