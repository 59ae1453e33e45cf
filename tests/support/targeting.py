"""Helpers of the target-group selection tests (``tests/targeting/test_targeting*.py``; their
fixtures are in ``tests/targeting/conftest.py``).

Each test gets a synthetic customer base, its own rules folder with a contact policy written
for the tests (Sundays and 2026-12-24 blocked, 5% global control, at most 2 contacts in 30
days), a copy of the repository's templates, and runs the wave stages of
``orchestrator.wave.stages`` directly (no Prefect). Expected counts are computed independently:
plain SQL over the customer table and the salted blake2b hash written out here.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import sqlalchemy as sa
import yaml

from orchestrator.ledger import contacts as ledger
from orchestrator.settings import Settings
from orchestrator.wave import stages

N_CUSTOMERS = 3000
WAVE = "2026-11-24"  # a Tuesday: the wave key is the date rules and policy are evaluated at
SENDER = "Acme Bank <offers@acme.example>"
GLOBAL_SHARE, GLOBAL_SALT = 0.05, "global-test"
POLICY = {
    "consent": {"email": "consent_email"},
    "frequency_caps": [{"max": 2, "days": 30}],
    "blocked_days": {"weekdays": ["sun"], "dates": ["2026-12-24"]},
    "global_control": {"share": GLOBAL_SHARE, "salt": GLOBAL_SALT},
}
AUDIENCE = [
    {"email": {"is_null": False}},
    {"recency_days": {"between": [60, 365]}},
    {"segment": {"in": ["gold", "silver"]}},
]
# The same audience in plain SQL, one part per audience condition.
AUDIENCE_SQL = ["email is not null", "recency_days between 60 and 365", "segment in ('gold', 'silver')"]
POLICY_SQL = [
    "consent_email = :yes",
    "customer_id not in (select customer_id from suppressions where channel in ('email', '*'))",
    "customer_id not in "
    "(select customer_id from contacts where status = 'sent' group by customer_id having count(*) >= 2)",
]


def write_rules(settings: Settings, name: str, *, audience=AUDIENCE, control=None, template="winback", **extra) -> Path:
    data = {
        "name": name,
        "audience": audience,
        "control": control or {"share": 0.1},
        "channels": {"email": {"template": template, "sender": SENDER}},
        **extra,
    }
    path = settings.paths.rules_dir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def copy_template(settings: Settings, name: str, subject: str, source: str = "winback") -> Path:
    folder = settings.paths.templates_dir / "email" / name
    shutil.copytree(settings.paths.templates_dir / "email" / source, folder)
    (folder / "subject.txt").write_text(subject)
    return folder


def select_wave(settings: Settings, rules: Path, wave: str = WAVE, *, funnel: bool = False):
    """``(prepared, candidates, selection)`` as a wave computes them."""
    prepared = stages.prepare(settings, rules, wave)
    candidates = stages.select_candidates(settings, prepared, with_funnel=funnel)
    return prepared, candidates, stages.split_wave(prepared, candidates, with_funnel=funnel)


def run_wave(settings: Settings, rules: Path, wave: str = WAVE, *, smtp=None):
    """Select, record and (given an SMTP server) send one wave; ``(prepared, selection, wave ref)``."""
    prepared, _candidates, selection = select_wave(settings, rules, wave)
    ref = stages.open_wave(settings, prepared)
    stages.record(settings, ref, selection, prepared.as_of)
    if smtp is not None:
        stages.send_pending(settings.model_copy(update={"smtp": smtp.settings()}), prepared, ref)
    return prepared, selection, ref


def ledger_rows(engine: sa.Engine, wave_id: int | None = None) -> list:
    c = ledger.contacts.c
    query = sa.select(c.id, c.wave_id, c.customer_id, c.arm, c.variant, c.score, c.status).order_by(c.id)
    if wave_id is not None:
        query = query.where(c.wave_id == wave_id)
    with engine.connect() as conn:
        return list(conn.execute(query).all())


def sql_ids(engine: sa.Engine, conditions: list[str]) -> list[str]:
    """Customer ids matching every condition, in plain SQL."""
    where = " and ".join(f"({c})" for c in conditions) or "1 = 1"
    with engine.connect() as conn:
        return list(conn.execute(sa.text(f"select customer_id from customers where {where}"), {"yes": True}).scalars())


def position(salt: str, customer_id: str) -> float:
    """A customer's position in [0, 1) for ``salt``, as documented in ``orchestrator.targeting.control``."""
    digest = hashlib.blake2b(salt.encode() + b"\x00" + customer_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def in_global_control(customer_id: str) -> bool:
    return position(GLOBAL_SALT, customer_id) < GLOBAL_SHARE


def flat(text: str) -> str:
    """``text`` with runs of white space (also line breaks) as single spaces."""
    return " ".join(text.split())
