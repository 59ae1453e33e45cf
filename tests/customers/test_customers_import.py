"""Customer import against real databases (each test runs on SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from orchestrator.customers import importer as customers
from orchestrator.customers.identifiers import normalise_names
from orchestrator.customers.importer import BadRow, ImportFailed, import_customers
from orchestrator.customers.table import customer_columns


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def rows(engine: sa.Engine, table: str = "customers") -> dict[str, dict]:
    """``{customer_id: row}`` of the whole table, values converted by the reflected column types."""
    reflected = sa.Table(table, sa.MetaData(), autoload_with=engine)
    with engine.connect() as conn:
        result = conn.execute(sa.select(reflected)).mappings().all()
    return {row["customer_id"]: dict(row) for row in result}


# --- names ---------------------------------------------------------------------------------


def test_names_become_safe_identifiers():
    names = ["Customer ID", "emp.var.rate", "2nd Phone", "", "Name", "name", "__x__", "Prénom", "default", "a" * 80]
    assert normalise_names(names) == [
        "customer_id",
        "emp_var_rate",
        "c_2nd_phone",
        "col_4",
        "name",
        "name_2",
        "x",
        "prenom",
        "default",
        "a" * 63,
    ]


def test_long_duplicate_names_stay_within_63_characters():
    names = normalise_names(["b" * 70, "b" * 70])
    assert names == ["b" * 63, "b" * 61 + "_2"]


# --- the bank data set ---------------------------------------------------------------------


def test_bank_file_imports_as_is(engine, bank_csv):
    report = import_customers(engine, bank_csv)

    assert (report.rows_read, report.rows_imported, report.inserted, report.updated) == (41188, 41188, 41188, 0)
    assert report.bad_rows == []
    assert report.id_generated
    assert report.renamed["emp.var.rate"] == "emp_var_rate"
    assert {"emp_var_rate", "cons_price_idx", "nr_employed", "default", "y"} <= set(report.columns)
    assert report.columns["age"] == "integer"
    assert report.columns["euribor3m"] == "number"
    assert report.columns["job"] == "text"
    assert report.columns["customer_id"] == "text"
    assert customer_columns(engine) == report.columns
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM customers")).scalar_one() == 41188
        first = conn.execute(sa.text("SELECT * FROM customers WHERE customer_id = '1'")).mappings().one()
        last = conn.execute(sa.text("SELECT age, y FROM customers WHERE customer_id = '41188'")).one()
    # the first data line: 56;"housemaid";"married";"basic.4y";"no";...;1.1;93.994;-36.4;4.857;5191;"no"
    assert first["age"] == 56 and first["job"] == "housemaid" and first["default"] == "no"
    assert first["emp_var_rate"] == pytest.approx(1.1) and first["nr_employed"] == pytest.approx(5191)
    assert last == (74, "no")


# --- sniffing ------------------------------------------------------------------------------


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiter_is_sniffed(engine, tmp_path, delimiter):
    lines = [["Customer ID", "age", "city"], ["a1", "31", "Lyon"], ["a2", "45", "Paris, 11e"], ["a3", "", "Nice"]]
    text = "\n".join(delimiter.join(f'"{v}"' if "," in v else v for v in line) for line in lines) + "\n"
    report = import_customers(engine, write(tmp_path, "people.csv", text))

    assert report.columns == {"customer_id": "text", "age": "integer", "city": "text"}
    assert not report.id_generated
    assert rows(engine) == {
        "a1": {"customer_id": "a1", "age": 31, "city": "Lyon"},
        "a2": {"customer_id": "a2", "age": 45, "city": "Paris, 11e"},
        "a3": {"customer_id": "a3", "age": None, "city": "Nice"},
    }


def test_file_without_header_gets_numbered_columns(engine, tmp_path):
    path = write(tmp_path, "people.tsv", "17\tAnna\t31\n18\tBen\t45\n19\tCleo\t52\n")
    report = import_customers(engine, path, id_column="col_1")

    assert report.columns == {"customer_id": "text", "col_2": "text", "col_3": "integer"}
    assert report.renamed == {"col_1": "customer_id"}
    assert rows(engine)["18"] == {"customer_id": "18", "col_2": "Ben", "col_3": 45}


def test_header_can_be_forced_off(engine, tmp_path):
    path = write(tmp_path, "names.csv", "anna,lyon\nben,paris\n")
    report = import_customers(engine, path, header=False)

    assert report.rows_read == 2 and report.id_generated
    assert rows(engine)["1"] == {"customer_id": "1", "col_1": "anna", "col_2": "lyon"}


def test_text_only_file_with_header(engine, tmp_path):
    text = "customer_id,name\n" + "".join(f"c{i},Anna\n" for i in range(20))
    report = import_customers(engine, write(tmp_path, "names.csv", text))

    assert report.columns == {"customer_id": "text", "name": "text"} and not report.id_generated


def test_text_only_file_without_header(engine, tmp_path):
    report = import_customers(engine, write(tmp_path, "names.csv", "Anna,yes\nBen,no\nCleo,yes\n"))

    assert report.rows_read == 3 and report.columns == {"customer_id": "text", "col_1": "text", "col_2": "text"}


def test_windows_1252_file_is_refused_then_read_with_its_encoding(engine, tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes(b"customer_id;name\r\nc1;Jos\xe9 \x80\r\n")
    with pytest.raises(ImportFailed, match="line 2: byte 7 .* not valid UTF-8; .* --encoding cp1252"):
        import_customers(engine, path)
    assert customer_columns(engine) is None

    report = import_customers(engine, path, encoding="cp1252")

    assert rows(engine)["c1"]["name"] == "José €"
    assert report.layout["encoding"] == "cp1252 (given)"


def test_non_utf8_bytes_after_the_sniffed_sample_fail_with_their_line(engine, tmp_path):
    path = tmp_path / "late.csv"
    path.write_bytes(b"customer_id,name\n" + b"".join(b"c%d,Anna\n" % i for i in range(10_000)) + b"x,Jos\xe9\n")
    offset = path.read_bytes().index(b"\xe9")
    with pytest.raises(ImportFailed) as caught:
        import_customers(engine, path)

    assert f"line 10002: byte 6 of the line (offset {offset:,} in the file, value 0xe9)" in str(caught.value)
    assert customer_columns(engine) is None


def test_quoted_header_and_crlf(engine, tmp_path):
    text = '"Customer ID";"E-Mail Address";"emp.var.rate"\r\n"c1";"a@example.com";1.1\r\n"c2";"";-1.8\r\n'
    report = import_customers(engine, write(tmp_path, "export.txt", text))

    assert report.renamed == {
        "Customer ID": "customer_id",
        "E-Mail Address": "e_mail_address",
        "emp.var.rate": "emp_var_rate",
    }
    assert rows(engine) == {
        "c1": {"customer_id": "c1", "e_mail_address": "a@example.com", "emp_var_rate": pytest.approx(1.1)},
        "c2": {"customer_id": "c2", "e_mail_address": None, "emp_var_rate": pytest.approx(-1.8)},
    }


def test_given_delimiter_and_gzip(engine, tmp_path):
    path = tmp_path / "people.csv.gz"
    path.write_bytes(gzip.compress(b"id|score\n1|0.5\n2|0.25\n"))
    report = import_customers(engine, path, delimiter="|", id_column="id")

    assert report.columns == {"customer_id": "text", "score": "number"}
    assert {k: v["score"] for k, v in rows(engine).items()} == {"1": 0.5, "2": 0.25}


def test_types_are_inferred(engine, tmp_path):
    text = (
        "customer_id,opted_in,born,last_seen,balance,segment\n"
        "c1,true,1980-02-29,2024-05-01 10:30:00,12.5,unknown\n"
        "c2,false,1991-12-01,2024-05-02T08:00:00,,A\n"
    )
    report = import_customers(engine, write(tmp_path, "types.csv", text))

    assert report.columns == {
        "customer_id": "text",
        "opted_in": "boolean",
        "born": "date",
        "last_seen": "datetime",
        "balance": "number",
        "segment": "text",
    }
    c1, c2 = rows(engine)["c1"], rows(engine)["c2"]
    assert c1["opted_in"] is True and c2["opted_in"] is False
    assert c1["born"] == dt.date(1980, 2, 29)
    assert c1["last_seen"] == dt.datetime(2024, 5, 1, 10, 30)
    assert c2["last_seen"] == dt.datetime(2024, 5, 2, 8, 0)
    assert c2["balance"] is None and c1["segment"] == "unknown"


# --- bad rows ------------------------------------------------------------------------------


BAD_FILE = (
    "customer_id,name,age\n"  # line 1
    "c1,Anna,31\n"  # 2
    "c2,Ben\n"  # 3: too few fields
    "\n"  # 4: blank, ignored
    'c3,"Cleo\nSecond line",52\n'  # 5-6: one record over two lines
    "c4,Dan,40,extra\n"  # 7: too many fields
    ",Eve,29\n"  # 8: no id
    "c5,Finn,33\n"  # 9
)


def test_bad_rows_are_reported_by_physical_line_and_the_rest_imported(engine, tmp_path):
    report = import_customers(engine, write(tmp_path, "bad.csv", BAD_FILE))

    assert report.bad_rows == [
        BadRow(3, "expected 3 fields, found 2"),
        BadRow(7, "expected 3 fields, found 4"),
        BadRow(8, "no customer id (column 'customer_id' is empty)"),
    ]
    assert (report.rows_read, report.rows_imported, report.inserted) == (6, 3, 3)
    imported = rows(engine)
    assert sorted(imported) == ["c1", "c3", "c5"]
    assert imported["c3"]["name"] == "Cleo\nSecond line"


def test_generated_ids_are_data_row_numbers_even_after_bad_rows(engine, tmp_path):
    text = "name,age\nAnna,31\nBen\n\nCleo,52\n"
    report = import_customers(engine, write(tmp_path, "noid.csv", text))

    assert report.id_generated
    assert report.bad_rows == [BadRow(3, "expected 2 fields, found 1")]
    assert {k: v["name"] for k, v in rows(engine).items()} == {"1": "Anna", "3": "Cleo"}


def test_strict_mode_imports_nothing(engine, tmp_path):
    with pytest.raises(ImportFailed) as caught:
        import_customers(engine, write(tmp_path, "bad.csv", BAD_FILE), strict=True)

    assert [row.line for row in caught.value.bad_rows] == [3, 7, 8]
    assert caught.value.report is not None and caught.value.report.rows_imported == 0
    assert "bad.csv:3: expected 3 fields, found 2" in str(caught.value)
    assert [p.line for p in caught.value.problems] == [3, 7, 8]
    assert customer_columns(engine) is None


def test_errors_do_not_quote_cell_values(engine, tmp_path):
    text = "customer_id,email\nsecret-1,anna@example.com\nsecret-1,ben@example.com,x\nsecret-2,c@example.com\n"
    text += "secret-2,d@example.com\n"
    with pytest.raises(ImportFailed) as caught:
        import_customers(engine, write(tmp_path, "private.csv", text))

    message = str(caught.value).replace(str(tmp_path), "")
    assert "example.com" not in message and "secret" not in message
    assert message.splitlines()[1:] == ["/private.csv:5: duplicate customer id (first used on line 4)"]


# --- re-import -----------------------------------------------------------------------------


def test_reimport_upserts_and_adds_new_columns(engine, tmp_path):
    first = write(tmp_path, "first.csv", "customer_id,name,age,city\nc1,Anna,31,Lyon\nc2,Ben,45,Paris\n")
    import_customers(engine, first)
    second = write(tmp_path, "second.csv", "customer_id,age,name,score\nc2,46,Ben,0.7\nc3,22,Cleo,0.1\nc1,31,Anna,\n")
    report = import_customers(engine, second)

    assert (report.rows_read, report.rows_imported, report.inserted, report.updated) == (3, 3, 1, 2)
    assert customer_columns(engine) == {
        "customer_id": "text",
        "name": "text",
        "age": "integer",
        "city": "text",
        "score": "number",
    }
    assert rows(engine) == {
        "c1": {"customer_id": "c1", "name": "Anna", "age": 31, "city": "Lyon", "score": None},
        "c2": {"customer_id": "c2", "name": "Ben", "age": 46, "city": "Paris", "score": 0.7},
        "c3": {"customer_id": "c3", "name": "Cleo", "age": 22, "city": None, "score": 0.1},
    }


def test_reimport_widens_into_number_and_text_columns(engine, tmp_path):
    import_customers(engine, write(tmp_path, "a.csv", "customer_id,score,code\nc1,0.5,AB\n"))
    import_customers(engine, write(tmp_path, "b.csv", "customer_id,score,code\nc1,2,17\n"))

    assert rows(engine)["c1"] == {"customer_id": "c1", "score": 2.0, "code": "17"}


def test_type_clash_fails_and_leaves_the_table_as_it_was(engine, tmp_path):
    import_customers(engine, write(tmp_path, "a.csv", "customer_id,age\nc1,31\n"))
    before = rows(engine)
    clash = "column 'age' holds integer values in table 'customers' but the file has text values"
    with pytest.raises(ImportFailed, match=clash):
        import_customers(engine, write(tmp_path, "b.csv", "customer_id,age,extra\nc1,old,1\nc2,young,2\n"))

    assert rows(engine) == before
    assert customer_columns(engine) == {"customer_id": "text", "age": "integer"}


def test_progress_reports_rows_loaded_so_far(engine, tmp_path, monkeypatch):
    monkeypatch.setattr(customers, "CHUNK_ROWS", 2)
    seen: list[int] = []
    text = "customer_id,n\n" + "".join(f"c{i},{i}\n" for i in range(5))
    import_customers(engine, write(tmp_path, "five.csv", text), progress=seen.append)

    assert seen == [2, 4, 5]
    assert len(rows(engine)) == 5


def test_other_table_name(engine, tmp_path):
    report = import_customers(engine, write(tmp_path, "a.csv", "customer_id,x\nc1,1\n"), table="prospects")

    assert report.inserted == 1
    assert customer_columns(engine, "prospects") == {"customer_id": "text", "x": "integer"}
    assert customer_columns(engine) is None


# --- the id column -------------------------------------------------------------------------


def test_given_id_column_numeric_ids_become_text(engine, tmp_path):
    text = "Kundennr,Customer ID,name\n12,x,Anna\n007,y,Ben\n 13 ,z,Cleo\n"
    report = import_customers(engine, write(tmp_path, "ids.csv", text), id_column="Kundennr")

    assert report.renamed == {"Kundennr": "customer_id", "Customer ID": "customer_id_2"}
    assert sorted(rows(engine)) == ["007", "12", "13"]
    assert rows(engine)["12"]["customer_id_2"] == "x"


def test_id_column_may_be_given_by_its_normalised_name(engine, tmp_path):
    import_customers(engine, write(tmp_path, "ids.csv", "Member No.,name\n5,Anna\n"), id_column="member_no")

    assert list(rows(engine)) == ["5"]


def test_numeric_parquet_ids_become_text(engine, tmp_path):
    path = tmp_path / "ids.parquet"
    pq.write_table(pa.table({"number": pa.array([12, 13], pa.int32()), "score": [1.0, 2.0]}), path)
    import_customers(engine, path, id_column="number")

    assert sorted(rows(engine)) == ["12", "13"]


def test_duplicate_ids_are_reported_with_their_lines(engine, tmp_path):
    text = "customer_id,name\nc1,Anna\nc2,Ben\nc1,Cleo\nc3,Dan\nc2,Eve\n"
    with pytest.raises(ImportFailed, match="2 row\\(s\\) repeat the customer id") as caught:
        import_customers(engine, write(tmp_path, "dups.csv", text))

    assert caught.value.bad_rows == [
        BadRow(4, "duplicate customer id (first used on line 2)"),
        BadRow(6, "duplicate customer id (first used on line 3)"),
    ]
    assert customer_columns(engine) is None


def test_unknown_id_column_gets_did_you_mean(engine, tmp_path):
    path = write(tmp_path, "ids.csv", "Customer Number,name\n1,Anna\n")
    with pytest.raises(ImportFailed, match="no id column 'customer_numbr', did you mean 'customer_number'\\?"):
        import_customers(engine, path, id_column="customer_numbr")
    with pytest.raises(ImportFailed, match="did you mean 'Customer Number'\\?"):
        import_customers(engine, path, id_column="Customer Numbr")


# --- Parquet -------------------------------------------------------------------------------


def test_parquet_import(engine, tmp_path):
    path = tmp_path / "customers.parquet"
    table = pa.table(
        {
            "Customer ID": ["p1", "p2", None],
            "Age": pa.array([30, None, 50], pa.int32()),
            "Score": pa.array([0.5, 1.5, 2.5], pa.float32()),
            "Segment": pa.array(["a", "b", "a"]).dictionary_encode(),
            "Joined": pa.array([dt.date(2020, 1, 1), dt.date(2021, 6, 30), None]),
            "Active": [True, False, None],
        }
    )
    pq.write_table(table, path)
    report = import_customers(engine, path)

    assert report.columns == {
        "customer_id": "text",
        "age": "integer",
        "score": "number",
        "segment": "text",
        "joined": "date",
        "active": "boolean",
    }
    assert report.bad_rows == [BadRow(3, "no customer id (column 'Customer ID' is empty)")]
    p1 = {"customer_id": "p1", "age": 30, "score": 0.5, "segment": "a", "joined": dt.date(2020, 1, 1), "active": True}
    p2 = {"customer_id": "p2", "age": None, "score": 1.5, "segment": "b", "joined": dt.date(2021, 6, 30)}
    p2["active"] = False
    assert rows(engine) == {"p1": p1, "p2": p2}


# --- refused files -------------------------------------------------------------------------


def test_missing_file(engine, tmp_path):
    with pytest.raises(ImportFailed, match="file not found"):
        import_customers(engine, tmp_path / "nope.csv")


def test_empty_file(engine, tmp_path):
    with pytest.raises(ImportFailed, match="the file is empty"):
        import_customers(engine, write(tmp_path, "empty.csv", ""))
    with pytest.raises(ImportFailed, match="the file is empty"):
        import_customers(engine, write(tmp_path, "blank.csv", "\n\n"))


def test_header_only_file(engine, tmp_path):
    with pytest.raises(ImportFailed, match="header but no data rows"):
        import_customers(engine, write(tmp_path, "header.csv", "customer_id,name\n"))


def test_unsupported_extension(engine, tmp_path):
    with pytest.raises(ImportFailed, match="unsupported file type '.xlsx'"):
        import_customers(engine, write(tmp_path, "people.xlsx", "x"))


def test_import_failed_is_a_value_error():
    assert issubclass(ImportFailed, ValueError)
