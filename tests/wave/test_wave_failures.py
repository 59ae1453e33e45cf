"""A wave that fails after it was opened is never left in ``selecting`` or ``sending``: it gets a status that
says what happened (``failed``: nothing recorded; ``incomplete``: contacts pending) and an error with the
command that resumes it. Real SQLite/PostgreSQL, the plain stages (no Prefect needed)."""

from __future__ import annotations

import pytest

from channels.base import Channel
from orchestrator.db.tables import WaveStatus
from orchestrator.ledger import contacts as ledger
from orchestrator.wave import stages
from tests.support.wave import RULES

WAVE = "2026-11-24"


def test_a_wave_that_fails_before_recording_is_marked_failed_and_runs_afresh(settings, customers):
    prepared = stages.prepare(settings, RULES, WAVE)
    wave = stages.open_wave(settings, prepared)
    assert wave.status == WaveStatus.SELECTING
    error = stages.unrecorded_failure(settings, [prepared], [wave], RuntimeError("disk full"))
    assert isinstance(error, stages.WaveFailed) and isinstance(error.__cause__, RuntimeError)
    message = str(error)
    assert "RuntimeError: disk full" in message and "nothing of it was recorded (status 'failed')" in message
    assert f"campaign run {RULES} --wave {WAVE}" in message
    assert ledger.wave_status(customers, wave.id) == WaveStatus.FAILED

    # the next run selects it afresh and records it
    again = stages.open_wave(settings, prepared)
    assert again.status == WaveStatus.FAILED
    candidates = stages.select_candidates(settings, prepared)
    [plan] = stages.plan(settings, [prepared], [candidates])
    treated, held_out = stages.record(settings, again, plan, prepared.as_of)
    assert treated > 0 and held_out > 0
    assert ledger.wave_status(customers, wave.id) == WaveStatus.RECORDED


def test_invalid_input_stays_what_it_is_but_the_wave_is_not_left_selecting(settings, customers):
    prepared = stages.prepare(settings, RULES, WAVE)
    wave = stages.open_wave(settings, prepared)
    invalid = stages.ValidationFailed([])
    assert stages.unrecorded_failure(settings, [prepared], [wave], invalid) is invalid
    assert ledger.wave_status(customers, wave.id) == WaveStatus.FAILED


class _BrokenChannel(Channel):
    """A channel whose adapter fails with an error the engine does not expect (a bug, not a delivery failure)."""

    name = "email"

    def send(self, batch, *, on_result=None, batch_key=None):  # noqa: ANN001, ANN201, ARG002
        raise KeyError("customer_name")


def test_a_send_that_breaks_leaves_the_wave_incomplete_with_the_command_that_resumes(settings, customers):
    prepared = stages.prepare(settings, RULES, WAVE)
    wave = stages.open_wave(settings, prepared)
    [plan] = stages.plan(settings, [prepared], [stages.select_candidates(settings, prepared)])
    treated, _ = stages.record(settings, wave, plan, prepared.as_of)
    with pytest.raises(stages.WaveIncomplete) as raised:
        stages.send_pending(settings, prepared, wave, channel_factory=lambda _s, _p: _BrokenChannel())
    message = str(raised.value)
    assert "KeyError" in message and f"campaign run {RULES} --wave {WAVE}" in message
    assert "stay pending (wave status 'incomplete')" in message
    assert ledger.wave_status(customers, wave.id) == WaveStatus.INCOMPLETE
    assert ledger.wave_counts(customers, wave.id)["pending"] == treated
