"""Prefect flow ``retrain_model``: rebuild the training set, train, evaluate, promote, show the comparison.

The logic lives in ``orchestrator.learning.retraining.retrain``; this flow runs it as one task, logs the
decision and attaches the comparison of the challenger with the champion (on the same
validation waves) as a table artifact plus a markdown artifact with the lineage, so every
retraining shows in the Prefect UI. The flow reads its ``Settings`` once at its start
(``get_settings()``: the caller's ``use_settings`` object, else the environment) and passes
it to the task. Schedule it like a campaign (e.g. weekly, after the
attribution windows of the last waves closed).
"""

from __future__ import annotations

import json
from datetime import date
from typing import TYPE_CHECKING, cast

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from orchestrator.settings import Settings, get_settings

if TYPE_CHECKING:
    from orchestrator.learning.retraining import RetrainResult


@task(name="retrain", cache_policy=NO_CACHE)
def train_and_judge(
    settings: Settings,
    name: str,
    campaigns: list[str],
    kind: str,
    margin: float,
    outcome: str | None,
    exclude: list[str],
    channel: str | None,
    estimator: str | None = None,
    approach: str | None = None,
    as_of: date | None = None,
) -> RetrainResult:
    from orchestrator.db.engine import connect
    from orchestrator.learning.retraining import Kind, retrain

    return retrain(
        connect(settings),
        settings,
        name,
        campaigns=campaigns,
        kind=cast(Kind, kind),  # retrain refuses a kind it does not know
        margin=margin,
        outcome=outcome,
        exclude=exclude,
        channel=channel,
        estimator=estimator,
        approach=approach,
        as_of=as_of,
    )


def _run_name() -> str:
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    return f"{((context.parameters if context else None) or {}).get('name', '?')} retraining"


@flow(name="retrain_model", flow_run_name=_run_name, log_prints=False, validate_parameters=True)
def retrain_model(
    name: str,
    campaigns: list[str],
    kind: str = "uplift",
    margin: float = 0.0,
    outcome: str | None = None,
    exclude: list[str] | None = None,
    channel: str | None = None,
    estimator: str | None = None,
    approach: str | None = None,
    as_of: date | None = None,
) -> dict:
    """Retrain model ``name`` on the campaigns' waves (up to ``as_of``, default today).

    The new version is promoted if it beats the champion by ``margin`` (for uplift models: its
    targeting's net value per 1,000 customers on the later waves, off-policy, with 95% confidence).
    ``estimator`` and ``approach`` default to the model kind's.

    Args:
        name: Name of the model in the model registry.
        campaigns: Campaigns whose waves and outcomes it learns from.
        kind: uplift, response or channel_uplift.
        margin: How much better than the champion the new version must be to be promoted.
        outcome: Outcome type that counts as success; empty: the campaign's.
        exclude: Customer columns never used as features.
        channel: Only contacts on this channel; empty: every channel.
        estimator: Estimator; empty: the model kind's default.
        approach: Uplift approach; empty: the model kind's default.
        as_of: Learn from waves up to this date (YYYY-MM-DD); empty: today.
    """
    settings = get_settings()  # once, at the start; passed to the task, never a parameter (secrets)
    result = train_and_judge(
        settings, name, campaigns, kind, margin, outcome, exclude or [], channel, estimator, approach, as_of
    )
    get_run_logger().info("%s v%d: %s", name, result.version, result.reason)
    key = f"retrain-{name}".lower().replace("_", "-")[:100]
    create_table_artifact(
        result.as_rows(), key=key, description=f"{name}: challenger against champion ({result.metric})"
    )
    lineage = json.dumps(result.lineage, indent=2, default=str)
    notes = "".join(f"- {n}\n" for n in result.notes)
    create_markdown_artifact(
        f"# {name} v{result.version}\n\n**{result.reason}**\n\n{notes}\n```json\n{lineage}\n```\n",
        key=f"{key}-lineage"[:100],
    )
    if result.comparison is not None:
        create_table_artifact(
            result.comparison.table_rows(),
            key=f"{key}-off-policy"[:100],
            description=(
                f"{name}: what each targeting would have achieved on {', '.join(result.comparison.waves)} "
                f"({result.comparison.rows:,} logged customers; off-policy, 95% intervals)"
            ),
        )
    return {
        "name": name,
        "version": result.version,
        "stage": result.stage,
        "promoted": result.promoted,
        "reason": result.reason,
        "metric": result.metric,
        "challenger_score": result.challenger_score,
        "champion_score": result.champion_score,
        "rows": result.rows,
        "notes": result.notes,
        "estimator": result.lineage.get("estimator"),
        "approach": result.lineage.get("approach"),
        "as_of": result.lineage.get("as_of"),
        "off_policy": None if result.comparison is None else result.comparison.as_dict(),
        "support": (result.lineage.get("support") or {}),
    }
