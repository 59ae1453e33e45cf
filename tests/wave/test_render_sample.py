"""The sample rendered before a wave: the first ``sample`` treated customers of each channel, rendered with
that channel's builder, in chunks that may hold several channels (one reflection of the customer table each)."""

from __future__ import annotations

import shutil
from collections import Counter

import numpy as np
import pytest

from orchestrator.customers.importer import import_customers
from orchestrator.demo.synthetic import write_csv
from orchestrator.execution.chunks import in_process
from orchestrator.wave import stages
from tests.support import REPO

WAVE = "2026-11-24"  # a Tuesday: not a blocked day of the shipped policy


@pytest.fixture
def planned(settings, engine, tmp_path):
    shutil.copytree(REPO / "rules", tmp_path / "rules")
    paths = settings.paths.model_copy(update={"rules_dir": tmp_path / "rules", "templates_dir": REPO / "templates"})
    settings = settings.model_copy(update={"paths": paths})
    import_customers(engine, write_csv(tmp_path / "customers.csv", 3000, seed=5))
    rules = tmp_path / "rules" / "retention-multichannel.yaml"
    prepared = stages.prepare(settings, rules, WAVE)
    plan = stages.plan(settings, [prepared], [stages.select_candidates(settings, prepared)])[0]
    return settings, prepared, plan


def test_each_channel_s_sample_is_rendered_with_its_own_builder_in_mixed_chunks(planned):
    settings, prepared, plan = planned
    contacts = plan.contacts
    treated = Counter(contacts.channel[contacts.treated].tolist())
    assert len(treated) >= 2, treated  # the campaign treats customers on several channels
    sample = 7
    settings = settings.model_copy(
        update={"execution": settings.execution.model_copy(update={"chunk_size": 5})}  # chunks straddle channels
    )
    seen: list[list[str]] = []

    def recording(fn, calls):  # noqa: ANN001, ANN202
        seen.extend(list(dict.fromkeys(call[2].tolist())) for call in calls)
        return in_process(fn, calls)

    check = stages.render_selection(settings, prepared, plan, sample=sample, mapper=recording)
    assert check.errors == 0, [str(p) for p in check.problems]
    assert check.rendered == sum(min(sample, n) for n in treated.values())
    assert any(len(channels) > 1 for channels in seen)  # one chunk rendered several channels
    everything = stages.render_selection(settings, prepared, plan, sample=None)
    assert everything.rendered == int(np.count_nonzero(contacts.treated & np.isin(contacts.channel, list(treated))))
