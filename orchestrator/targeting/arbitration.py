"""Arbitration: which campaign of a cycle gets a customer several of them selected.

Campaigns that run in the same cycle (the same wave key, together or one after another)
contact each customer at most once in that cycle, so no customer gets more contacts than
the contact policy allows (the policy's caps already keep out customers who have no
contact left). A customer wanted by several campaigns goes to:

1. a campaign that already recorded them in this cycle (a wave run earlier with the key);
2. else the campaign with the highest ``priority:``;
3. else the one where the customer's best channel has the highest expected value;
4. else the campaign listed first.

The others lose the customer; ``losses`` counts per (loser, winner) how many, which
``campaign explain`` shows and the ledger keeps (``arbitration_losses``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass
class Arbitration:
    won: list[np.ndarray]  # per campaign: bool mask over its candidates
    losses: dict[tuple[str, str], int] = field(default_factory=dict)  # (loser, winner) -> customers
    # per campaign: the campaign that won each of its candidates it lost (None where it won)
    winners: list[np.ndarray] = field(default_factory=list)

    def lost(self, campaign: str) -> dict[str, int]:
        """Customers ``campaign`` lost, by winner."""
        return {winner: n for (loser, winner), n in self.losses.items() if loser == campaign}


def arbitrate(
    names: Sequence[str],
    priorities: Sequence[int],
    ids: Sequence[Sequence[str] | np.ndarray],
    best_values: Sequence[np.ndarray],
    taken: Mapping[str, str] | None = None,
) -> Arbitration:
    """Decide every contested customer; ``taken`` maps customers recorded earlier in the cycle to their campaign."""
    if not (len(names) == len(priorities) == len(ids) == len(best_values)):
        raise ValueError("names, priorities, ids and best_values need one entry per campaign")
    taken = dict(taken or {})
    if len(names) == 1:  # nothing to weigh: the campaign keeps everyone not recorded earlier in the cycle
        return _alone(names[0], ids[0], taken)
    frames = []
    for i, (cids, values) in enumerate(zip(ids, best_values, strict=True)):
        frames.append(
            pd.DataFrame(
                {
                    "customer": pd.Series(cids, dtype=object),
                    "campaign": i,
                    "position": np.arange(len(cids)),
                    "rank": float(priorities[i]),
                    "value": np.nan_to_num(np.asarray(values, dtype=float), nan=-np.inf),
                }
            )
        )
    earlier = [name for name in dict.fromkeys(taken.values()) if name not in names]
    codes = {name: len(names) + j for j, name in enumerate(earlier)}
    all_names = list(names) + earlier
    if taken:
        frames.append(
            pd.DataFrame(
                {
                    "customer": pd.Series(list(taken), dtype=object),
                    "campaign": [codes.get(c, names.index(c) if c in names else 0) for c in taken.values()],
                    "position": -1,
                    "rank": np.inf,
                    "value": np.inf,
                }
            )
        )
    if not frames:
        return Arbitration([])
    table = pd.concat(frames, ignore_index=True)
    table = table.sort_values(
        ["customer", "rank", "value", "campaign"], ascending=[True, False, False, True], kind="stable"
    )
    first = ~table["customer"].duplicated(keep="first")
    winner = table.loc[first, ["customer", "campaign"]].set_index("customer")["campaign"]
    table["winner"] = table["customer"].map(winner)
    won = []
    winners = []
    names_of = np.asarray(all_names, dtype=object)
    for i, cids in enumerate(ids):
        mask = np.zeros(len(cids), dtype=bool)
        rows = table[(table["campaign"] == i) & (table["position"] >= 0) & (table["winner"] == i)]
        mask[rows["position"].to_numpy()] = True
        won.append(mask)
        winner_of = np.full(len(cids), None, dtype=object)
        beaten = table[(table["campaign"] == i) & (table["position"] >= 0) & (table["winner"] != i)]
        winner_of[beaten["position"].to_numpy()] = names_of[beaten["winner"].to_numpy(dtype=np.int64)]
        winners.append(winner_of)
    lost = table[(table["winner"] != table["campaign"]) & (table["position"] >= 0)]
    counts = lost.groupby(["campaign", "winner"]).size()
    losses = {(all_names[int(a)], all_names[int(b)]): int(n) for (a, b), n in counts.items()}
    return Arbitration(won, losses, winners)


def _alone(name: str, ids: Sequence[str] | np.ndarray, taken: Mapping[str, str]) -> Arbitration:
    """The arbitration of a cycle's only campaign: it loses exactly the customers recorded earlier by others."""
    if not taken:
        return Arbitration([np.ones(len(ids), dtype=bool)], {}, [np.full(len(ids), None, dtype=object)])
    owner = [taken.get(c) for c in ids]
    won = np.fromiter((o is None or o == name for o in owner), dtype=bool, count=len(ids))
    losses: dict[tuple[str, str], int] = {}
    for o in owner:
        if o is not None and o != name:
            losses[(name, o)] = losses.get((name, o), 0) + 1
    winner_of = np.asarray(owner, dtype=object)
    winner_of[won] = None
    return Arbitration([won], losses, [winner_of])
