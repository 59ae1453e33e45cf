"""``campaign models retrain``: retrain a model on campaigns' waves and promote it if it is better.

Registered in ``cli.py`` on the ``models`` group. Runs the ``retrain_model`` Prefect flow so the
comparison shows in the Prefect UI; the work is ``orchestrator.learning.retraining.retrain``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table

from orchestrator.cli.output import console, fail, get_settings

__all__ = ["retrain_command"]


def retrain_command(
    name: Annotated[str, typer.Argument(help="Model name in the registry (new or existing).")],
    campaign: Annotated[list[str], typer.Option(help="Campaign whose waves it learns from (repeat).")],
    kind: Annotated[
        str,
        typer.Option(
            help="uplift (treated vs control), response (treated only) or channel_uplift (per channel vs control)."
        ),
    ] = "uplift",
    margin: Annotated[float, typer.Option(help="How much better than the champion a new version must be.")] = 0.0,
    outcome: Annotated[str | None, typer.Option(help="Imported results: the outcome column that is success.")] = None,
    exclude: Annotated[
        list[str] | None, typer.Option(help="Column never to learn from (repeat), e.g. --exclude email.")
    ] = None,
    channel: Annotated[
        str | None, typer.Option(help="Only the contacts of this channel (a model per channel).")
    ] = None,
    estimator: Annotated[
        str | None,
        typer.Option(
            help="The learner: gradient_boosting or logistic (default: gradient_boosting for channel_uplift, "
            "logistic otherwise)."
        ),
    ] = None,
    approach: Annotated[
        str | None,
        typer.Option(
            help="The meta-learner. channel_uplift: x_learner (default), t_learner or pooled; "
            "uplift: two_model (default) or class_transformation."
        ),
    ] = None,
    as_of: Annotated[
        datetime | None,
        typer.Option(
            "--as-of",
            formats=["%Y-%m-%d"],
            help="Learn from the waves whose success window closed by this day (YYYY-MM-DD; default today).",
        ),
    ] = None,
) -> None:
    """Retrain NAME on what the campaigns' waves achieved; promote it if it beats the champion.

    Uplift models are judged by what their targeting would have achieved on the later waves
    (off-policy: inverse propensity and doubly robust estimates with 95% intervals, against the
    champion's targeting and random); the new version is promoted when it is better with
    confidence, or when it is the champion's model learned from more waves and not worse.
    """
    from flows.prefect_api import PrefectUnavailable, ensure_prefect_api
    from flows.retraining import retrain_model
    from orchestrator.learning.retraining import NotEnoughData

    if kind not in ("uplift", "response", "channel_uplift"):
        raise typer.BadParameter("kind is uplift, response or channel_uplift", param_hint="--kind")
    choices = {
        "estimator": ("logistic", "gradient_boosting"),
        "approach": {
            "channel_uplift": ("t_learner", "x_learner", "pooled"),
            "uplift": ("two_model", "class_transformation"),
        }.get(kind, ()),
    }
    for option, value in (("estimator", estimator), ("approach", approach)):
        allowed = choices[option]
        if value is not None and value not in allowed:
            hint = f"one of {', '.join(allowed)}" if allowed else "not used"
            message = f"for a {kind} model the {option} is {hint}; got {value!r}"
            raise typer.BadParameter(message, param_hint=f"--{option}")
    try:
        ensure_prefect_api(get_settings())
    except PrefectUnavailable as exc:
        raise fail(str(exc)) from exc
    state = retrain_model(
        name,
        campaign,
        kind=kind,
        margin=margin,
        outcome=outcome,
        exclude=exclude or [],
        channel=channel,
        estimator=estimator,
        approach=approach,
        as_of=as_of.date() if as_of is not None else None,
        return_state=True,
    )
    result = state.result(raise_on_failure=False)
    if isinstance(result, NotEnoughData | LookupError):
        raise fail(str(result))
    if isinstance(result, BaseException):
        raise result
    table = Table(title=f"{name} v{result['version']}: {result['metric']} on the later waves")
    for column in ("version", "score", "stage"):
        table.add_column(column)
    table.add_row(f"v{result['version']} (new)", _fmt(result["challenger_score"]), result["stage"])
    if result["champion_score"] is not None:
        table.add_row(
            "champion before", _fmt(result["champion_score"]), "retired" if result["promoted"] else "champion"
        )
    console.print(table)
    console.print(
        f"learned as of {result['as_of']} with estimator {result['estimator']}"
        + (f", approach {result['approach']}" if result["approach"] else ""),
        highlight=False,
    )
    if result["support"]:
        console.print(_support_table(result["support"]))
    if result["off_policy"]:
        console.print(_off_policy_table(result["off_policy"]))
    for note in result["notes"]:
        console.print(f"note: {note}", highlight=False)
    console.print(result["reason"], highlight=False)


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def _support_table(support: dict) -> Table:
    """What each channel's effect rests on (``ChannelUpliftModel.support_``)."""
    table = Table(title="what each channel's estimate rests on")
    for column in ("channel", "treated", "responders", "effective treated", "control (pooled)", "responders"):
        table.add_column(column, justify="left" if column == "channel" else "right")
    for channel, s in support.items():
        table.add_row(
            channel,
            f"{s['treated']:,}",
            f"{s['treated_responders']:,}",
            f"{s['effective_treated']:,.0f}",
            f"{s['control']:,}",
            f"{s['control_responders']:,}",
        )
    return table


def _off_policy_table(comparison: dict) -> Table:
    """Challenger, champion and random valued on the later waves (``learning.evaluation``)."""
    waves = ", ".join(comparison["waves"])
    table = Table(
        title=f"what each targeting would have achieved on {waves} ({comparison['rows']:,} customers, "
        f"{comparison['explored_rows']:,} with a randomised channel; per 1,000 customers, 95% intervals)"
    )
    for column in ("targeting", "net value (DR)", "net value (IPS)", "extra successes (DR)", "contacts"):
        table.add_column(column, justify="left" if column in ("targeting", "contacts") else "right")

    def text(e: dict) -> str:
        return f"{e['value']:,.2f} [{e['low']:,.2f}, {e['high']:,.2f}]"

    for p in comparison["policies"]:
        table.add_row(
            p["policy"],
            text(p["value_per_1000"]["dr"]),
            text(p["value_per_1000"]["ips"]),
            text(p["successes_per_1000"]["dr"]),
            ", ".join(f"{c} {n:,}" for c, n in p["contacts"].items() if n),
        )
    difference = comparison["challenger_minus_champion"]["value_per_1000_dr"]
    if difference is not None:
        table.caption = f"challenger - champion, net value per 1,000 customers (DR): {text(difference)}"
    return table
