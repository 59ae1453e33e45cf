"""Prefect flow ``success_report``: a campaign's success control, shown in the Prefect UI.

The logic lives in ``orchestrator.success.campaign.build_campaign_report`` (ledger -> contact
frame -> ``orchestrator.success.report``); this flow runs it as one task, attaches the result as
a markdown artifact (headline, notes, the segments) and a table artifact, and writes the
HTML report with charts when asked, plus a short markdown artifact ``result-<campaign>-success``
with the headline (lift with its confidence interval) and the link to that HTML file.
Schedulable like the campaigns (e.g. daily while the
attribution window is open). The flow reads its ``Settings`` once at its start
(``get_settings()``: the caller's ``use_settings`` object, else the environment) and passes
it to the task.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from orchestrator.settings import Settings, get_settings

if TYPE_CHECKING:
    from orchestrator.success.report_types import SuccessReport


@task(name="build-report", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)
def build(settings: Settings, campaign: str, waves: list[str] | None) -> SuccessReport:
    from orchestrator.success.campaign import build_campaign_report

    return build_campaign_report(settings, campaign, waves=waves)


def _run_name() -> str:
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    return f"{((context.parameters if context else None) or {}).get('campaign', '?')} success report"


@flow(name="success_report", flow_run_name=_run_name, log_prints=False, validate_parameters=True)
def success_report(campaign: str, waves: list[str] | None = None, html_path: str | None = None) -> dict:
    """Success control of ``campaign``: treated against control with confidence, as Prefect artifacts.

    Args:
        campaign: Name of the campaign (the name: of its rules file).
        waves: Only these waves (their labels, e.g. 2026-12-11); empty: every wave.
        html_path: Also write the HTML report with charts to this file; empty: no HTML file.
    """
    from orchestrator.success.artifacts import markdown_report, table_rows
    from orchestrator.success.formatting import headline
    from orchestrator.success.html_page import write_html

    report = build(get_settings(), campaign, waves)  # settings read once, passed to the task
    key = f"success-{campaign}".lower().replace("_", "-")[:100]
    create_markdown_artifact(markdown_report(report), key=key, description=f"Success control of {campaign}")
    create_table_artifact(table_rows(report), key=f"{key}-segments"[:100], description=f"Segments of {campaign}")
    overall = report.overall()
    get_run_logger().info(
        "%s: %d treated, %d control, significant: %s", campaign, overall.treated, overall.control, overall.significant
    )
    link = ""
    if html_path:
        path = write_html(report, Path(html_path))
        link = f"\n\nHTML report with charts: [{path.name}]({path.resolve().as_uri()}) (`{path}`)"
    create_markdown_artifact(
        f"# {campaign}\n\n**{headline(report)}**{link}\n",
        key=f"result-{key}"[:100],
        description=f"Headline result of {campaign}",
    )
    return report.to_dict()
