"""Off-policy evaluation: what a model's targeting WOULD have achieved on logged, randomised waves.

The logged rows are the treated and control contacts of waves a model was not trained on
(``training_data.training_frame``), each with the channel it got (control: the channel the
mirrored allocation gave it), its arm, its outcome, the propensities with which its arm and its
channel were drawn (``arm_propensity``, ``channel_propensity``) and the channels it was eligible
for (``eligible_channels``).

Within a channel, treated against control is a randomised experiment, so the transformed outcome
``z = y / p`` (treated) or ``-y / p`` (control), with ``p`` the propensity of the row's own arm,
has the channel's effect on that customer as its expectation. A *policy* gives each logged
customer one of its eligible channels or none, as a probability matrix ``P`` (rows: customers,
columns: channels). Its value per customer, in incremental successes, is estimated by

- **IPS** (inverse propensity scoring): ``mean_i P[i, c_i] / q_i * z_i`` (``c_i`` the logged
  channel, ``q_i`` its channel propensity), unbiased where every channel a policy picks could be
  drawn (exploration, ``learning.explore``);
- **DR** (doubly robust, Dudik, Langford and Li 2011): ``mean_i sum_c P[i, c] * t_c(x_i) + P[i,
  c_i] / q_i * (z_i - t_{c_i}(x_i))`` with ``t`` a model of the effects (the reward model,
  trained on other waves): the model fills in what the log cannot show, the log corrects the
  model where it can;

and in net value with each channel's ``value`` and ``cost`` (``value x effect - cost`` per
contact). Intervals are percentile bootstraps over customers (paired for differences, fixed seed).

``allocation_policy`` is the engine's own rule on the logged customers: every eligible channel
valued by ``effect x value - cost``, the customers allocated within budgets equal to the logged
contacts per channel (``targeting.allocation.allocate``), nobody where no channel is worth it.
``random_policy`` contacts the same number per channel at random among the eligible.
``compare`` evaluates a challenger, the champion and random on the same rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from orchestrator.targeting.allocation import allocate

__all__ = [
    "BOOTSTRAP",
    "LEVEL",
    "Comparison",
    "Estimate",
    "LoggedRows",
    "PolicyValue",
    "allocation_policy",
    "compare",
    "evaluate",
    "random_policy",
]

BOOTSTRAP = 400
"""Bootstrap resamples for the intervals."""
LEVEL = 0.95
"""Confidence level of the intervals."""


@dataclass(frozen=True)
class LoggedRows:
    """The logged rows as arrays: channel index (-1: not a campaign channel), arm, outcome, propensities,
    eligibility (``(n, channels)`` booleans) and each channel's value and cost."""

    channels: list[str]
    channel: np.ndarray
    treated: np.ndarray
    outcome: np.ndarray
    arm_propensity: np.ndarray
    channel_propensity: np.ndarray
    eligible: np.ndarray
    value: np.ndarray
    cost: np.ndarray

    @classmethod
    def of(
        cls,
        frame: pd.DataFrame,
        channels: Sequence[str],
        values: Mapping[str, float] | None = None,
        costs: Mapping[str, float] | None = None,
    ) -> LoggedRows:
        """From a training frame; a row without a recorded eligibility is eligible for its own channel only,
        a row without a recorded propensity gets the observed share of its arm (per wave) and channel
        propensity 1 (as allocated)."""
        names = list(channels)
        index = {name: j for j, name in enumerate(names)}
        channel = frame["channel"].map(index).fillna(-1).to_numpy(dtype=np.int64)
        treated = frame["treatment"].to_numpy(dtype=np.int64) == 1
        arm = frame["arm_propensity"].astype(float).to_numpy()
        if np.isnan(arm).any():
            share = frame.groupby("wave")["treatment"].transform("mean").to_numpy(dtype=float)
            arm = np.where(np.isnan(arm), np.where(treated, share, 1 - share), arm)
        q = frame["channel_propensity"].astype(float).to_numpy()
        q = np.where(np.isfinite(q) & (q > 0), q, 1.0)
        eligible = np.zeros((len(frame), len(names)), dtype=bool)
        listed = frame["eligible_channels"] if "eligible_channels" in frame else pd.Series([None] * len(frame))
        for i, (text, own) in enumerate(zip(listed.tolist(), channel.tolist(), strict=True)):
            if isinstance(text, str) and text:
                for name in text.split(","):
                    if name in index:
                        eligible[i, index[name]] = True
            elif own >= 0:
                eligible[i, own] = True
        return cls(
            names,
            channel,
            treated,
            frame["outcome"].to_numpy(dtype=float),
            arm,
            q,
            eligible,
            np.array([float((values or {}).get(c, 1.0)) for c in names]),
            np.array([float((costs or {}).get(c, 0.0)) for c in names]),
        )

    def __len__(self) -> int:
        return len(self.channel)

    def transformed(self) -> np.ndarray:
        """``z``: the outcome over the propensity of the row's own arm, negative for control."""
        p = np.clip(self.arm_propensity, 1e-6, 1.0)
        return np.where(self.treated, self.outcome / p, -self.outcome / p)

    def budgets(self) -> np.ndarray:
        """Logged contacts per channel: the volume a policy may use on these rows."""
        return np.bincount(self.channel[self.channel >= 0], minlength=len(self.channels))


