"""The success report of one campaign, from the ledger: what ``campaign report``, the report flow and the demo show.

``build_campaign_report(settings, campaign, waves=, outcome=, revenue=, covariates=, by=, as_of=)``
measures the campaign as its rules file says (``success:``); for imported historical results
without a rules file, name the outcome and money event types (or the first ones stored are used,
and costs are 0).

The lift is regression-adjusted for the wave's score (when the campaign used one), the rules'
``success.covariates``, the covariates named when results were imported (``campaign import
results --covariate``, kept in the wave's snapshot) and ``covariates``; their values and the
``by`` breakdown columns come from the waves' snapshots. ``as_of`` (default today) decides
which windows are still open. The always-valid intervals are tuned to the rules'
``control.expected_response_rate`` when given. The variants are checked against their
configured shares.
"""

from __future__ import annotations

__all__ = ["build_campaign_report"]


def build_campaign_report(
    settings,
    campaign: str,
    *,
    waves: list[str] | None = None,
    outcome: str | None = None,
    revenue: str | None = None,
    covariates: list[str] | None = None,
    by: list[str] | None = None,
    as_of=None,
):
    """The success report of ``campaign`` from the ledger; raises ``CampaignNotFound``."""
    from datetime import date

    import sqlalchemy as sa

    from orchestrator.db.engine import connect
    from orchestrator.responses.results_import import CHANNEL as IMPORTED
    from orchestrator.rules.loader import find_campaign_file, load_campaign
    from orchestrator.rules.outcomes import load_outcomes
    from orchestrator.success.data import Measure, channel_costs, contact_frame, with_customer_columns
    from orchestrator.success.report import build_report
    from orchestrator.success.sequential import DEFAULT_PLANNING_RATE

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
    notes = list(frame.attrs.get("notes", [])) + notes
    stamp = {k: frame.attrs.get(k) for k in ("outcome_events", "data_as_of")}
    named = list(spec.success.covariates) if spec is not None else []
    named += _imported_covariates(settings, frame)
    named += list(covariates or [])
    named = [c for c in dict.fromkeys(named) if c != "score"]
    breakdowns = list(dict.fromkeys(by or []))
    frame, column_notes = with_customer_columns(settings, frame, list(dict.fromkeys(named + breakdowns)))
    notes += column_notes
    frame.attrs.update(stamp)
    used = (["score"] if frame["score"].notna().any() else []) + named
    report = build_report(
        frame,
        campaign=campaign,
        goal=measure.goal,
        window_days=None if measure.outcome else measure.window_days,
        covariates=used,
        by=breakdowns,
        as_of=as_of or date.today(),
        planning_rate=(spec.control.expected_response_rate if spec is not None else None) or DEFAULT_PLANNING_RATE,
        variant_shares={k: v.share for k, v in spec.variants.items()} if spec is not None and spec.variants else None,
        outcome=measure.outcome,
    )
    report.currency = settings.report.currency
    report.notes.extend(notes)
    return report


def _imported_covariates(settings, frame) -> list[str]:
    """Covariates named when results were imported (``--covariate``), from the waves' snapshot metadata."""
    from orchestrator.ledger.snapshots import snapshot_covariates

    named: list[str] = []
    for wave_id in frame["wave_id"].drop_duplicates().tolist():
        named += snapshot_covariates(settings, int(wave_id))
    return named
