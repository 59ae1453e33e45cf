"""``campaign models retrain``: retrain a model on campaigns' waves and promote it if it is better.

Registered in ``cli.py`` on the ``models`` group. Runs the ``retrain_model`` Prefect flow so the
comparison shows in the Prefect UI; the work is ``orchestrator.learning.retraining.retrain``.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from orchestrator.cli.output import console, fail

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
) -> None:
    """Retrain NAME on what the campaigns' waves achieved; promote it if it beats the champion."""
    from flows.retraining import retrain_model
    from orchestrator.learning.retraining import NotEnoughData

    if kind not in ("uplift", "response", "channel_uplift"):
        raise typer.BadParameter("kind is uplift, response or channel_uplift", param_hint="--kind")
    state = retrain_model(
        name,
        campaign,
        kind=kind,
        margin=margin,
        outcome=outcome,
        exclude=exclude or [],
        channel=channel,
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
    for note in result["notes"]:
        console.print(f"note: {note}", highlight=False)
    console.print(result["reason"], highlight=False)


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}"
