"""Why (not) contacted: the path of one customer through a campaign's funnel.

``explain_customer(settings, rules_files, customer_id, wave=)`` validates the campaigns and
follows one customer through every step, in the order a wave takes them:

1. the SQL filters, each evaluated for this one customer in one query (audience conditions,
   include/exclude lists, contact policy: consent, suppression list, frequency caps, cool-downs);
   the first that fails decides;
2. the global control group (held out of every campaign);
3. per channel: its ``eligible:`` condition and the contact policy for that channel;
4. the plan of the cycle (scores and cut, arbitration, control split, allocation), run for the
   campaigns given: treated on a channel, control, or not recorded with a reason code
   (``orchestrator.targeting.planning.NOT_TREATED``);
5. what the ledger recorded for the customer in the wave, if it ran: the contact row (arm, channel,
   status) or its reason code (``orchestrator.ledger.reasons``).

Nothing is recorded or sent. The answer names conditions and reasons, never the customer's column values.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from orchestrator.customers.table import ID_COLUMN, customer_table
from orchestrator.db.engine import connect
from orchestrator.db.tables import Arm, Contact, table_of
from orchestrator.ledger import reasons as ledger_reasons
from orchestrator.ledger.contacts import wave_named
from orchestrator.settings import Settings
from orchestrator.targeting.planning import NOT_TREATED, CampaignPlan
from orchestrator.targeting.selection import channel_policy, named_conditions
from orchestrator.wave import stages

__all__ = ["CustomerPath", "PathStep", "explain_customer"]


@dataclass(frozen=True)
class PathStep:
    stage: (
        str  # audience, lists, policy, global control, channel <name>, score, arbitration, control, allocation, ledger
    )
    check: str  # the condition or decision, as the rules file or policy names it
    passed: bool | None  # None: a decision that neither passes nor fails (e.g. the channel chosen)
    note: str = ""


@dataclass
class CustomerPath:
    campaign: str
    customer_id: str
    wave: str
    outcome: str  # treated, control, global_control, not selected, not treated, unknown customer
    reason: str  # the deciding step in words (a reason code where the ledger keeps one)
    steps: list[PathStep] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def explain_customer(
    settings: Settings, rules_files: list[Path], customer_id: str, wave: str | None = None
) -> list[CustomerPath]:
    """One ``CustomerPath`` per campaign of ``rules_files`` (planned together as one cycle)."""
    prepared = [stages.prepare(settings, f, wave) for f in rules_files]
    engine = connect(settings)
    table = customer_table(engine, settings.database.customer_table)
    with engine.connect() as conn:
        known = conn.execute(sa.select(sa.func.count()).where(table.c[ID_COLUMN] == customer_id)).scalar_one()
    if not known:
        return [
            CustomerPath(p.spec.name, customer_id, p.wave_key, "unknown customer", "not in the customer table")
            for p in prepared
        ]
    candidates = [stages.select_candidates(settings, p) for p in prepared]
    plans = stages.plan(settings, prepared, candidates)
    return [
        _path(settings, engine, table, p, plan, customer_id)
        for p, plan in zip(prepared, plans, strict=True)  # one campaign at a time
    ]


def _sql_steps(engine: sa.Engine, table: sa.Table, prepared, customer_id: str) -> list[PathStep]:
    """Every SQL filter of the campaign evaluated for one customer, in one query."""
    with engine.connect() as conn:
        steps = named_conditions(prepared.spec, table, prepared.policy, as_of=prepared.as_of, conn=conn)
        if not steps:
            return []
        values = [sa.case((cond, 1), else_=0).label(f"s{i}") for i, (_s, _l, cond) in enumerate(steps)]
        row = conn.execute(sa.select(*values).where(table.c[ID_COLUMN] == customer_id)).one()
    return [PathStep(stage, label, bool(row[i])) for i, (stage, label, _c) in enumerate(steps)]


def _channel_steps(engine: sa.Engine, table: sa.Table, prepared, customer_id: str) -> list[PathStep]:
    """Per channel of the campaign: the contact policy for it and its ``eligible:`` condition, for one customer."""
    from orchestrator.rules.conditions import compile_audience

    named: list[tuple[str, str, sa.ColumnElement]] = []
    for name, channel in prepared.spec.channels.items():
        if prepared.policy is not None:
            named += [
                (f"channel {name}", label, cond)
                for label, cond in channel_policy(prepared.policy, name, prepared.as_of, table)
            ]
        if channel.eligible is not None:
            named.append(
                (f"channel {name}", "eligible:", compile_audience(channel.eligible, table, as_of=prepared.as_of))
            )
    if not named:
        return []
    values = [sa.case((cond, 1), else_=0).label(f"c{i}") for i, (_s, _l, cond) in enumerate(named)]
    with engine.connect() as conn:
        row = conn.execute(sa.select(*values).where(table.c[ID_COLUMN] == customer_id)).one()
    return [PathStep(stage, label, bool(row[i])) for i, (stage, label, _c) in enumerate(named)]


def _ledger_steps(
    settings: Settings, engine: sa.Engine, campaign: str, wave_key: str, customer_id: str
) -> list[PathStep]:
    """What the ledger holds for the customer in this wave, if it was recorded."""
    contacts = table_of(Contact)
    row = wave_named(engine, campaign, wave_key)
    if row is None:
        return [PathStep("ledger", f"wave {wave_key}", None, "not run yet: the plan above is what it would do")]
    with engine.connect() as conn:
        contact = conn.execute(
            sa.select(
                contacts.c.arm, contacts.c.channel, contacts.c.variant, contacts.c.status, contacts.c.detail
            ).where(contacts.c.wave_id == row.id, contacts.c.customer_id == customer_id)
        ).first()
    if contact is not None:
        what = f"{contact.arm}" + (f" on {contact.channel}" if contact.channel else "")
        what += f", variant {contact.variant}" if contact.variant else ""
        note = f"status {contact.status}" + (f" ({contact.detail})" if contact.detail else "")
        return [PathStep("ledger", f"wave {wave_key} ({row.status}): recorded as {what}", None, note)]
    kept = ledger_reasons.of_customer(settings, row.id, customer_id)
    if kept is not None:
        code, detail = kept
        note = f"reason {code}" + (f" ({detail})" if detail else "")
        return [PathStep("ledger", f"wave {wave_key} ({row.status}): not treated", None, note)]
    return [PathStep("ledger", f"wave {wave_key} ({row.status}): not recorded", None, "not selected by the wave")]


def _path(settings: Settings, engine: sa.Engine, table: sa.Table, prepared, plan: CampaignPlan, customer_id: str):
    name = prepared.spec.name
    path = CustomerPath(name, customer_id, prepared.wave_key, "", "")
    path.steps = _sql_steps(engine, table, prepared, customer_id)
    failed = next((s for s in path.steps if s.passed is False), None)
    ledger = _ledger_steps(settings, engine, name, prepared.wave_key, customer_id)
    if failed is not None:
        path.outcome = "not selected"
        path.reason = f"{failed.stage}: {failed.check}"
        path.steps += ledger
        return path
    contacts = plan.contacts
    at = np.flatnonzero(contacts.customer_id == customer_id)
    if at.size and contacts.arm[at[0]] == Arm.GLOBAL_CONTROL.value:
        path.steps.append(PathStep("global control", "held out of every campaign", False))
        path.outcome, path.reason = "global_control", "global control group (contact policy)"
        path.steps += ledger
        return path
    if prepared.policy is not None and getattr(prepared.policy, "global_control", None) is not None:
        path.steps.append(PathStep("global control", "held out of every campaign", True))
    path.steps += _channel_steps(engine, table, prepared, customer_id)
    if at.size:
        i = int(at[0])
        score = contacts.score[i]
        if prepared.spec.scores is not None and not np.isnan(score):
            path.steps.append(PathStep("score", f"model {prepared.spec.scores.model}", True, f"score {score:.4f}"))
        if len(plan.lost_to) or len(prepared.spec.channels.names()) > 1:
            path.steps.append(PathStep("arbitration", "won the customer", True))
        arm, channel = contacts.arm[i], contacts.channel[i]
        if arm == Arm.CONTROL.value:
            path.steps.append(PathStep("control", f"random control group ({prepared.spec.control.share:.0%})", False))
            path.outcome, path.reason = "control", "random control group: recorded, never contacted"
        else:
            path.steps.append(PathStep("control", "treatment group", True))
            variant = contacts.variant[i]
            note = (
                f"expected value {contacts.expected_value[i]:.2f}" if not np.isnan(contacts.expected_value[i]) else ""
            )
            path.steps.append(
                PathStep("allocation", f"channel {channel}" + (f", variant {variant}" if variant else ""), None, note)
            )
            path.outcome, path.reason = "treated", f"treated on {channel}"
        path.steps += ledger
        return path
    nt = plan.not_treated
    hit = np.flatnonzero(nt.customer_id == customer_id)
    if hit.size:
        code, detail = str(nt.reason[hit[0]]), nt.detail[hit[0]]
        stage = {
            "below_score_cut": "score",
            "lost_arbitration": "arbitration",
            "no_eligible_channel": "channels",
            "control_unallocated": "control",
        }.get(code, "allocation")
        words = NOT_TREATED.get(code, code) + (f": lost to {detail}" if detail else "")
        path.steps.append(PathStep(stage, code, False, words))
        path.outcome, path.reason = "not treated", code + (f" ({detail})" if detail else "")
    else:  # passed every filter but is not a candidate: recorded earlier in the cycle by a campaign not given
        path.outcome, path.reason = "not treated", "not a candidate of this plan (recorded earlier in the cycle?)"
    path.steps += ledger
    return path
