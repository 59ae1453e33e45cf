"""What marketing as a whole adds: the global control group against everybody else, per month.

The contact policy's global control group (``rules/policy.yaml``: ``global_control: {share,
salt}``) is a salted-hash share of ALL customers that no campaign ever contacts
(``orchestrator.targeting.policy.is_global_control``). Since membership is random and fixed,
comparing it with every other customer of the customer table measures the total effect of all
campaigns together, whatever they targeted: the effect of being reachable by marketing.

``global_control_report(engine, settings, months=)`` takes every customer of the customer table,
splits them by the current policy's global control, and per calendar month (UTC) of the imported
conversions compares

* the share of customers with at least one conversion in the month (Newcombe interval of the
  difference, z-test or Fisher's exact test, as ``orchestrator.success.statistics``);
* the revenue per customer in the month (Welch interval of the difference from the groups'
  means and variances, as ``scipy.stats.ttest_ind(equal_var=False)`` computes it);
* incremental converting customers and incremental revenue: the differences times the number
  of customers marketing could reach.

Checks: the global control's size against its configured share (chi-squared, as the waves'
sample-ratio check), and global control customers the ledger shows as contacted by a campaign
(a changed salt or share, or a campaign run without the policy) are counted and named in a note.
Every customer counts in every month: the customer table has no sign-up date, so customers who
joined later dilute early months alike in both groups.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import cast

import numpy as np
import pandas as pd
import sqlalchemy as sa
from scipy.stats import t as t_distribution

from orchestrator.db.tables import Arm, Contact, ContactStatus, Conversion, table_of
from orchestrator.success.statistics import (
    Estimate,
    SampleRatio,
    absolute_lift,
    compare_proportions,
    rate,
    sample_ratio_test,
    scaled,
)

__all__ = ["GlobalControlReport", "MonthResult", "NoGlobalControl", "global_control_report", "welch_from_stats"]

GLOBAL, MARKETING = "global_control", "marketing"
POLICY_FILE = "policy.yaml"  # the shared contact policy in the rules folder, as orchestrator.wave.validation reads it


class NoGlobalControl(LookupError):
    """The policy has no global control group (or no customer table): nothing to compare."""


@dataclass
class MonthResult:
    """One calendar month: customers reachable by marketing against the global control group."""

    month: str
    marketing: int
    global_control: int
    marketing_converted: int
    global_converted: int
    marketing_rate: float | None
    global_rate: float | None
    lift: Estimate
    p_value: float | None
    test: str | None
    significant: bool
    incremental_customers: Estimate
    revenue_per_marketing: float | None
    revenue_per_global: float | None
    revenue_lift: Estimate
    incremental_revenue: Estimate


@dataclass
class GlobalControlReport:
    """The months, the split check and notes."""

    share: float
    salt: str
    customers: int
    months: list[MonthResult]
    sample_ratio: SampleRatio | None
    contacted_in_global: int
    notes: list[str] = field(default_factory=list)
    alpha: float = 0.05

    def to_dict(self) -> dict:
        from orchestrator.success.report_types import _json_safe

        data = asdict(self)
        if self.sample_ratio is not None:
            data["sample_ratio"]["mismatch"] = self.sample_ratio.mismatch
        return cast(dict, _json_safe(data))


def global_control_report(
    engine: sa.Engine, settings, *, months: list[str] | None = None, alpha: float = 0.05
) -> GlobalControlReport:
    """The global control report (see the module docstring); raises ``NoGlobalControl``."""
    from orchestrator.customers.table import ID_COLUMN, customer_table
    from orchestrator.rules.policy_spec import load_policy
    from orchestrator.targeting.policy import is_global_control

    wanted = _months(months)
    path = settings.paths.rules_dir / POLICY_FILE
    policy = load_policy(path)[0] if path.exists() else None
    spec = policy.global_control if policy is not None else None
    if spec is None or spec.share == 0:
        raise NoGlobalControl(
            f"no global control group in {path}: add 'global_control: {{share: 0.02, salt: global-2026}}' to "
            f"hold out a share of all customers from every campaign, then compare them here"
        )
    try:
        table = customer_table(engine, settings.database.customer_table)
    except LookupError as exc:  # no customer table yet
        raise NoGlobalControl(str(exc)) from exc
    with engine.connect() as conn:
        ids = pd.Series(list(conn.execute(sa.select(table.c[ID_COLUMN])).scalars()), dtype=object).astype(str)
    in_global = is_global_control(ids.tolist(), policy)
    group = pd.Series(np.where(in_global, GLOBAL, MARKETING), index=ids.to_numpy())
    n_global, n_marketing = int(in_global.sum()), int((~in_global).sum())
    sample_ratio = sample_ratio_test(
        {GLOBAL: n_global, MARKETING: n_marketing}, {GLOBAL: spec.share, MARKETING: 1 - spec.share}
    )
    per_month = _conversions_by_month(engine, group)
    found = sorted(per_month["month"].unique().tolist()) if len(per_month) else []
    listed = wanted if wanted is not None else found
    results = [_month(m, per_month, n_marketing, n_global, alpha) for m in listed]
    contacted = _contacted(engine, ids[in_global].tolist())
    notes: list[str] = []
    if sample_ratio.mismatch:
        notes.append(
            f"the global control group is {n_global / max(len(ids), 1) * 100:.2f}% of the customers, "
            f"{spec.share * 100:g}% is configured (chi-squared p < 0.001): do not trust these figures until "
            f"the cause is found"
        )
    if contacted:
        notes.append(
            f"{contacted:,} customers of the global control group were contacted by a campaign (the global control "
            f"was changed, or waves ran without the policy): the total effect is underestimated"
        )
    if not found:
        notes.append("no conversions imported yet: import them with `campaign import conversions FILE`")
    notes.append(
        "every customer of the customer table counts in every month; months are calendar months (UTC) of the "
        "conversions; each month is its own comparison (no correction across months)"
    )
    return GlobalControlReport(
        share=float(spec.share),
        salt=spec.salt,
        customers=len(ids),
        months=results,
        sample_ratio=sample_ratio,
        contacted_in_global=contacted,
        notes=notes,
        alpha=alpha,
    )


def welch_from_stats(
    mean1: float, var1: float, n1: int, mean2: float, var2: float, n2: int, alpha: float = 0.05
) -> Estimate:
    """Difference of means ``mean1 - mean2`` with Welch's interval from the groups' means and variances (ddof 1)."""
    if n1 < 1 or n2 < 1:
        return Estimate.missing()
    value = mean1 - mean2
    if n1 < 2 or n2 < 2:
        return Estimate(value, None, None)
    a, b = var1 / n1, var2 / n2
    se = math.sqrt(a + b)
    if se == 0:
        return Estimate(value, value, value)
    df = (a + b) ** 2 / (a**2 / (n1 - 1) + b**2 / (n2 - 1))
    q = float(t_distribution.ppf(1 - alpha / 2, df))
    return Estimate(value, value - q * se, value + q * se)


def _months(months: list[str] | None) -> list[str] | None:
    if not months:
        return None
    for m in months:
        try:
            pd.Period(m, freq="M")
        except ValueError as exc:
            raise ValueError(f"'{m}' is not a month like 2026-03") from exc
        if len(m) != 7:
            raise ValueError(f"'{m}' is not a month like 2026-03")
    return sorted(dict.fromkeys(months))


def _conversions_by_month(engine: sa.Engine, group: pd.Series) -> pd.DataFrame:
    """Per month and customer of the customer table: the customer's group, revenue of the month."""
    conversions = table_of(Conversion)
    with engine.connect() as conn:
        rows = pd.read_sql(sa.select(conversions.c.customer_id, conversions.c.occurred_at, conversions.c.amount), conn)
    if not len(rows):
        return pd.DataFrame(columns=["month", "customer_id", "group", "revenue"])
    rows["customer_id"] = rows["customer_id"].astype(str)
    rows = rows[rows["customer_id"].isin(group.index)]
    rows["month"] = pd.to_datetime(rows["occurred_at"], utc=True).dt.strftime("%Y-%m")
    per = rows.groupby(["month", "customer_id"], sort=True)["amount"].sum().fillna(0.0).reset_index(name="revenue")
    per["group"] = per["customer_id"].map(group)
    return per