@dataclass(frozen=True)
class Estimate:
    """A value per 1,000 logged customers with its interval."""

    value: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return {"value": round(self.value, 4), "low": round(self.low, 4), "high": round(self.high, 4)}

    def __str__(self) -> str:
        return f"{self.value:,.2f} [{self.low:,.2f}, {self.high:,.2f}]"


@dataclass(frozen=True)
class PolicyValue:
    """A policy's estimated value on the logged rows: incremental successes and net value per 1,000
    customers, by IPS and DR, and how many it contacts per channel."""

    name: str
    successes_ips: Estimate
    successes_dr: Estimate
    value_ips: Estimate
    value_dr: Estimate
    contacts: dict[str, int]

    def as_dict(self) -> dict:
        return {
            "policy": self.name,
            "successes_per_1000": {"ips": self.successes_ips.as_dict(), "dr": self.successes_dr.as_dict()},
            "value_per_1000": {"ips": self.value_ips.as_dict(), "dr": self.value_dr.as_dict()},
            "contacts": self.contacts,
        }


@dataclass
class Comparison:
    """Challenger, champion and random on the same logged rows, and the paired differences
    challenger - champion (net value per 1,000 customers, DR and IPS)."""

    rows: int
    waves: list[str]
    policies: list[PolicyValue]
    difference_dr: Estimate | None = None
    difference_ips: Estimate | None = None
    explored_rows: int = 0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "rows": self.rows,
            "waves": self.waves,
            "explored_rows": self.explored_rows,
            "level": LEVEL,
            "policies": [p.as_dict() for p in self.policies],
            "challenger_minus_champion": {
                "value_per_1000_dr": None if self.difference_dr is None else self.difference_dr.as_dict(),
                "value_per_1000_ips": None if self.difference_ips is None else self.difference_ips.as_dict(),
            },
            "notes": self.notes,
        }

    def table_rows(self) -> list[dict]:
        """One row per policy for a table (CLI, Prefect artifact)."""
        return [
            {
                "policy": p.name,
                "value per 1,000 (DR)": str(p.value_dr),
                "value per 1,000 (IPS)": str(p.value_ips),
                "successes per 1,000 (DR)": str(p.successes_dr),
                "contacts": ", ".join(f"{c} {n:,}" for c, n in p.contacts.items() if n),
            }
            for p in self.policies
        ]


def allocation_policy(effects: np.ndarray, rows: LoggedRows) -> np.ndarray:
    """The engine's allocation on the logged customers (one-hot ``(n, channels)``): each eligible channel
    worth ``effect x value - cost``, at most the logged contacts per channel, nobody where nothing pays."""
    n, k = effects.shape
    values = np.where(rows.eligible, effects * rows.value[None, :] - rows.cost[None, :], np.nan)
    customer, channel = np.nonzero(np.isfinite(values) & (values > 0))
    policy = np.zeros((n, k))
    if not len(customer):
        return policy
    budgets = rows.budgets()
    result = allocate(
        customer.astype(np.int64),
        channel.astype(np.int64),
        values[customer, channel],
        [int(b) for b in budgets],
        n_customers=n,
    )
    chosen = np.asarray(result.option)
    got = chosen >= 0
    policy[np.flatnonzero(got), channel[chosen[got]]] = 1.0
    return policy


