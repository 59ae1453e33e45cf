"""Simulated worlds of the learning benchmark: hidden base purchase probabilities and hidden
incremental effects PER CHANNEL, computed from the customers' features (``orchestrator.demo.synthetic``
columns). The engine never sees them; ``bench/learning_bench.py`` draws outcomes from them and
measures targeting against them.

Each world mixes different shapes: interactions of features, thresholds, channel-specific
effects, negative effects ("sleeping dogs": a contact makes them less likely to buy) and large
groups with no effect at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

CHANNELS = ("email", "call_center", "field_force")

Effects = Callable[[pd.DataFrame], dict[str, np.ndarray]]


@dataclass(frozen=True)
class World:
    """A named world: the seed of its customers, its base probability and per-channel effects."""

    name: str
    seed: int
    description: str
    base: Callable[[pd.DataFrame], np.ndarray]
    effects: Effects

    def truth(self, customers: pd.DataFrame) -> pd.DataFrame:
        """Per customer (index customer_id): ``base`` and one ``effect_<channel>`` column per channel."""
        effects = self.effects(customers)
        frame = pd.DataFrame(
            {"base": np.clip(self.base(customers), 0.0, 1.0)}, index=customers["customer_id"].astype(str)
        )
        for channel in CHANNELS:
            frame[f"effect_{channel}"] = np.asarray(effects[channel], dtype=float)
        return frame


def _gold(c: pd.DataFrame) -> np.ndarray:
    return (c["segment"] == "gold").to_numpy()


def _valued(c: pd.DataFrame) -> np.ndarray:
    return c["segment"].isin(["gold", "silver"]).to_numpy()


def _young_valued(c: pd.DataFrame) -> dict[str, np.ndarray]:
    """Interaction of age and segment; the over-70s are annoyed by calls; bronze customers: no effect."""
    age = c["age"].to_numpy()
    young, valued, gold = age < 45, _valued(c), _gold(c)
    rich = c["revenue_12m"].to_numpy() > 3000
    return {
        "email": np.where(young & valued, 0.06, np.where(valued, 0.01, 0.0)),
        "call_center": np.where(valued & (age >= 40) & (age <= 65), 0.12, np.where(age > 70, -0.06, 0.0)),
        "field_force": np.where(gold & rich, 0.30, np.where(gold, 0.05, 0.0)),
    }


def _regional(c: pd.DataFrame) -> dict[str, np.ndarray]:
    """Channel-specific by region: e-mail works in the North and West, visits in the South and East,
    calls harm the under-30s; a revenue threshold switches the visit effect on."""
    region = c["region"].to_numpy()
    age = c["age"].to_numpy()
    revenue = c["revenue_12m"].to_numpy()
    north_west = np.isin(region, ["North", "West"])
    south_east = np.isin(region, ["South", "East"])
    return {
        "email": np.where(north_west & (age < 60), 0.05, 0.0),
        "call_center": np.where(age < 30, -0.05, np.where(region == "Central", 0.10, 0.02)),
        "field_force": np.where(south_east & (revenue > 1500), 0.22, np.where(revenue > 1500, -0.04, 0.0)),
    }


def _lapsed(c: pd.DataFrame) -> dict[str, np.ndarray]:
    """Recency thresholds: lapsed customers react to calls, recent ones are annoyed by them; the
    e-mail effect grows smoothly with revenue; visits move only quiet gold customers."""
    recency = c["recency_days"].to_numpy()
    revenue = c["revenue_12m"].to_numpy()
    lapsed = (recency >= 120) & (recency <= 400)
    return {
        "email": 0.07 * np.minimum(revenue / 4000.0, 1.0),
        "call_center": np.where(lapsed, 0.14, np.where(recency < 30, -0.04, 0.0)),
        "field_force": np.where(_gold(c) & (recency > 180), 0.35, 0.0),
    }


def _smooth(c: pd.DataFrame) -> dict[str, np.ndarray]:
    """Effects that change smoothly with the features (no thresholds): e-mail fades with age, calls grow with
    revenue and fall with recency, visits rise with revenue for the over-50s and annoy the young."""
    age = c["age"].to_numpy().astype(float)
    revenue = c["revenue_12m"].to_numpy()
    recency = c["recency_days"].to_numpy().astype(float)
    saturating = revenue / (revenue + 1500.0)
    return {
        "email": 0.08 / (1.0 + np.exp((age - 45.0) / 8.0)),
        "call_center": 0.22 * saturating * np.exp(-recency / 250.0) - 0.02,
        "field_force": np.where(age >= 50, 0.45 * saturating, -0.05 * saturating),
    }


def _sleeping_dogs(c: pd.DataFrame) -> dict[str, np.ndarray]:
    """Most contacts harm: e-mail annoys recent buyers, calls annoy everyone but silver customers in the
    Central and East regions, visits work only for gold customers of a few territories."""
    region = c["region"].to_numpy()
    segment = c["segment"].to_numpy()
    recency = c["recency_days"].to_numpy()
    territory = c["territory"].to_numpy().astype(str)
    silver_ce = (segment == "silver") & np.isin(region, ["Central", "East"])
    return {
        "email": np.where(recency < 60, -0.03, np.where(segment == "bronze", 0.0, 0.03)),
        "call_center": np.where(silver_ce, 0.16, -0.04),
        "field_force": np.where((segment == "gold") & np.isin(territory, ["T01", "T12", "T22", "T31"]), 0.40, -0.03),
    }


def _consent_age(c: pd.DataFrame) -> dict[str, np.ndarray]:
    """Effects that depend on what the customer agreed to and on age bands: e-mail works for those who
    also gave phone consent (engaged customers), calls for the 55-75s, visits for the 30-45s with revenue."""
    age = c["age"].to_numpy()
    engaged = c["consent_phone"].to_numpy().astype(bool)
    revenue = c["revenue_12m"].to_numpy()
    return {
        "email": np.where(engaged, 0.05, 0.005),
        "call_center": np.where((age >= 55) & (age <= 75), 0.13, np.where(age < 25, -0.05, 0.01)),
        "field_force": np.where((age >= 30) & (age <= 45) & (revenue > 2000), 0.33, 0.02),
    }


WORLDS = {
    world.name: world
    for world in (
        World(
            "young-valued",
            101,
            "age x segment interaction, annoyed over-70s on calls, gold x revenue threshold for visits",
            lambda c: 0.03 + 0.03 * _gold(c),
            _young_valued,
        ),
        World(
            "regional",
            202,
            "channel effects by region, calls harm the under-30s, visits harm rich customers outside South/East",
            lambda c: 0.04 + 0.02 * (c["region"] == "South").to_numpy(),
            _regional,
        ),
        World(
            "lapsed",
            303,
            "recency thresholds: calls move lapsed customers and annoy recent ones, e-mail grows with revenue",
            lambda c: 0.02 + 0.04 * (c["recency_days"].to_numpy() < 60),
            _lapsed,
        ),
        World(
            "smooth",
            404,
            "smooth effects without thresholds: e-mail fades with age, calls grow with revenue, visits by age",
            lambda c: 0.03 + 0.00001 * c["revenue_12m"].to_numpy(),
            _smooth,
        ),
        World(
            "sleeping-dogs",
            505,
            "most contacts harm; calls help silver customers in two regions, visits gold ones in four territories",
            lambda c: 0.05 + 0.02 * (c["segment"] == "gold").to_numpy(),
            _sleeping_dogs,
        ),
        World(
            "consent-age",
            606,
            "e-mail works for customers who also gave phone consent, calls for the 55-75s, visits for rich 30-45s",
            lambda c: 0.04 - 0.01 * (c["age"].to_numpy() > 60),
            _consent_age,
        ),
    )
}