def _month(month: str, per_month: pd.DataFrame, n_marketing: int, n_global: int, alpha: float) -> MonthResult:
    rows = per_month[per_month["month"] == month] if len(per_month) else per_month
    stats = {}
    for name, n in ((MARKETING, n_marketing), (GLOBAL, n_global)):
        revenue = rows.loc[rows["group"] == name, "revenue"].to_numpy(dtype=np.float64)
        total, squares = float(revenue.sum()), float((revenue**2).sum())
        mean = total / n if n else 0.0
        var = (squares - n * mean**2) / (n - 1) if n > 1 else 0.0
        stats[name] = (int(revenue.size), mean, max(var, 0.0))
    (sm, mm, vm), (sg, mg, vg) = stats[MARKETING], stats[GLOBAL]
    lift = absolute_lift(sm, n_marketing, sg, n_global, alpha)
    tested = compare_proportions(sm, n_marketing, sg, n_global)
    revenue_lift = welch_from_stats(mm, vm, n_marketing, mg, vg, n_global, alpha)
    return MonthResult(
        month=month,
        marketing=n_marketing,
        global_control=n_global,
        marketing_converted=sm,
        global_converted=sg,
        marketing_rate=rate(sm, n_marketing),
        global_rate=rate(sg, n_global),
        lift=lift,
        p_value=tested.p_value,
        test=tested.test,
        significant=tested.p_value is not None and tested.p_value < alpha,
        incremental_customers=scaled(lift, n_marketing),
        revenue_per_marketing=mm if n_marketing else None,
        revenue_per_global=mg if n_global else None,
        revenue_lift=revenue_lift,
        incremental_revenue=scaled(revenue_lift, n_marketing),
    )


def _contacted(engine: sa.Engine, global_ids: list[str]) -> int:
    """How many of the global control's customers the ledger shows as contacted (sent) by a campaign."""
    if not global_ids:
        return 0
    contacts = table_of(Contact)
    with engine.connect() as conn:
        sent = set(
            conn.execute(
                sa.select(contacts.c.customer_id)
                .where(contacts.c.arm == Arm.TREATMENT.value, contacts.c.status == ContactStatus.SENT)
                .distinct()
            ).scalars()
        )
    return len(sent.intersection(global_ids))
