"""How well the demo's multichannel campaign targets, in the demo's world whose true effects are known.

Before a wave, ``Audience.of`` takes the campaign's audience as planning sees it (every customer the
rules and the contact policy allow, each channel's eligibility, the territory); after the wave,
``Audience.ratios`` sets the channels the engine gave its treated customers (from the ledger) against
random targeting with the same contacts per pool and an oracle that knows the true effects and fills
today's capacity by true ``effect x value - cost`` (``orchestrator.demo.oracle``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import sqlalchemy as sa

from orchestrator.db.engine import connect
from orchestrator.demo.oracle import TargetingRatios, expected_buyers, oracle_targeting, pool_of, random_targeting
from orchestrator.demo.simulation import HiddenWorld
from orchestrator.rules.kinds import channel_kind
from orchestrator.settings import Settings

__all__ = ["Audience"]


@dataclass(frozen=True)
class Audience:
    """A campaign's audience on a wave day: ids, eligibility per channel, territory and the day's budgets."""

    campaign: str
    wave: str
    ids: np.ndarray
    eligible: dict[str, np.ndarray]
    territory: np.ndarray
    budgets: dict[str, int]
    values: dict[str, float]
    costs: dict[str, float]

    @classmethod
    def of(cls, settings: Settings, prepared) -> Audience:
        """The audience of a prepared wave (``wave.stages.prepare``), before it is run."""
        from orchestrator.targeting.capacity import day_pools, load_capacity
        from orchestrator.targeting.planning import ELIGIBLE, TERRITORY
        from orchestrator.wave import stages

        candidates = stages.filter_candidates(settings, prepared)
        n = len(candidates.ids)
        raw = candidates.extra.get(TERRITORY)
        territory = np.array(["" if t is None else str(t) for t in raw] if raw is not None else [""] * n, dtype=object)
        spec = prepared.spec
        eligible = {}
        for name in spec.channels.names():
            ok = np.asarray(candidates.extra[ELIGIBLE + name], dtype=float) > 0
            if channel_kind(name).pool == "territory":
                ok &= territory != ""
            eligible[name] = ok
        pools = day_pools(load_capacity(settings.paths.rules_dir), {})
        budgets = {name: cap for name, cap in zip(pools.names, pools.capacities, strict=True) if cap is not None}
        sections = dict(spec.channels.items())
        return cls(
            spec.name,
            prepared.wave_key,
            np.asarray(candidates.ids, dtype=object).astype(str),
            eligible,
            territory,
            budgets,
            {c: float(s.value) for c, s in sections.items()},
            {c: float(s.cost) for c, s in sections.items()},
        )

    def ratios(self, settings: Settings, world: HiddenWorld, rng: np.random.Generator) -> TargetingRatios:
        """The engine's treated contacts of this wave against random targeting and the oracle."""
        from orchestrator.ledger import contacts as ledger

        c, w, k = ledger.contacts, ledger.waves, ledger.campaigns
        with connect(settings).connect() as conn:
            rows = pd.read_sql(
                sa.select(c.c.customer_id, c.c.channel)
                .join_from(c, w, w.c.id == c.c.wave_id)
                .join(k, k.c.id == w.c.campaign_id)
                .where(k.c.name == self.campaign, w.c.key == self.wave, c.c.arm == "treatment"),
                conn,
            )
        effects = {name: world.true_effect(self.ids, name) for name in self.eligible}
        positions = pd.Index(self.ids).get_indexer(pd.Index(rows["customer_id"].astype(str)))
        known = positions >= 0
        positions, channels = positions[known], rows["channel"].to_numpy(dtype=object)[known]
        counts: dict[str, int] = {}
        for channel, territory in zip(channels.tolist(), self.territory[positions].tolist(), strict=True):
            counts[pool_of(channel, territory)] = counts.get(pool_of(channel, territory), 0) + 1
        at_random = random_targeting(counts, self.eligible, self.territory, rng)
        best = oracle_targeting(self.budgets, self.eligible, self.territory, effects, self.values, self.costs)
        return TargetingRatios(
            float(expected_buyers(effects, positions, channels).sum()),
            float(expected_buyers(effects, *at_random).sum()),
            float(expected_buyers(effects, *best).sum()),
        )
