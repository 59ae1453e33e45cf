"""Historical results: a campaign run elsewhere, imported so it can be analysed and trained on like our own.

The file (CSV, header row) has one row per customer: the customer id, the arm (a column
whose value names the treatment arm, or the control label) and one or more outcome columns:

* binary outcomes (``visited``, ``converted``: 0/1, true/false, yes/no) become an outcome
  event of that name for each customer where it is true;
* monetary outcomes (``revenue``, ``spend``: numbers) become an event with the value, for each
  customer where it is not zero.

Covariates (``--covariate``, repeatable): numeric columns known before the campaign ran (a
pre-period value of the outcome, e.g. last year's spend); they stay in the wave's snapshot
like the other columns and are named in its metadata, so ``campaign report`` adjusts the lift
for them (CUPED, ``orchestrator.success.adjustment``).

The campaign and one wave (``--wave``, default the file's name; dated ``--date``) are written
to the ledger like a wave of ours: treatment arms as ``treatment`` with the arm's name as the
variant, the control label as ``control``; treated contacts are ``sent`` (they were contacted
elsewhere). Importing the same file again changes nothing (the wave exists). Every bad row is
reported with its line number and nothing is imported while any is bad; a byte that is not
UTF-8 is reported with its line and offset.

A file without a customer id column needs ``generate_ids``: each row then gets the id
``<campaign>/<wave>/<data row number>``, which names no customer of the customer table, so the
imported results never touch (or are never joined to) a real customer.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from orchestrator.db.bulk import bulk_insert, raw_timestamp
from orchestrator.db.tables import Arm, ContactStatus, ResponseEvent, WaveStatus, table_of, utcnow
from orchestrator.errors import Problem, ValidationFailed, did_you_mean
from orchestrator.ledger import contacts as ledger
from orchestrator.targeting.frame import ContactFrame

events = table_of(ResponseEvent)
CHANNEL = "import"
SOURCE = "import"
TRUE = {"1", "true", "yes", "y", "t"}
GENERATED_ID = "customer_id"  # the column generated ids are kept in
FALSE = {"0", "false", "no", "n", "f", ""}


@dataclass
class ResultsImport:
    campaign: str
    wave: str
    customers: int = 0
    arms: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, str] = field(default_factory=dict)  # column -> "binary" | "monetary"
    events: int = 0
    already_imported: bool = False
    covariates: list[str] = field(default_factory=list)


def _kind(values: list[str]) -> str | None:
    lowered = {v.strip().lower() for v in values}
    if lowered <= TRUE | FALSE:
        return "binary"
    try:
        [float(v) for v in values if v.strip()]
    except ValueError:
        return None
    return "monetary"


def import_results(
    engine: sa.Engine,
    path: Path,
    *,
    campaign: str,
    arm_column: str,
    control_label: str,
    outcome_columns: list[str],
    id_column: str = "customer_id",
    wave_key: str | None = None,
    wave_date: date | None = None,
    settings=None,
    covariates: list[str] | None = None,
    generate_ids: bool = False,
) -> ResultsImport:
    """Import ``path``; see the module docstring. Raises ``ValidationFailed`` naming file, line and column."""
    file = str(path)
    text = Path(path).read_bytes()
    reader = csv.reader(_decoded(Path(path), text).splitlines())
    header = [h.strip() for h in next(reader, [])]
    covariates = list(dict.fromkeys(covariates or []))
    key = wave_key or Path(path).stem
    if generate_ids:
        _check_no_id_column(file, header, id_column)
        id_column = GENERATED_ID
        header = [*header, GENERATED_ID]
    _check_header(file, header, id_column, arm_column, outcome_columns)
    rows: list[tuple[int, list[str]]] = [(i + 2, r) for i, r in enumerate(reader) if any(v.strip() for v in r)]
    if generate_ids:
        rows = [(line, [*row, f"{campaign}/{key}/{n}"]) for n, (line, row) in enumerate(rows, start=1)]
    _check_covariates(file, header, rows, covariates, {id_column, arm_column, *outcome_columns})
    at = {name: header.index(name) for name in [id_column, arm_column, *outcome_columns]}
    kinds = _check_rows(file, header, rows, at, id_column, arm_column, control_label, outcome_columns)

    day = wave_date or date.today()
    report = ResultsImport(campaign, key, outcomes=kinds)
    campaign_id = ledger.ensure_campaign(engine, campaign, f"imported from {Path(path).name}")
    wave = ledger.open_wave(engine, campaign_id, key, hashlib.sha256(text).hexdigest())
    if wave.status != WaveStatus.SELECTING:
        report.already_imported = True
        return report
    ids = [r[at[id_column]].strip() for _l, r in rows]
    labels = [r[at[arm_column]].strip() for _l, r in rows]
    arm_of = np.array([Arm.CONTROL.value if a == control_label else Arm.TREATMENT.value for a in labels], dtype=object)
    variants = np.array([None if a == control_label else a for a in labels], dtype=object)
    ledger.record_contacts(
        engine, wave.id, ContactFrame.of(ids, arm_of, variant=variants, channel=CHANNEL), planned_for=day
    )
    occurred = datetime.combine(day, time(), tzinfo=UTC)
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(
            ledger.contacts.update()
            .where(ledger.contacts.c.wave_id == wave.id, ledger.contacts.c.arm == Arm.TREATMENT.value)
            .values(status=ContactStatus.SENT, sent_at=occurred, detail="imported result")
        )
        contact_of: dict[str, int] = {
            cid: contact_id
            for cid, contact_id in conn.execute(
                sa.select(ledger.contacts.c.customer_id, ledger.contacts.c.id).where(
                    ledger.contacts.c.wave_id == wave.id
                )
            )
        }

        report.events = bulk_insert(
            conn,
            events.name,
            [
                "source",
                "event_id",
                "contact_id",
                "wave_id",
                "customer_id",
                "channel",
                "type",
                "value",
                "occurred_at",
                "received_at",
            ],
            _event_rows(conn, rows, ids, kinds, at, wave.id, contact_of, occurred, now),
        )
        conn.execute(
            ledger.waves.update()
            .where(ledger.waves.c.id == wave.id)
            .values(status=WaveStatus.COMPLETED, finished_at=now)
        )
    report.customers = len(ids)
    report.arms = {label: labels.count(label) for label in sorted(set(labels))}
    if settings is not None:  # the file's other columns are what was known about each customer then
        generated = ids if generate_ids else None
        _write_snapshot(settings, wave.id, path, id_column, {arm_column, *outcome_columns}, covariates, generated)
    report.covariates = covariates
    return report


def _decoded(path: Path, data: bytes) -> str:
    """``data`` as text (UTF-8, BOM dropped); a byte that is not UTF-8 fails with its line and offset."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        from orchestrator.customers.files import decode_failure

        raise ValidationFailed([Problem(str(path), None, None, decode_failure(path, "utf-8") or str(error))]) from error


