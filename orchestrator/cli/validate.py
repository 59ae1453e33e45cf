"""``campaign validate [FILE...] [--format json]``: check rules files as a run would.

Every kind of rules file (campaign, ``policy.yaml``, ``capacity.yaml``, ``outcomes.yaml``,
``segments/*.yaml``, told apart by name and folder; ``orchestrator.wave.validation``) against the
customer table's columns, the templates, the policy, capacity and models. Problems name the file,
line and field and suggest the fix. Registered in ``main.py`` as ``app.command("validate")(validate_command)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from orchestrator.cli.output import (
    FORMAT_HELP,
    OutputFormat,
    console,
    fail,
    get_settings,
    print_json,
    print_problems,
    problem_dict,
)
from orchestrator.errors import Problem

__all__ = ["validate_command"]


def validate_command(
    files: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Rules files to check, of any kind (campaign, policy.yaml, capacity.yaml, outcomes.yaml, "
            "segments/*.yaml: told apart by name and folder); default every file under the rules folder."
        ),
    ] = None,
    output_format: Annotated[OutputFormat, typer.Option("--format", help=FORMAT_HELP)] = OutputFormat.text,
) -> None:
    """Check rules files as a run would: schema, customer columns, templates, policy, capacity, models.

    Exit status: 0 when no file has an error (warnings allowed), 1 when one has.
    """
    from orchestrator.customers.table import customer_columns
    from orchestrator.db.engine import connect
    from orchestrator.wave.validation import (
        audit_validation,
        has_errors,
        kind_of_file,
        rules_files,
        validate_campaign,
        validate_other_file,
    )

    settings = get_settings()
    paths = list(files) if files else rules_files(settings.paths.rules_dir)
    if not paths:
        raise fail(f"no rules files in {settings.paths.rules_dir} (CAMPAIGN_PATHS_RULES_DIR)")
    engine = connect(settings)
    columns = customer_columns(engine, settings.database.customer_table)
    kinds = {path: kind_of_file(path) for path in paths}
    results: dict[Path, list[Problem]] = {}
    channels: set[str] = set()
    for path in (p for p in paths if kinds[p] == "campaign"):
        check = validate_campaign(settings, path, columns, engine)
        audit_validation(engine, path, check)
        results[path] = check.problems
        if check.spec is not None:
            channels.update(check.spec.channels.names())
    used = channels if results else None  # without campaigns: every channel's entries
    for path in (p for p in paths if kinds[p] != "campaign"):
        results[path] = validate_other_file(kinds[path], path, columns, used)
    failed = any(has_errors(problems) for problems in results.values())
    if output_format == OutputFormat.json:
        document = {
            "ok": not failed,
            "files": [
                {
                    "file": str(path),
                    "kind": kinds[path],
                    "ok": not has_errors(results[path]),
                    "problems": [problem_dict(p) for p in results[path]],
                }
                for path in paths
            ],
        }
        print_json(document)
    else:
        for path in paths:
            print_problems(results[path])
            if not has_errors(results[path]):
                console.print(f"[green]{escape(str(path))}: ok[/] ({kinds[path]})", highlight=False)
    if failed:
        raise typer.Exit(1)
