"""Model registry: champion and challengers, atomic promotion, decisions with a margin, lineage, the CLI."""

from __future__ import annotations

import threading
from datetime import date

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from orchestrator.db import audit
from orchestrator.db.tables import ModelVersion, table_of
from orchestrator.scoring import registry
from orchestrator.scoring.response import train_response_model
from tests.support.scoring import synthetic_customers


@pytest.fixture(scope="module")
def trained():
    return train_response_model(synthetic_customers(600, seed=3), "responded", exclude=["call_seconds"])


def _register(engine, settings, trained, name="response", **kwargs):
    return registry.register(
        engine,
        settings,
        name,
        trained.model,
        trained.metrics,
        trained.fingerprint,
        trained.target,
        trained.rows,
        **kwargs,
    )


def _challenger(engine, settings, trained, score, metric="roc_auc", name="response", **kwargs):
    return _register(
        engine, settings, trained, name, stage="challenger", validation_metric=metric, validation_score=score, **kwargs
    )


def _stages(engine, name="response") -> dict[int, str]:
    return {r.version: r.stage for r in registry.list_models(engine) if r.name == name}


def _champions(engine, name="response") -> int:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.count())
            .select_from(table_of(ModelVersion))
            .where(table_of(ModelVersion).c.name == name, table_of(ModelVersion).c.stage == "champion")
        ).scalar_one()


# --- stages on registration ---------------------------------------------------------------


def test_first_version_is_champion_and_a_challenger_leaves_it(engine, settings, trained):
    first = _challenger(engine, settings, trained, 0.7)  # asked for challenger: the first version is champion anyway
    assert first.stage == "champion" and first.promoted_at is not None
    second = _challenger(engine, settings, trained, 0.9)
    assert second.stage == "challenger" and second.promoted_at is None
    assert registry.get(engine, "response").version == 1
    assert _stages(engine) == {1: "champion", 2: "challenger"}


def test_existing_callers_register_champions(engine, settings, trained):
    record = _register(engine, settings, trained)  # no new keyword
    assert record.stage == "champion" and record.lineage["rows"] == trained.rows
    assert record.validation_metric is None and record.validation_score is None


def test_validation_score_needs_its_metric_and_a_finite_value(engine, settings, trained):
    with pytest.raises(ValueError, match="a validation_score needs its validation_metric"):
        _register(engine, settings, trained, validation_score=0.7)
    with pytest.raises(ValueError, match="validation_score must be a finite number"):
        _register(engine, settings, trained, validation_metric="roc_auc", validation_score=float("nan"))
    with pytest.raises(ValueError, match="lineage must be a JSON object"):
        _register(engine, settings, trained, lineage={"thing": object()})


# --- promote ------------------------------------------------------------------------------


def test_promote_retires_the_champion(engine, settings, trained):
    _challenger(engine, settings, trained, 0.7)
    _challenger(engine, settings, trained, 0.8)
    promoted = registry.promote(engine, "response", 2)
    assert promoted.stage == "champion" and promoted.promoted_at is not None
    assert _stages(engine) == {1: "retired", 2: "champion"}
    assert registry.get(engine, "response").version == 2
    assert registry.promote(engine, "response", 2).stage == "champion"  # again: nothing changes
    assert _stages(engine) == {1: "retired", 2: "champion"}

    with pytest.raises(
        registry.PromotionRefused,
        match=r"model 'response' version 1 is retired; promote it again with force=True \(--force\)",
    ):
        registry.promote(engine, "response", 1)
    assert _stages(engine) == {1: "retired", 2: "champion"}
    assert registry.promote(engine, "response", 1, force=True).stage == "champion"
    assert _stages(engine) == {1: "champion", 2: "retired"}
    # every promotion that changed the champion is in the audit trail, in its transaction; the no-op is not
    promotions = audit.events(engine, "model-promote")
    assert [(e.details["version"], e.details["forced"], e.counts["retired"]) for e in promotions] == [
        (1, 0, 0),  # the first version registered, champion from the start
        (2, 0, 1),
        (1, 1, 1),
    ]
    assert all(e.actor.startswith("os:") and e.subject.startswith("model response") for e in promotions)