def _check_no_id_column(file: str, header: list[str], id_column: str) -> None:
    """With generated ids, the file must not have an id column (its ids would be thrown away)."""
    if id_column in header:
        raise ValidationFailed(
            [
                Problem(
                    file,
                    1,
                    None,
                    f"column '{id_column}' holds customer ids: leave out --generate-ids to use them",
                )
            ]
        )


def _check_covariates(
    file: str, header: list[str], rows: list[tuple[int, list[str]]], covariates: list[str], taken: set[str]
) -> None:
    """Every covariate is a column of the header, not the id, arm or an outcome, and holds numbers (or blanks)."""
    problems: list[Problem] = []
    for column in covariates:
        if column not in header:
            hint = did_you_mean(column, header) or "; columns: " + ", ".join(header)
            problems.append(Problem(file, 1, None, f"covariate '{column}' is not in the header{hint}"))
            continue
        if column in taken:
            problems.append(
                Problem(
                    file,
                    1,
                    None,
                    f"covariate '{column}' is the id, arm or an outcome column; name a column "
                    "known before the campaign ran (e.g. last year's spend)",
                )
            )
            continue
        at = header.index(column)
        for line, row in rows:
            if len(row) != len(header):
                continue  # reported with the rows
            value = row[at].strip()
            if not value:
                continue
            try:
                float(value)
            except ValueError:
                problems.append(Problem(file, line, None, f"covariate '{column}' must be a number; got '{value[:40]}'"))
                break
    if problems:
        raise ValidationFailed(problems)


def _check_header(file: str, header: list[str], id_column: str, arm_column: str, outcome_columns: list[str]) -> None:
    """The named columns are in the header and there is at least one outcome column; else ``ValidationFailed``."""
    problems: list[Problem] = []
    for what, column in [
        ("id column", id_column),
        ("arm column", arm_column),
        *(("outcome column", c) for c in outcome_columns),
    ]:
        if column not in header:
            hint = did_you_mean(column, header) or "; columns: " + ", ".join(header)
            if what == "id column" and not did_you_mean(column, header):
                hint += "; name the id column with --id-column, or give --generate-ids if the file has no ids"
            problems.append(Problem(file, 1, None, f"{what} '{column}' is not in the header{hint}"))
    if not outcome_columns:
        problems.append(Problem(file, None, None, "name at least one outcome column (--outcome visited)"))
    if problems:
        raise ValidationFailed(problems)


