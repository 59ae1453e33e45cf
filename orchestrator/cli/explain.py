"""``campaign explain FILE... [--customer ID]`` and ``campaign preview FILE``: a cycle's plan, before anything is sent.

``explain_command`` shows how many customers each condition, list, policy filter, score cut,
arbitration and channel keeps (or one customer's path through them); ``preview_command`` renders
a few sampled customers' messages per channel and variant. Both validate, select and plan as a run
would (``prepare_cycle``, also used by ``run --test-to``) and record nothing. Registered in
``main.py`` as ``app.command("explain")(explain_command)`` and ``app.command("preview")(preview_command)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from orchestrator.cli.output import (
    FORMAT_HELP,
    OutputFormat,
    console,
    fail,
    get_settings,
    print_json,
    print_problems,
)
from orchestrator.errors import ValidationFailed
from orchestrator.wave.console import print_channels, print_funnel, print_losses

__all__ = ["explain_command", "prepare_cycle", "preview_command"]


@contextmanager
def _planning_errors(rules_files: list[Path]) -> Iterator[None]:
    """Invalid rules (their problems printed) or a blocked day end the command: exit 1, saying why."""
    from orchestrator.wave import stages

    try:
        yield
    except ValidationFailed as exc:
        print_problems(exc.problems)
        raise fail(f"{', '.join(map(str, rules_files))}: {len(exc.errors)} error(s)") from exc
    except stages.WaveBlocked as exc:
        raise fail(str(exc)) from exc


def prepare_cycle(rules_files: list[Path], wave: str | None):
    """Validate, select and plan (with the funnel); on invalid input or a blocked day, print why and exit 1."""
    from orchestrator.wave import stages

    settings = get_settings()
    with _planning_errors(rules_files):
        prepared, plans = stages.prepare_cycle(settings, rules_files, wave)
    return settings, prepared, plans


def explain_command(
    rules_files: Annotated[list[Path], typer.Argument(help="Rules file(s); several are planned as one cycle.")],
    wave: Annotated[
        str | None, typer.Option(help="Wave label or date the rules are evaluated at; today when omitted.")
    ] = None,
    customer: Annotated[
        str | None,
        typer.Option(help="One customer's path instead: which condition, policy filter, split or loss decided."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Same as --format json.", metavar="")] = False,
    output_format: Annotated[OutputFormat, typer.Option("--format", help=FORMAT_HELP)] = OutputFormat.text,
) -> None:
    """Show how many customers each condition, list, policy filter, score cut, arbitration and channel keeps."""
    if customer is not None:
        _explain_customer(rules_files, wave, customer, as_json or output_format == OutputFormat.json)
        return
    _settings, _prepared, plans = prepare_cycle(rules_files, wave)
    if as_json or output_format == OutputFormat.json:
        print_json([_plan_dict(plan) for plan in plans])
        return
    for plan in plans:
        if len(plans) > 1:
            console.print(f"[bold]{escape(plan.spec.name)}[/] (priority {plan.spec.priority})")
        print_funnel(console, [vars(step) for step in plan.selection.funnel])
        print_channels(console, plan)
    if len(plans) > 1:
        print_losses(console, plans)


def _explain_customer(rules_files: list[Path], wave: str | None, customer: str, as_json: bool) -> None:
    from orchestrator.wave.explain import explain_customer

    with _planning_errors(rules_files):
        paths = explain_customer(get_settings(), rules_files, customer, wave)
    if as_json:
        print_json([p.as_dict() for p in paths])
        return
    marks = {True: "[green]passed[/]", False: "[red]stopped here[/]", None: ""}
    for path in paths:
        table = Table(
            title=f"customer {escape(path.customer_id)} in campaign {escape(path.campaign)}, wave {path.wave}"
        )
        for column in ("stage", "check", "result", "note"):
            table.add_column(column)
        for step in path.steps:
            table.add_row(escape(step.stage), escape(step.check), marks[step.passed], escape(step.note))
        console.print(table)
        console.print(f"[bold]{escape(path.outcome)}[/]: {escape(path.reason)}", highlight=False)


def _plan_dict(plan: Any) -> dict[str, Any]:
    """What ``explain`` prints for one campaign, as JSON-ready data."""
    import numpy as np

    arms = plan.contacts.arm
    channels = {}
    for channel in plan.spec.channels.names():
        on = plan.contacts.channel == channel
        channels[channel] = {
            "treated": int(np.count_nonzero(on & (arms == "treatment"))),
            "control": int(np.count_nonzero(on & (arms == "control"))),
        }
    return {
        "campaign": plan.spec.name,
        "priority": plan.spec.priority,
        "funnel": [vars(step) for step in plan.selection.funnel],
        "channels": channels,
        "waiting": int(plan.waiting),
        "lost_to": {name: int(n) for name, n in plan.lost_to.items()},
    }


def preview_command(
    rules_file: Annotated[Path, typer.Argument(help="The campaign's rules file.")],
    n: Annotated[int, typer.Option("--n", min=1, max=100, help="Customers per variant.")] = 5,
    output: Annotated[
        Path | None, typer.Option(help="HTML file to write; default var/preview/<campaign>.html.")
    ] = None,
    wave: Annotated[str | None, typer.Option(help="Wave label or date; today when omitted.")] = None,
) -> None:
    """Render the messages of a few sampled customers per channel and variant, to the terminal and an HTML file."""
    from rich.panel import Panel
    from rich.text import Text

    from orchestrator.wave.preview import preview_messages, write_html

    settings, prepared, plans = prepare_cycle([rules_file], wave)
    messages = preview_messages(settings, prepared[0], plans[0], n)
    for m in messages:
        title = f"{m.channel}: customer {m.customer_id}" + (f", variant {m.variant}" if m.variant else "")
        if m.parts is None:
            console.print(Panel(Text(m.error or "", style="red"), title=escape(title)))
        else:
            console.print(Panel(Text(m.body), title=escape(f"{title}: {m.headline}")))
    name = prepared[0].spec.name
    path = write_html(output or settings.paths.data_dir / "preview" / f"{name}.html", name, messages)
    console.print(f"{len(messages)} message(s) written to {path}")
    if any(m.parts is None for m in messages):
        raise typer.Exit(1)