def test_promote_ends_legacy_double_champions(engine, settings, trained):
    _register(engine, settings, trained)
    _register(engine, settings, trained)  # stage="champion" as before: two champions
    _register(engine, settings, trained, stage="challenger")
    registry.promote(engine, "response", 3)
    assert _stages(engine) == {1: "retired", 2: "retired", 3: "champion"}


def test_promote_unknown_model_or_version(engine, settings, trained):
    _register(engine, settings, trained)
    _challenger(engine, settings, trained, 0.7)
    with pytest.raises(
        registry.ModelNotFound, match=r"there is no model 'respnse', did you mean 'response'\? \(registered: response\)"
    ):
        registry.promote(engine, "respnse", 1)
    with pytest.raises(
        registry.ModelNotFound, match=r"model 'response' has no version 9; versions: 1 \(champion\), 2 \(challenger\)"
    ):
        registry.promote(engine, "response", 9)
    assert _stages(engine) == {1: "champion", 2: "challenger"}


def test_concurrent_promotions_leave_exactly_one_champion(engine, settings, trained):
    n = 6
    for score in range(n + 1):
        _challenger(engine, settings, trained, 0.5 + score / 100)
    seen: list[int] = []
    done = threading.Event()

    def watch() -> None:  # no moment with two or no champions
        while not done.is_set():
            seen.append(_champions(engine))

    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def promote(version: int) -> None:
        try:
            barrier.wait()
            registry.promote(engine, "response", version)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    watcher = threading.Thread(target=watch)
    watcher.start()
    threads = [threading.Thread(target=promote, args=(version,)) for version in range(2, n + 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    done.set()
    watcher.join(10)
    assert errors == []
    stages = _stages(engine)
    assert list(stages.values()).count("champion") == 1
    assert sorted(v for v, s in stages.items() if s == "retired") == sorted(
        set(range(1, n + 2)) - {registry.get(engine, "response").version}
    )
    assert seen and set(seen) == {1}


# --- decide and promote_if_better --------------------------------------------------------


@pytest.mark.parametrize(
    ("challenger", "verdict"),
    [(0.7499, "keep"), (0.75, "promote"), (0.7501, "promote")],
    ids=["just-below", "equal", "above"],
)
def test_decide_and_promote_if_better_with_a_margin(engine, settings, trained, challenger, verdict):
    _challenger(engine, settings, trained, 0.70)
    _challenger(engine, settings, trained, challenger)
    decision = registry.decide(engine, "response", 2, margin=0.05)
    assert (decision.verdict, decision.promote) == (verdict, verdict == "promote")
    assert (decision.champion_version, decision.version, decision.metric) == (1, 2, "roc_auc")
    assert (decision.champion_score, decision.challenger_score, decision.margin) == (0.70, challenger, 0.05)
    assert "\n" not in decision.reason
    if verdict == "keep":
        assert decision.reason == f"keep champion v1: roc_auc {challenger:.4f} < 0.7000 + margin 0.05"
    else:
        assert decision.reason == f"promote: roc_auc {challenger:.4f} >= champion v1's 0.7000 + margin 0.05"
    assert _stages(engine) == {1: "champion", 2: "challenger"}  # decide changes nothing

    applied = registry.promote_if_better(engine, "response", 2, 0.05)
    assert applied == decision
    assert _stages(engine) == (
        {1: "retired", 2: "champion"} if verdict == "promote" else {1: "champion", 2: "challenger"}
    )


def test_decide_needs_the_same_metric(engine, settings, trained):
    _challenger(engine, settings, trained, 0.7, metric="roc_auc")
    _challenger(engine, settings, trained, 0.2, metric="qini_auc")
    _register(engine, settings, trained, stage="challenger")  # no validation score
    with pytest.raises(
        registry.MetricMismatch,
        match=(
            r"cannot compare model 'response' version 2 \(qini_auc\) with the champion, version 1 \(roc_auc\): "
            r"the validation metrics differ"
        ),
    ):
        registry.decide(engine, "response", 2, margin=0)
    with pytest.raises(registry.MetricMismatch, match="version 3 has no validation score to compare"):
        registry.promote_if_better(engine, "response", 3, 0)
    with pytest.raises(ValueError, match="margin must be a number of 0 or more; got -0.1"):
        registry.decide(engine, "response", 2, margin=-0.1)
    assert registry.decide(engine, "response", 1, margin=0).verdict == "keep"  # the champion itself
    with pytest.raises(registry.ModelNotFound, match="has no version 4"):
        registry.decide(engine, "response", 4, margin=0)
    assert _stages(engine) == {1: "champion", 2: "challenger", 3: "challenger"}


# --- lineage, compare, load ---------------------------------------------------------------


def test_lineage_is_stored_with_code_version_and_parent(engine, settings, trained):
    _challenger(engine, settings, trained, 0.7)
    lineage = {
        "training_window": {"from": date(2026, 1, 5), "to": date(2026, 3, 30)},
        "waves": ["winback/2026-01-05", "winback/2026-02-02"],
        "outcome": {"type": "conversion", "window_days": 30},
        "validation": "time-ordered: validated on waves from 2026-03-02",
        "rows": np.int64(512),
    }
    record = _challenger(engine, settings, trained, 0.72, lineage=lineage)
    stored = registry.get(engine, "response", record.version).lineage
    assert stored["training_window"] == {"from": "2026-01-05", "to": "2026-03-30"}
    assert stored["waves"] == lineage["waves"] and stored["outcome"] == lineage["outcome"]
    assert stored["rows"] == 512 and stored["parent_version"] == 1
    assert stored["code_version"] == registry.code_version()
    assert stored["code_version"].startswith("0.") or stored["code_version"].startswith("unknown")

    rows = registry.compare(engine, "response", [2, 1])
    assert [r["version"] for r in rows] == [2, 1]
    assert rows[0] | {"created_at": None} == {
        "version": 2,
        "stage": "challenger",
        "kind": "response",
        "validation_metric": "roc_auc",
        "validation_score": 0.72,
        "training_rows": trained.rows,
        "window_from": "2026-01-05",
        "window_to": "2026-03-30",
        "code_version": registry.code_version(),
        "parent_version": 1,
        "created_at": None,
        "promoted_at": None,
    }
    assert [r["version"] for r in registry.compare(engine, "response")] == [1, 2]
    with pytest.raises(
        registry.ModelNotFound, match=r"model 'response' has no version 5; versions: 1 \(champion\), 2 \(challenger\)"
    ):
        registry.compare(engine, "response", [1, 5])
    with pytest.raises(registry.ModelNotFound, match="did you mean 'response'"):
        registry.compare(engine, "responze")


class ConstantUplift:
    """Not a ResponseModel: any estimator with features_ and score_frame can be registered and loaded."""

    def __init__(self) -> None:
        self.features_ = ["age"]
        self.feature_kinds_ = {"age": "number"}

    def score_frame(self, frame: pd.DataFrame) -> np.ndarray:
        return np.full(len(frame), -0.01)


def test_load_any_model_with_score_frame(engine, settings):
    record = registry.register(
        engine,
        settings,
        "uplift",
        ConstantUplift(),
        {},
        "0" * 64,
        "outcome",
        100,
        kind="uplift",
        validation_metric="qini_auc",
        validation_score=0.04,
    )
    model = registry.load(settings, registry.get(engine, "uplift"))
    assert record.kind == "uplift" and isinstance(model, ConstantUplift)
    assert model.score_frame(pd.DataFrame({"age": [30, 40]})).tolist() == [-0.01, -0.01]
    with pytest.raises(ValueError, match="only a fitted model with score_frame can be registered"):
        registry.register(engine, settings, "uplift", object(), {}, "0" * 64, "outcome", 1)


# --- command line -------------------------------------------------------------------------


def test_cli_promote(cli, engine, settings, trained):
    _challenger(engine, settings, trained, 0.7)
    _challenger(engine, settings, trained, 0.8)

    result = cli("promote", "response", 2)
    assert result.exit_code == 0, result.output
    assert "model response version 2 is now the champion; version 1 retired" in result.output
    assert _stages(engine) == {1: "retired", 2: "champion"}

    result = cli("promote", "response", 2)
    assert result.exit_code == 0, result.output
    assert "model response version 2 is already the champion; nothing changed" in result.output

    result = cli("promote", "response", 1)
    assert result.exit_code == 1
    assert "version 1 is retired; promote it again with force=True (--force)" in result.output
    result = cli("promote", "response", 1, "--force")
    assert result.exit_code == 0, result.output
    assert _stages(engine) == {1: "champion", 2: "retired"}

    result = cli("promote", "respons", 1)
    assert result.exit_code == 1
    assert "there is no model 'respons', did you mean 'response'?" in result.output
    result = cli("promote", "response", 7)
    assert result.exit_code == 1
    assert "model 'response' has no version 7; versions: 1 (champion), 2 (retired)" in result.output


def _cells(output: str) -> list[list[str]]:
    """The header and rows of the rich table in ``output``, as lists of cell texts."""
    return [
        [cell.strip() for cell in line.strip().strip("│┃").split("│" if "│" in line else "┃")]
        for line in output.splitlines()
        if line.strip().startswith(("│", "┃"))
    ]


def test_cli_compare_list_show(cli, engine, settings, trained):
    _challenger(engine, settings, trained, 0.7)
    window = {"training_window": {"from": "2026-01-05", "to": "2026-03-30"}, "waves": ["winback/2026-01-05"]}
    _challenger(engine, settings, trained, 0.7512, lineage=window)
    _challenger(engine, settings, trained, 0.1, metric="qini_auc")

    result = cli("compare", "response")
    assert result.exit_code == 0, result.output
    table = _cells(result.output)
    assert table[0][:6] == ["v", "stage", "kind", "metric", "score", "vs champion"]
    rows = {row[0]: dict(zip(table[0], row, strict=True)) for row in table[1:]}
    assert sorted(rows) == ["1", "2", "3"]
    assert rows["2"] | {"trained": ""} == {
        "v": "2",
        "stage": "challenger",
        "kind": "response",
        "metric": "roc_auc",
        "score": "0.7512",
        "vs champion": "+0.0512",
        "rows": "600",
        "window": "2026-01-05 to 2026-03-30",
        "code": registry.code_version(),
        "parent": "1",
        "trained": "",
        "promoted": "-",
    }
    assert rows["1"]["stage"] == "champion" and rows["1"]["vs champion"] == "-" and rows["1"]["promoted"] != "-"
    assert rows["3"]["metric"] == "qini_auc" and rows["3"]["vs champion"] == "-"  # another metric: no difference

    result = cli("compare", "response", 3)  # the champion is the reference even when not shown
    assert result.exit_code == 0, result.output
    assert [row[0] for row in _cells(result.output)[1:]] == ["3"]
    result = cli("compare", "response", 2)
    assert _cells(result.output)[1][5] == "+0.0512"
    result = cli("compare", "response", 1, 9)
    assert result.exit_code == 1
    assert "has no version 9; versions: 1 (champion), 2 (challenger), 3 (challenger)" in result.output

    result = cli("list")
    assert result.exit_code == 0, result.output
    assert "roc_auc 0.7512" in result.output and "2026-01-05 to 2026-03-30" in result.output
    assert registry.code_version() in result.output

    result = cli("show", "response", "--version", 2)
    assert result.exit_code == 0, result.output
    for text in (
        "challenger",
        "roc_auc 0.7512",
        "Lineage",
        "training window",
        "2026-01-05 to 2026-03-30",
        "code version",
        registry.code_version(),
        "parent version",
        "1: winback/2026-01-05",
    ):
        assert text in result.output, text
