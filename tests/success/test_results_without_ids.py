"""``campaign import results`` on a file without a customer id column (``--generate-ids``), and its bad bytes."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from orchestrator.cli import main as cli_main
from orchestrator.cli import output as cli_output
from orchestrator.errors import ValidationFailed
from orchestrator.ledger.snapshots import read_snapshot
from orchestrator.responses.results_import import import_results

NO_IDS = "arm,visited,spend,history\nmens,1,10.5,100\nwomens,0,0,20\ncontrol,yes,0,35\nmens,no,0,7\ncontrol,0,3,1\n"
ARGS = {"campaign": "mail-test", "arm_column": "arm", "control_label": "control", "outcome_columns": ["visited"]}


def test_results_without_ids_need_generate_ids(engine, tmp_path):
    path = tmp_path / "mailing.csv"
    path.write_text(NO_IDS)
    with pytest.raises(ValidationFailed) as caught:
        import_results(engine, path, **ARGS)
    assert "id column 'customer_id' is not in the header" in str(caught.value)
    assert "--generate-ids if the file has no ids" in str(caught.value)


def test_generated_result_ids_are_per_row_and_name_no_customer(engine, settings, tmp_path):
    path = tmp_path / "mailing.csv"
    path.write_text(NO_IDS)
    report = import_results(
        engine, path, **ARGS, wave_date=date(2026, 3, 1), settings=settings, generate_ids=True, covariates=["history"]
    )

    assert report.customers == 5 and report.arms == {"control": 2, "mens": 2, "womens": 1} and report.events == 2
    with engine.connect() as conn:
        contacts = conn.execute(sa.text("select customer_id, arm, variant from contacts order by id")).all()
        wave_id = conn.execute(sa.text("select id from waves")).scalar_one()
    assert [tuple(r) for r in contacts] == [
        ("mail-test/mailing/1", "treatment", "mens"),
        ("mail-test/mailing/2", "treatment", "womens"),
        ("mail-test/mailing/3", "control", None),
        ("mail-test/mailing/4", "treatment", "mens"),
        ("mail-test/mailing/5", "control", None),
    ]
    snapshot = read_snapshot(settings, wave_id)
    assert snapshot is not None
    assert list(snapshot["customer_id"]) == [f"mail-test/mailing/{n}" for n in range(1, 6)]
    assert list(snapshot["history"]) == [100, 20, 35, 7, 1]
    assert import_results(engine, path, **ARGS, generate_ids=True).already_imported


def test_generate_ids_with_an_id_column_is_refused(engine, tmp_path):
    path = tmp_path / "mailing.csv"
    path.write_text("customer_id,arm,visited\n1,mens,1\n2,control,0\n")
    with pytest.raises(ValidationFailed, match="column 'customer_id' holds customer ids: leave out --generate-ids"):
        import_results(engine, path, **ARGS, generate_ids=True)


def test_a_bad_byte_is_reported_with_its_line(engine, tmp_path):
    path = tmp_path / "mailing.csv"
    path.write_bytes(NO_IDS.encode().replace(b"womens", b"wom\xe9ns"))
    with pytest.raises(ValidationFailed, match="line 3: byte 4 of the line .* not valid UTF-8"):
        import_results(engine, path, **ARGS, generate_ids=True)


def test_command_imports_results_without_ids(make_cli, engine, tmp_path):
    cli = make_cli(cli_main.app, "import", "results", wide=[cli_main, cli_output])
    path = tmp_path / "mailing.csv"
    path.write_text(NO_IDS)
    result = cli(path, "--campaign", "mail-test", "--outcome", "visited", "--generate-ids")

    assert result.exit_code == 0, result.output
    assert "campaign report mail-test" in result.output
    with engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from contacts")).scalar_one() == 5
