"""The success report of one campaign, from the ledger: what ``campaign report``, the report flow and the demo show.

``build_campaign_report(settings, campaign, waves=, outcome=, revenue=)`` measures the campaign as its
rules file says (``success:``); for imported historical results without a rules file, name the
outcome and money event types (or the first ones stored are used, and costs are 0).
"""

from __future__ import annotations

__all__ = ["build_campaign_report"]


def build_campaign_report(
    settings, campaign: str, *, waves: list[str] | None = None, outcome: str | None = None, revenue: str | None = None
):
    """The success report of ``campaign`` from the ledger; raises ``CampaignNotFound``."""
    import sqlalchemy as sa

    from orchestrator.db.engine import connect
    from orchestrator.responses.results_import import CHANNEL as IMPORTED
    from orchestrator.rules.loader import find_campaign_file, load_campaign
    from orchestrator.rules.outcomes import load_outcomes
    from orchestrator.success.data import Measure, channel_costs, contact_frame
    from orchestrator.success.report import build_report

    engine = connect(settings)
    path = find_campaign_file(settings.paths.rules_dir, campaign)
    spec = load_campaign(path, columns=None) if path is not None else None
    notes: list[str] = []
    if spec is not None:
        s = spec.success
        measure = Measure(
            goal=s.goal, window_days=s.window_days, product=s.product, value=s.value, outcome=outcome, revenue=revenue
        )
        costs = channel_costs(spec)
    else:
        from orchestrator.db.tables import ResponseEvent, table_of

        events = table_of(ResponseEvent)
        with engine.connect() as conn:
            kinds = conn.execute(
                sa.select(events.c.type, sa.func.max(events.c.value))
                .where(events.c.channel == IMPORTED)
                .group_by(events.c.type)
            ).all()
        binary = [t for t, v in kinds if v is None]
        money = [t for t, v in kinds if v is not None]
        measure = Measure(
            goal="conversion",
            outcome=outcome or (binary[0] if binary else None),
            revenue=revenue or (money[0] if money else None),
        )
        costs = {}
        notes.append(
            f"no rules file for '{campaign}' in {settings.paths.rules_dir}: costs are 0"
            + (f"; success = '{measure.outcome}', revenue = '{measure.revenue}'" if measure.outcome else "")
        )
    frame = contact_frame(engine, campaign, load_outcomes(settings.paths.rules_dir), measure, costs=costs, waves=waves)
    report = build_report(
        frame, campaign=campaign, goal=measure.goal, window_days=None if measure.outcome else measure.window_days
    )
    report.notes.extend(notes)
    return report
