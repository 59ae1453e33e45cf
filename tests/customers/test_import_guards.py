"""Imports that never guess destructively (each test runs on SQLite and PostgreSQL).

A file without ids, a wrong delimiter, a bad byte, blanks in a numeric column, an unclosed quote,
a NUL byte: each is either imported as the user meant it, or refused with its line and the option
that fixes it, and the customer table is left exactly as it was.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from orchestrator.cli import data as cli_data
from orchestrator.cli import main as cli_main
from orchestrator.cli import output as cli_output
from orchestrator.customers.importer import BadRow, ImportFailed, import_customers
from orchestrator.customers.table import customer_columns


def write(tmp_path: Path, name: str, data: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def rows(engine: sa.Engine) -> dict[str, dict]:
    reflected = sa.Table("customers", sa.MetaData(), autoload_with=engine)
    with engine.connect() as conn:
        return {row["customer_id"]: dict(row) for row in conn.execute(sa.select(reflected)).mappings()}


PEOPLE = "name,email,total\nJürgen,j@example.com,12.5\nAnna,a@example.com,7\nZoë,z@example.com,3\n"


# --- the newcomer's four files -------------------------------------------------------------------


def test_newcomer_files_never_overwrite_or_misdecode(engine, tmp_path):
    # 1. a file without ids into the empty table: the data row numbers are the ids
    first = import_customers(engine, write(tmp_path, "people.csv", PEOPLE))
    assert first.id_generated and first.ids == "generated: 1 to 3"
    before = rows(engine)
    assert {k: v["name"] for k, v in before.items()} == {"1": "Jürgen", "2": "Anna", "3": "Zoë"}

    # ... a second file without ids is refused: its row numbers would overwrite customers 1 and 2
    others = write(tmp_path, "others.csv", "name,email,total\nBen,b@example.com,1\nCleo,c@example.com,2\n")
    with pytest.raises(ImportFailed) as caught:
        import_customers(engine, others)
    message = str(caught.value)
    assert "no customer id column (columns: name, email, total)" in message
    assert "already holds 3 customers" in message and "--id-column" in message and "--generate-ids" in message
    assert rows(engine) == before

    # ... unless asked to add them as new customers, which appends and never updates
    added = import_customers(engine, others, generate_ids=True)
    assert (added.inserted, added.updated, added.ids) == (2, 0, "generated: 4 to 5")
    after = rows(engine)
    assert {k: after[k] for k in before} == before
    assert {k: v["name"] for k, v in after.items() if k not in before} == {"4": "Ben", "5": "Cleo"}

    # 2. a ';' file read with ',': one column, refused with the delimiter to give
    semicolons = write(tmp_path, "semi.csv", "name;email;total\nJürgen;x@example.com;99\n")
    with pytest.raises(ImportFailed, match="reads as a single column with the delimiter ','.*--delimiter ';'"):
        import_customers(engine, semicolons, delimiter=",", generate_ids=True)
    assert rows(engine) == after

    # 3. a UTF-8 file with one bad byte: refused with line and byte, never read as Windows-1252
    damaged = write(tmp_path, "damaged.csv", "name,email,total\nJürgen,x@example.com,1\n".encode() + b"Ana\xef,y,2\n")
    with pytest.raises(ImportFailed, match="line 3: byte 4 of the line .* not valid UTF-8; .* probably damaged"):
        import_customers(engine, damaged, generate_ids=True)
    assert rows(engine) == after
    assert rows(engine)["1"]["name"] == "Jürgen"  # not 'JÃ¼rgen'

    # 4. a numeric column with blanks (a lone space, as in the telecom churn file) stays numeric
    blanks = write(tmp_path, "blanks.csv", "name,email,total\nDan,d@example.com, \nEve,e@example.com,19.25\n")
    report = import_customers(engine, blanks, generate_ids=True)
    assert report.types["total"] == "number: 1 numbers, 1 blanks"
    assert customer_columns(engine)["total"] == "number"
    final = rows(engine)
    assert final["6"]["total"] is None and final["7"]["total"] == pytest.approx(19.25)
    assert {k: final[k] for k in after} == after


# --- ids -----------------------------------------------------------------------------------------


def test_generated_ids_start_after_the_largest_numeric_id(engine, tmp_path):
    import_customers(engine, write(tmp_path, "a.csv", "customer_id,name\nc9,Anna\n17,Ben\n0042,Cleo\n"))
    report = import_customers(engine, write(tmp_path, "b.csv", "name\nDan\nEve\n"), generate_ids=True)

    assert report.ids == "generated: 43 to 44" and report.inserted == 2
    assert sorted(rows(engine)) == ["0042", "17", "43", "44", "c9"]


def test_generate_ids_with_an_id_column_is_refused(engine, tmp_path):
    path = write(tmp_path, "a.csv", "Customer ID,name\nc1,Anna\n")
    with pytest.raises(ImportFailed, match="column 'Customer ID' holds customer ids: leave out --generate-ids"):
        import_customers(engine, path, generate_ids=True)
    assert customer_columns(engine) is None


# --- delimiter and encoding ------------------------------------------------------------------------


def test_the_report_says_what_was_sniffed_and_what_was_given(engine, tmp_path):
    path = write(tmp_path, "a.csv", "customer_id;city\nc1;Lyon\nc2;Nice\n")
    sniffed = import_customers(engine, path)
    given = import_customers(engine, path, delimiter=";", header=True, encoding="utf-8")

    assert sniffed.layout == {
        "format": "CSV",
        "delimiter": "';' (sniffed: the same count on every line)",
        "header": "yes (sniffed)",
        "encoding": "utf-8 (the default; every byte is valid UTF-8)",
    }
    assert given.layout["delimiter"] == "';' (given)" and given.layout["encoding"] == "utf-8 (given)"


@pytest.mark.parametrize(("separator", "shown"), [("\t", "tab"), ("|", "'|'")])
def test_one_column_header_with_other_separators_is_refused(engine, tmp_path, separator, shown):
    path = write(tmp_path, "a.csv", f"customer_id{separator}city\nc1{separator}Lyon\n")
    with pytest.raises(ImportFailed, match=f"line 1 reads as a single column .* holds {shown}.*--delimiter {shown}"):
        import_customers(engine, path, delimiter=",")
    assert customer_columns(engine) is None


def test_a_single_column_file_is_fine(engine, tmp_path):
    report = import_customers(engine, write(tmp_path, "ids.csv", "customer_id\nc1\nc2\n"))

    assert report.inserted == 2 and report.layout["delimiter"].startswith("',' (sniffed: none on line 1")


def test_unknown_encoding_and_utf16_without_the_option(engine, tmp_path):
    path = write(tmp_path, "wide.csv", "customer_id,name\nc1,Jürgen\n".encode("utf-16"))
    with pytest.raises(ImportFailed, match="UTF-16 byte order mark\\); give --encoding utf-16"):
        import_customers(engine, path)
    with pytest.raises(ImportFailed, match="unknown encoding 'utf-61'"):
        import_customers(engine, path, encoding="utf-61")

    import_customers(engine, path, encoding="utf-16")
    assert rows(engine)["c1"]["name"] == "Jürgen"


# --- numeric columns ---------------------------------------------------------------------------------


def test_blanks_and_null_markers_keep_a_column_numeric(engine, tmp_path):
    text = "customer_id,tenure,charges,phone\nc1,1, 29.85,+4930123\nc2, ,, \nc3,NA,  ,\nc4,-7,1e3,+4930456\n"
    report = import_customers(engine, write(tmp_path, "churn.csv", text))

    assert report.types["tenure"] == "integer: 2 numbers, 2 blanks"
    assert report.types["charges"] == "number: 2 numbers, 2 blanks"
    assert report.columns["tenure"] == "integer" and report.columns["charges"] == "number"
    assert report.columns["phone"] == "text"  # a leading '+' is not a number: phone numbers stay as they are
    got = {k: (v["tenure"], v["charges"], v["phone"]) for k, v in rows(engine).items()}
    assert got == {
        "c1": (1, 29.85, "+4930123"),
        "c2": (None, None, " "),
        "c3": (None, None, None),
        "c4": (-7, 1000.0, "+4930456"),
    }


def _numbers_with_one_word(tmp_path: Path) -> Path:
    lines = [f"c{i},{i * 1.5}" for i in range(40)]
    lines[22] = "c22,unknown"  # line 24 of the file
    return write(tmp_path, "spend.csv", "customer_id,spend\n" + "\n".join(lines) + "\n")


def test_one_word_in_a_numeric_column_rejects_its_row_not_the_column(engine, tmp_path):
    path = _numbers_with_one_word(tmp_path)
    rejects = tmp_path / "rejects" / "spend.rejected.csv"
    report = import_customers(engine, path, reject_file=rejects)

    reason = "column 'spend' holds numbers, but not in this row; correct it, or import with --text spend"
    assert report.bad_rows == [BadRow(24, reason)]
    assert report.types["spend"] == "number: 39 numbers, 0 blanks, 1 rejected as not numbers"
    assert customer_columns(engine)["spend"] == "number" and "c22" not in rows(engine)
    assert report.reject_file == rejects
    assert rejects.read_text() == "customer_id,spend\nc22,unknown\n"
    assert rejects.with_suffix(".txt").read_text() == f"{path}:24: {reason}\n"

    with pytest.raises(ImportFailed, match="1 bad row"):
        import_customers(engine, path, strict=True)


def test_text_option_keeps_a_column_as_text(engine, tmp_path):
    text = "customer_id,zip\nc1,01234\nc2,75001\n"
    report = import_customers(engine, write(tmp_path, "zip.csv", text), text_columns=["zip"])

    assert report.columns["zip"] == "text" and report.types["zip"] == "text: 2 values, 0 blanks, kept as text (--text)"
    assert rows(engine)["c1"]["zip"] == "01234"


def test_digits_written_like_codes_stay_as_written(engine, tmp_path):
    text = "customer_id,zip,phone,score,balance\nc1,01234,+4930123,0.5,0\nc2,75001,,-3,12\nc3,,+4930456,0,-0.25\n"
    report = import_customers(engine, write(tmp_path, "codes.csv", text))

    assert report.columns == {
        "customer_id": "text",
        "zip": "text",
        "phone": "text",
        "score": "number",
        "balance": "number",
    }
    assert report.types["zip"] == (
        "text: 2 values, 1 blanks, written like codes (a leading zero or '+' in the first 64 KiB), so kept as written"
    )
    got = {k: (v["zip"], v["phone"], v["score"]) for k, v in rows(engine).items()}
    assert got == {"c1": ("01234", "+4930123", 0.5), "c2": ("75001", None, -3.0), "c3": (None, "+4930456", 0.0)}


def test_a_mostly_text_column_stays_text(engine, tmp_path):
    report = import_customers(engine, write(tmp_path, "a.csv", "customer_id,code\nc1,12\nc2,AB\nc3,7\n"))

    assert report.types["code"] == "text: 3 values, 0 blanks, 1 not numbers" and report.bad_rows == []


# --- quotes and NUL bytes ----------------------------------------------------------------------------


def test_quote_left_open_to_the_end_of_the_file(engine, tmp_path):
    text = 'customer_id,name,age\nc1,Anna,31\nc2,"Ben,45\nc3,Cleo,52\nc4,Dan,40\n'
    with pytest.raises(ImportFailed, match="unterminated quote on line 3") as caught:
        import_customers(engine, write(tmp_path, "open.csv", text))

    assert caught.value.bad_rows == [
        BadRow(3, "a quote opened on this line is never closed: it swallows every following line")
    ]
    assert customer_columns(engine) is None


def test_quote_that_swallows_rows_into_a_value(engine, tmp_path):
    text = 'customer_id,name,age\nc1,Anna,31\nc2,"Ben,45\nc3,Cleo,52\nc4,"Dan,40\nc5,Eve,29\n'
    with pytest.raises(ImportFailed, match="unterminated quote on line 3") as caught:
        import_customers(engine, write(tmp_path, "swallow.csv", text))

    assert [row.line for row in caught.value.bad_rows] == [3]
    assert "column 'name'" in caught.value.bad_rows[0].reason
    assert customer_columns(engine) is None


def test_nul_byte_is_an_error_with_its_line(engine, tmp_path):
    early = write(tmp_path, "early.csv", b"customer_id,name\nc1,Anna\nc2,B\x00en\n")
    with pytest.raises(ImportFailed, match="line 3 holds a NUL byte"):
        import_customers(engine, early)

    filler = b"".join(b"c%d,Anna\n" % i for i in range(8_000))  # past the sniffed sample
    late = write(tmp_path, "late.csv", b"customer_id,name\n" + filler + b"x,B\x00en\n")
    with pytest.raises(ImportFailed, match="1 row\\(s\\) hold a NUL byte \\(in column 'name'\\)") as caught:
        import_customers(engine, late)
    assert caught.value.bad_rows == [BadRow(8_002, "a NUL byte (\\0) in a value")]
    assert customer_columns(engine) is None


def test_parquet_rejects_are_parquet(engine, tmp_path):
    path = tmp_path / "a.parquet"
    pq.write_table(pa.table({"customer_id": ["p1", None, "p3"], "age": [1, 2, 3]}), path)
    report = import_customers(engine, path, reject_file=tmp_path / "r.parquet")

    assert report.bad_rows == [BadRow(2, "no customer id (column 'customer_id' is empty)")]
    assert pq.read_table(tmp_path / "r.parquet").to_pylist() == [{"customer_id": None, "age": 2}]


# --- the command -------------------------------------------------------------------------------------


@pytest.fixture
def cli(make_cli):
    return make_cli(cli_main.app, "import", "customers", wide=[cli_data, cli_output])


def test_command_reports_types_layout_and_skipped_rows(cli, engine, settings, tmp_path):
    text = 'customer_id;age;note\nc1;31;"two\nlines"\nc2;40\nc3; ;x\n'
    result = cli(write(tmp_path, "people.csv", text))

    assert result.exit_code == 0, result.output
    assert "';' (sniffed: the same count on every line)" in result.output
    assert "integer: 1 numbers, 1 blanks" in result.output
    rejects = list((settings.paths.data_dir / "rejects").glob("people.csv-*.rejected.csv"))
    assert len(rejects) == 1 and rejects[0].read_text() == "customer_id;age;note\nc2;40\n"
    assert f"warning: 1 row(s) of {tmp_path / 'people.csv'} were skipped; they are in {rejects[0]}" in result.output
    assert sorted(rows(engine)) == ["c1", "c3"]


def test_command_refuses_a_second_file_without_ids(cli, engine, tmp_path):
    assert cli(write(tmp_path, "a.csv", PEOPLE)).exit_code == 0
    refused = cli(write(tmp_path, "b.csv", PEOPLE))
    assert refused.exit_code == 1 and "--id-column" in refused.output
    added = cli(write(tmp_path, "b.csv", PEOPLE), "--generate-ids")
    assert added.exit_code == 0, added.output
    assert len(rows(engine)) == 6
    tab = cli(write(tmp_path, "c.tsv", "customer_id\tx\nc1\t1\n"), "--delimiter", "tab")
    assert tab.exit_code == 0, tab.output


def test_long_columns_words_early_and_one_word_late():
    from orchestrator.customers.columns import settle_column

    names = settle_column(Path("x.csv"), "name", pa.chunked_array([["Anna", "Ben"] * 2_500]))
    assert names.reason == "text: 5,000 values, 0 blanks, more than 1% of them not numbers" and names.bad is None
    numbers = [str(i) for i in range(5_000)]
    numbers[4_990] = "n.a."
    spend = settle_column(Path("x.csv"), "spend", pa.chunked_array([numbers]))
    assert spend.reason == "integer: 4,999 numbers, 0 blanks, 1 rejected as not numbers"
    assert spend.bad is not None and spend.bad.nonzero()[0].tolist() == [4_990]
    assert spend.column[4_990].as_py() is None and spend.column[4_999].as_py() == 4_999


def test_telecom_churn_total_charges():
    """The churn file's TotalCharges: 7,032 amounts and 11 blanks written as a space."""
    from orchestrator.customers.columns import settle_column

    values = [f"{20 + i * 0.35:.2f}" for i in range(7_032)] + [" "] * 11
    settled = settle_column(Path("churn.csv"), "TotalCharges", pa.chunked_array([values]))

    assert settled.reason == "number: 7,032 numbers, 11 blanks" and settled.bad is None
    assert settled.column.type == pa.float64() and settled.column.null_count == 11


def test_insert_only_load_never_updates(engine, tmp_path):
    """The guard under ``generate_ids``: if a generated id exists after all, nothing is written."""
    from orchestrator.customers.load import load_customers
    from orchestrator.customers.report import ImportReport

    import_customers(engine, write(tmp_path, "a.csv", "customer_id,name\n1,Anna\n"))
    clash = pa.table({"customer_id": ["2", "1"], "name": ["Ben", "Mallory"]})
    with pytest.raises(ImportFailed, match="1 generated id\\(s\\) are already in table 'customers'"):
        with engine.begin() as conn:
            load_customers(conn, tmp_path / "b.csv", "customers", clash, ImportReport(), insert_only=True)
    assert rows(engine) == {"1": {"customer_id": "1", "name": "Anna"}}


def test_nul_byte_in_parquet(engine, tmp_path):
    path = tmp_path / "a.parquet"
    pq.write_table(pa.table({"customer_id": ["p1", "p2"], "name": ["Anna", "B\x00en"]}), path)
    with pytest.raises(ImportFailed, match="hold a NUL byte") as caught:
        import_customers(engine, path)
    assert [row.line for row in caught.value.bad_rows] == [2]
    assert customer_columns(engine) is None