def _check_rows(
    file: str,
    header: list[str],
    rows: list[tuple[int, list[str]]],
    at: dict[str, int],
    id_column: str,
    arm_column: str,
    control_label: str,
    outcome_columns: list[str],
) -> dict[str, str]:
    """The kind of each outcome column; ``ValidationFailed`` naming every bad row, outcome or a missing control arm."""
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for line, row in rows:
        if len(row) != len(header):
            problems.append(Problem(file, line, None, f"{len(row)} fields where the header has {len(header)}"))
            continue
        cid = row[at[id_column]].strip()
        if not cid:
            problems.append(Problem(file, line, None, f"no {id_column}"))
        elif cid in seen:
            problems.append(Problem(file, line, None, f"customer '{cid}' is listed twice (first on line {seen[cid]})"))
        else:
            seen[cid] = line
        if not row[at[arm_column]].strip():
            problems.append(Problem(file, line, None, f"no {arm_column}"))
    kinds: dict[str, str] = {}
    for column in outcome_columns:
        values = [r[at[column]] for _l, r in rows if len(r) == len(header)]
        kind = _kind(values)
        if kind is None:
            bad = next(line for line, r in rows if len(r) == len(header) and _kind([r[at[column]]]) is None)
            problems.append(Problem(file, bad, None, f"outcome '{column}' must be 0/1, true/false, yes/no or a number"))
        else:
            kinds[column] = kind
    arms = {r[at[arm_column]].strip() for _l, r in rows if len(r) == len(header)}
    if control_label not in arms:
        problems.append(
            Problem(
                file,
                None,
                None,
                f"no row has the control label '{control_label}' in '{arm_column}'"
                f"{did_you_mean(control_label, arms) or '; arms: ' + ', '.join(sorted(arms))}",
            )
        )
    if problems:
        raise ValidationFailed(problems)
    return kinds


def _outcome_value(kind: str, raw: str) -> tuple[bool, float | None]:
    """Whether the cell of an outcome column is an event, and its value: a true binary outcome
    (no value) or a non-zero amount."""
    if kind == "binary":
        return raw.lower() in TRUE, None
    return bool(raw) and float(raw) != 0, float(raw) if raw else None


def _event_rows(conn, rows, ids, kinds, at, wave_id: int, contact_of, occurred, now):
    """An event row per true binary outcome and per non-zero money outcome of each customer."""
    occurred_at, received_at = raw_timestamp(conn, occurred), raw_timestamp(conn, now)
    for (_line, row), cid in zip(rows, ids, strict=True):
        contact = contact_of[cid]
        for column, kind in kinds.items():
            happened, value = _outcome_value(kind, row[at[column]].strip())
            if happened:
                event_id = f"{wave_id}:{contact}:{column}"
                yield (SOURCE, event_id, contact, wave_id, cid, CHANNEL, column, value, occurred_at, received_at)


def _write_snapshot(
    settings,
    wave_id: int,
    path: Path,
    id_column: str,
    drop: set[str],
    covariates: list[str] | None = None,
    generated: list[str] | None = None,
) -> None:
    import json

    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from orchestrator.customers.identifiers import normalise_names
    from orchestrator.ledger.snapshots import COVARIATES_KEY, contact_columns, snapshot_path
    from orchestrator.settings import private_dir, private_file

    if generated is not None:
        frame = pd.read_csv(path, skip_blank_lines=True).drop(columns=sorted(drop - {id_column}))
        frame.insert(0, id_column, generated)
    else:
        frame = pd.read_csv(path, dtype={id_column: str}).drop(columns=sorted(drop))
    features = [c for c in frame.columns if c != id_column]
    frame = frame[[id_column, *features]]
    names = normalise_names(features, reserved=["customer_id"])
    frame.columns = ["customer_id", *names]
    renamed = dict(zip(features, names, strict=True))
    contact = contact_columns()
    frame = frame[[c for c in frame.columns if c == "customer_id" or c.lower() not in contact]]  # features only
    table = pa.Table.from_pandas(frame, preserve_index=False)
    kept = [renamed[c] for c in covariates or [] if renamed[c] in frame.columns]
    if kept:
        metadata = dict(table.schema.metadata or {})
        metadata[COVARIATES_KEY] = json.dumps(kept).encode()
        table = table.replace_schema_metadata(metadata)
    target = snapshot_path(settings, wave_id)
    private_dir(target.parent)
    private_file(target).close()
    pq.write_table(table, target)
