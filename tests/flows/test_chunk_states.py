"""A chunk task that left contacts pending does not end "Completed" in Prefect (real Prefect API)."""

from __future__ import annotations

from dataclasses import dataclass

from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

from flows.chunk_runner import prefect_mapper


@dataclass
class _Result:
    sent: int
    failure: str | None = None


def send_some(sent: int) -> _Result:
    return _Result(sent, "SMTP server unreachable" if sent == 2 else None)


@flow
def _two_chunks() -> list[int]:
    return [r.sent for r in prefect_mapper(send_some, [(1,), (2,)])]


def test_a_chunk_with_pending_contacts_ends_incomplete_and_keeps_its_result(prefect_api_url):
    state = _two_chunks(return_state=True)
    assert state.result() == [1, 2]  # the flow still gets every chunk's counts
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
        )
    names = sorted((run.name, run.state.name, run.state.message or "") for run in runs)
    assert names == [  # chunk tasks are named "<what> i/n"
        ("send some 1/2", "Completed", ""),
        ("send some 2/2", "Incomplete", "contacts left pending: SMTP server unreachable"),
    ]


def test_chunk_labels_name_the_channels_of_a_chunk():
    import numpy as np

    from flows.chunk_runner import chunk_label
    from orchestrator.delivery.sending import deliver_chunk
    from orchestrator.wave.stages import render_chunk

    several = np.array(["email", "email", "call_center", "email"], dtype=object)
    assert chunk_label(render_chunk, (None, None, several, None, None)) == "render email+call_center"
    assert chunk_label(render_chunk, (None, None, np.array(["email"], dtype=object), None, None)) == "render email"
    assert chunk_label(deliver_chunk, (None, None, None, "call_center")) == "send call_center"
    assert chunk_label(render_chunk, ()) == "render"
