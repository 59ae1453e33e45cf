"""The wave's tables for people: one meaning of "selected" in the summary and the funnel, and
thousands separators on every number."""

from __future__ import annotations

from rich.console import Console

from orchestrator.wave.console import SELECTED, print_summary

SUMMARY = {
    "campaign": "winback-email",
    "wave": "2026-12-11",
    "dry_run": False,
    "selected": 13_820,
    "treated": 12_400,
    "control": 1_380,
    "global_control": 40,
    "sent_this_run": 12_363,
    "ledger_sent": 12_363,
    "ledger_failed": 21,
    "ledger_skipped": 16,
    "ledger_pending": 0,
    "status": "completed",
    "channels": {"email": 12_400},
    "funnel": [
        {"stage": "customers", "label": "customer table", "remaining": 64_000, "removed": 0},
        {"stage": "audience", "label": "lapsed 90 days", "remaining": 13_820, "removed": 50_180},
        {"stage": "global control", "label": "held out of every campaign", "remaining": 13_780, "removed": 40},
        {"stage": "control", "label": "random control group (10%) held out", "remaining": 12_400, "removed": 1_380},
    ],
}


def test_selected_means_one_number_in_summary_and_funnel():
    console = Console(record=True, width=160)
    print_summary(console, SUMMARY)
    out = console.export_text()
    assert f"{SELECTED}" in out and "13,820" in out
    assert "selected 13,820 = treatment 12,400 + control 1,380 + global control 40" in out  # the funnel's caption
    assert SUMMARY["treated"] + SUMMARY["control"] + SUMMARY["global_control"] == SUMMARY["selected"]
    for number in ("64,000", "-50,180", "12,363", "12,400"):
        assert number in out
    assert "12363" not in out and "64000" not in out