def random_policy(rows: LoggedRows) -> np.ndarray:
    """The logged number of contacts per channel spread evenly over the customers eligible for it, one
    channel per customer on average (``(n, channels)`` probabilities)."""
    budgets = rows.budgets().astype(float)
    eligible = rows.eligible.astype(float)
    rate = np.divide(budgets, eligible.sum(axis=0), out=np.zeros(len(budgets)), where=eligible.sum(axis=0) > 0)
    policy = eligible * np.minimum(rate, 1.0)[None, :]
    total = policy.sum(axis=1, keepdims=True)
    return np.where(total > 1, policy / np.maximum(total, 1e-12), policy)


def _contributions(policy: np.ndarray, rows: LoggedRows, reward: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per row: IPS and DR terms of incremental successes and of net value."""
    n = len(rows)
    z = rows.transformed()
    logged = rows.channel
    own = np.zeros(n)
    ok = logged >= 0
    own[ok] = policy[np.flatnonzero(ok), logged[ok]] / rows.channel_propensity[ok]
    reward = np.nan_to_num(reward, nan=0.0)
    own_reward = np.zeros(n)
    own_reward[ok] = reward[np.flatnonzero(ok), logged[ok]]
    own_value = np.zeros(n)
    own_value[ok] = rows.value[logged[ok]]
    cost = policy @ rows.cost
    successes_ips = own * z
    successes_dr = (policy * reward).sum(axis=1) + own * (z - own_reward)
    value_ips = own * z * own_value - cost
    value_dr = (policy * reward * rows.value[None, :]).sum(axis=1) + own * own_value * (z - own_reward) - cost
    return successes_ips, successes_dr, value_ips, value_dr


def _bootstrap(terms: Sequence[np.ndarray], seed: int) -> list[Estimate]:
    """Mean per 1,000 rows and percentile interval of each term, on the same resamples."""
    n = len(terms[0])
    rng = np.random.default_rng(seed)
    means = np.zeros((BOOTSTRAP, len(terms)))
    stacked = np.column_stack(terms) * 1000.0
    for b in range(BOOTSTRAP):
        means[b] = stacked[rng.integers(0, n, n)].mean(axis=0)
    alpha = (1 - LEVEL) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha], axis=0)
    point = stacked.mean(axis=0)
    return [Estimate(float(p), float(lo), float(hi)) for p, lo, hi in zip(point, low, high, strict=True)]


def evaluate(name: str, policy: np.ndarray, rows: LoggedRows, reward: np.ndarray, seed: int = 0) -> PolicyValue:
    """One policy's estimated value on the logged rows (see the module docstring)."""
    successes_ips, successes_dr, value_ips, value_dr = _bootstrap(_contributions(policy, rows, reward), seed)
    contacts = {c: int(round(policy[:, j].sum())) for j, c in enumerate(rows.channels)}
    return PolicyValue(name, successes_ips, successes_dr, value_ips, value_dr, contacts)


def compare(
    rows: LoggedRows,
    reward: np.ndarray,
    challenger: tuple[str, np.ndarray],
    champion: tuple[str, np.ndarray] | None,
    *,
    waves: Sequence[str] = (),
    seed: int = 0,
) -> Comparison:
    """Challenger, champion (if any) and random on the same rows; the paired difference challenger - champion."""
    if not len(rows):
        raise ValueError("off-policy evaluation needs logged rows; there are none")
    explored = int(np.count_nonzero(rows.channel_propensity < 0.5))
    policies = [evaluate(challenger[0], challenger[1], rows, reward, seed)]
    if champion is not None:
        policies.append(evaluate(champion[0], champion[1], rows, reward, seed))
    policies.append(evaluate("random", random_policy(rows), rows, reward, seed))
    result = Comparison(len(rows), list(waves), policies, explored_rows=explored)
    if champion is not None:
        mine = _contributions(challenger[1], rows, reward)
        theirs = _contributions(champion[1], rows, reward)
        dr, ips = _bootstrap([mine[3] - theirs[3], mine[2] - theirs[2]], seed)
        result.difference_dr, result.difference_ips = dr, ips
    if explored == 0:
        result.notes.append(
            "no explored contacts on these waves: the estimates rest on the model where a policy differs from "
            "what was done (learning.explore gives the log other channels)"
        )
    return result
