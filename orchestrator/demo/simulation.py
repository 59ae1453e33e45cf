"""A simulated world for the demo: customers with hidden behaviour, and the channel systems' side.

Nothing here is part of the engine. The demo uses it to show the loop closing without real
customers: ``HiddenWorld`` decides, from rules the engine never sees, who buys with and
without being contacted on each channel; ``SimulatedChannelSystem`` plays a call center or a
field force that works through the task lists it received and posts the outcomes back to the
response API, signed like a real system would; ``simulate_email_reactions`` clicks tracked
links in some of the e-mails the SMTP sink received.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from email import policy
from email.parser import BytesParser
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from standardwebhooks import Webhook

CHANNEL_EFFECT = {"email": 0.10, "call_center": 0.12, "field_force": 0.20}
"""Extra purchase probability of a contact on each channel, for the customers it moves most."""
WORLD_COLUMNS = ("customer_id", "age", "segment", "recency_days")
"""The customer columns the hidden world is made of."""


@dataclass
class HiddenWorld:
    """Per customer: the chance to buy anyway, and what a contact on each channel adds (never shown to
    the engine). Each channel moves other customers: e-mail the young gold and silver customers, a call
    the valued 40 to 65 year olds (and annoys the over-70s), a visit the gold customers who have gone
    quiet (no purchase for half a year)."""

    base: pd.Series  # customer_id -> probability of buying without a contact
    moved: pd.Series  # customer_id -> how strongly an e-mail moves them (0 = not at all, < 0 = annoyed)
    effects: dict[str, pd.Series]  # channel -> customer_id -> extra purchase probability of a contact

    @classmethod
    def from_customers(cls, customers: pd.DataFrame) -> HiddenWorld:
        ids = customers["customer_id"].astype(str)
        age = customers["age"].to_numpy()
        gold = (customers["segment"] == "gold").to_numpy()
        valued = customers["segment"].isin(["gold", "silver"]).to_numpy()
        young = age < 45
        quiet = customers["recency_days"].to_numpy() > 180
        base = 0.03 + 0.03 * gold
        moved = np.where(young & valued, 1.0, np.where(valued, 0.25, np.where(age > 70, -0.2, 0.0)))
        call = np.where(valued & (age >= 40) & (age <= 65), 1.0, np.where(age > 70, -0.3, 0.0))
        visit = np.where(gold & quiet, 1.6, np.where(gold, 0.2, 0.0))
        effects = {
            "email": CHANNEL_EFFECT["email"] * moved,
            "call_center": CHANNEL_EFFECT["call_center"] * call,
            "field_force": CHANNEL_EFFECT["field_force"] * visit,
        }
        return cls(
            pd.Series(base, index=ids),
            pd.Series(moved, index=ids),
            {c: pd.Series(e, index=ids) for c, e in effects.items()},
        )

    def purchase_probability(self, customer_ids, arms, channels) -> np.ndarray:
        ids = pd.Index([str(c) for c in customer_ids])
        treated = np.asarray(arms) == "treatment"
        channels = np.asarray(channels, dtype=object)
        lift = np.zeros(len(ids))
        for channel, effect in self.effects.items():
            mask = treated & (channels == channel)
            lift[mask] = effect.reindex(ids[mask]).to_numpy()
        return np.clip(self.base.reindex(ids).to_numpy() + lift, 0.0, 1.0)

    def true_effect(self, customer_ids, channel: str = "email") -> np.ndarray:
        return self.effects[channel].reindex(pd.Index([str(c) for c in customer_ids])).to_numpy()


def purchases(world: HiddenWorld, contacts: pd.DataFrame, day: date, rng: np.random.Generator, path: Path) -> Path:
    """A conversions file: who of ALL customers bought in the 30 days after ``day``: the wave's treated
    customers with their channel's effect, everyone else (control groups, customers the wave did not
    contact) at their base rate, as purchases happen in the real world; the customers a wave passed
    over are training rows of the no-contact arm, so they must buy too."""
    ids = contacts["customer_id"].astype(str)
    others = world.base.index.difference(pd.Index(ids))
    everyone = pd.concat([ids, pd.Series(others, dtype=object)], ignore_index=True)
    arms = np.concatenate([contacts["arm"].to_numpy(dtype=object), np.full(len(others), "none", dtype=object)])
    channels = np.concatenate([contacts["channel"].to_numpy(dtype=object), np.full(len(others), None, dtype=object)])
    p = world.purchase_probability(everyone, arms, channels)
    buyers = everyone[rng.random(len(everyone)) < p]
    lines = ["customer_id,occurred_at,amount,product"]
    for customer_id in buyers:
        when = datetime.combine(day + timedelta(days=int(rng.integers(1, 30))), time(12), tzinfo=UTC)
        lines.append(f"{customer_id},{when.isoformat()},{rng.gamma(2.0, 60.0):.2f},deposit")
    path.write_text("\n".join(lines) + "\n")
    return path


class SimulatedChannelSystem:
    """A call center or field force: works through received task lists, posts outcomes back, signed."""

    def __init__(self, name: str, secret: str, api_url: str, world: HiddenWorld, rng: np.random.Generator):
        self.name, self.secret, self.api_url = name, secret, api_url.rstrip("/")
        self.world, self.rng = world, rng
        self.done: set[str] = set()  # task ids already reported

    def work(self, task_lists, day: date, channel: str) -> dict[str, int]:
        """Report an outcome for every task not reported yet; returns the API's counts."""
        payloads = [getattr(lst, "payload", lst) for lst in task_lists]  # ReceivedBatch or the list itself
        tasks = [t for lst in payloads for t in getattr(lst, "tasks", None) or getattr(lst, "visits", [])]
        tasks = [t for t in tasks if t.task_id not in self.done]
        events = []
        chance = self.world.purchase_probability(
            [t.customer_id for t in tasks], ["treatment"] * len(tasks), [channel] * len(tasks)
        )
        for task, p in zip(tasks, chance.tolist(), strict=True):
            buys = self.rng.random() < p
            kind = (
                "sale"
                if buys
                else self.rng.choice(
                    ["no_answer", "interested", "not_interested"]
                    if channel == "call_center"
                    else ["not_met", "interested", "not_interested"],
                    p=[0.3, 0.2, 0.5],
                )
            )
            at = datetime.combine(day + timedelta(days=int(self.rng.integers(0, 3))), time(10), tzinfo=UTC)
            events.append(
                {
                    "event_id": f"{self.name}-{task.task_id}",
                    "type": str(kind),
                    "occurred_at": at.isoformat(),
                    "outcome_ref": task.outcome_ref,
                    **({"value": round(float(self.rng.gamma(2.0, 80.0)), 2)} if buys else {}),
                }
            )
        totals = {"accepted": 0, "duplicates": 0, "rejected": 0}
        with httpx.Client(timeout=60) as client:
            for start in range(0, len(events), 500):
                body = json.dumps({"events": events[start : start + 500]})
                msg_id, now = "msg_" + os.urandom(8).hex(), datetime.now(UTC)
                headers = {
                    "webhook-id": msg_id,
                    "webhook-timestamp": str(int(now.timestamp())),
                    "webhook-signature": Webhook(self.secret).sign(msg_id, now, body),
                    "content-type": "application/json",
                }
                receipt = (
                    client.post(f"{self.api_url}/v1/outcomes", content=body, headers=headers).raise_for_status().json()
                )
                for key in totals:
                    totals[key] += receipt[key]
        self.done.update(t.task_id for t in tasks)
        return totals


LINK = re.compile(r'href="(https?://[^"]+/c/[^"]+)"')


def simulate_email_reactions(
    mail_dir: Path, seen: set[str], address_to_customer: dict[str, str], world: HiddenWorld, rng: np.random.Generator
) -> int:
    """Click the tracked link in some new e-mails (customers a contact moves click more); returns the clicks."""
    clicks = 0
    with httpx.Client(timeout=30, follow_redirects=False) as client:
        for path in sorted(mail_dir.glob("*.eml")):
            if path.name in seen:
                continue
            seen.add(path.name)
            message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
            customer = address_to_customer.get(str(message["To"]).strip().lower())
            moved = float(world.moved.get(customer, 0.0)) if customer else 0.0
            if rng.random() < 0.05 + 0.25 * max(moved, 0.0):
                body = message.get_body(("html",))
                match = LINK.search(body.get_content()) if body is not None else None
                if match:
                    response = client.get(match.group(1).replace("&amp;", "&"))
                    clicks += response.status_code == 303
    return clicks
