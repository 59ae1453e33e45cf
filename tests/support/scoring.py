"""Data of the scoring tests: synthetic customers with a known response signal."""

from __future__ import annotations

import numpy as np
import pandas as pd


def synthetic_customers(n: int = 3000, seed: int = 7) -> pd.DataFrame:
    """Customers whose response depends on age, segment and a yes/no flag; some values missing."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, n).astype(float)
    segment = rng.choice(["gold", "silver", "bronze", "tin"], n, p=[0.2, 0.3, 0.4, 0.1]).astype(object)
    member = rng.random(n) < 0.4
    logit = (
        -1.5
        + 0.06 * (age - 50)
        + np.where(segment == "gold", 2.0, 0.0)
        - np.where(segment == "tin", 1.0, 0.0)
        + 1.2 * member
    )
    responded = rng.random(n) < 1 / (1 + np.exp(-logit))
    age[rng.random(n) < 0.08] = np.nan
    segment[rng.random(n) < 0.05] = None
    return pd.DataFrame(
        {
            "customer_id": [f"c{i:05d}" for i in range(n)],
            "age": age,
            "segment": segment,
            "member": member,
            "noise": rng.normal(size=n),
            "call_seconds": np.where(responded, 300, 60) + rng.integers(0, 30, n),  # known only afterwards
            "responded": np.where(responded, "yes", "no"),
        }
    )
