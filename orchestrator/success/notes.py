"""The sentences of the success report: the notes that say in words what its numbers mean.

Contract. ``_overall_notes(report, ignored, min_control, min_expected)`` says the overall result
(rates, lift with its interval, significance, the additional successes when significant, a control
group too small, contacts of other arms left out, the success window), beginning with
``no_outcomes_message(report)`` when no outcome at all has been recorded for the waves
(``outcome_events == 0``): which waves, and how to import outcomes. ``_look_notes(report)`` says
whether an early look may be read (the always-valid interval while the window is open) and
``_covariate_notes(segments, covariates)`` how much the regression adjustment reduced the lift's
variance. Labels follow the report's goal, or its imported ``outcome``. ``_pct``, ``_points`` and
``_p`` format rates, lifts in points and p-values. Every function reads a built report and returns
text; none changes the report.
"""

from __future__ import annotations

from collections.abc import Sequence as Sequence_

from orchestrator.success.report_types import (
    FLAG_CONTROL_TOO_SMALL,
    READING_FINAL,
    READING_READY,
    Segment,
    SuccessReport,
)

__all__ = ["no_outcomes_message"]


def _look_notes(report: SuccessReport) -> list[str]:
    overall = report.overall()
    if overall.reading == READING_FINAL or report.as_of is None:
        return []
    seq = overall.sequence
    level = f"{(1 - report.alpha) * 100:g}%"
    if seq.low is None or seq.high is None:
        interval = "has no interval yet (no successes)"
    else:
        interval = f"is {_points(seq.low)} to {_points(seq.high)} points"
    if overall.reading == READING_READY:
        return [
            f"the success window is open until {overall.window_closes}, but the result may already be read: "
            f"the {level} interval valid under repeated looks {interval} and excludes 0"
        ]
    return [
        f"too early to read: the success window is open until {overall.window_closes} and the {level} interval "
        f"valid under repeated looks {interval}, so it still includes 0; the fixed-horizon p-value is only "
        f"valid once, when the window has closed"
    ]


def _covariate_notes(segments: list[Segment], covariates: Sequence_[str]) -> list[str]:
    if not covariates:
        return []
    overall = next(s for s in segments if s.dimension == "overall")
    if overall.variance_reduction is None:
        return [f"no regression adjustment: the covariates ({', '.join(covariates)}) could not be used"]
    change = overall.variance_reduction
    how = f"{change * 100:.0f}% lower" if change >= 0 else f"{-change * 100:.0f}% higher (the covariates do not help)"
    return [f"regression-adjusted on {', '.join(covariates)}: the lift's variance is {how} than unadjusted"]


def _overall_notes(report: SuccessReport, ignored: int, min_control: int, min_expected: float) -> list[str]:
    overall = report.overall()
    noun = "responded" if report.goal == "response" else "converted"
    gained = "responses" if report.goal == "response" else "conversions"
    if report.outcome is not None:
        noun, gained = f"had the outcome {report.outcome!r}", f"customers with the outcome {report.outcome!r}"
    notes: list[str] = []
    if overall.treated + overall.control and report.outcome_events == 0:
        notes.append(no_outcomes_message(report))
    if overall.treated + overall.control == 0:
        notes.append(f"no treated or control contacts in the waves of campaign {report.campaign!r}")
    elif overall.control == 0:
        notes.append("lift cannot be measured: the campaign has no control group")
    elif overall.treated == 0:
        notes.append("lift cannot be measured: the campaign has no treated customers")
    else:
        lift = overall.absolute_lift
        verdict = (
            f"significant at {report.alpha * 100:g}% (p {_p(overall.p_value)}, {_test_name(overall.test)})"
            if overall.significant
            else f"not significant at {report.alpha * 100:g}% (p {_p(overall.p_value)}, {_test_name(overall.test)})"
        )
        level = f"{(1 - report.alpha) * 100:g}%"
        notes.append(
            f"{_pct(overall.treated_rate)} of the {overall.treated:,} treated customers {noun} against "
            f"{_pct(overall.control_rate)} of the {overall.control:,} control customers: a lift of "
            f"{_points(lift.value)} points ({level} CI {_points(lift.low)} to {_points(lift.high)}), {verdict}"
        )
        inc = overall.incremental_successes
        if overall.significant and None not in (inc.value, inc.low, inc.high):
            notes.append(
                f"the campaign brought about {inc.value:,.0f} additional {gained} "
                f"({level} CI {inc.low:,.0f} to {inc.high:,.0f})"
            )
        if FLAG_CONTROL_TOO_SMALL in overall.flags and report.outcome_events != 0:
            notes.append(
                f"the control group of {overall.control:,} customers is too small for a reliable lift "
                f"(wanted: at least {min_control:,} customers and {min_expected:g} expected successes)"
            )
    if ignored:
        notes.append(f"{ignored:,} contacts in arms other than treatment and control are left out")
    if report.window_days is not None:
        notes.append(f"successes are counted within {report.window_days} days of each wave's date")
    return notes


def no_outcomes_message(report: SuccessReport) -> str:
    """What to say about waves for which no outcome at all has been recorded yet."""
    waves = ", ".join(report.waves) or "none"
    return (
        f"no outcomes recorded yet for wave{'s' if len(report.waves) != 1 else ''} {waves}: the lift cannot be "
        f"measured until they are. Import purchases with `campaign import conversions FILE` (customer_id, "
        f"occurred_at, amount), or have the channel systems post outcomes to the response API "
        f"(POST /v1/outcomes, docs/response-api.md)"
    )


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.2f}%"


def _points(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:+.2f}"


def _p(x: float | None) -> str:
    return "n/a" if x is None else (f"= {x:.3g}" if x >= 0.001 else "< 0.001")


def _test_name(test: str | None) -> str:
    return {"z": "two-proportion z-test", "fisher": "Fisher's exact test"}.get(test or "", "no test")
