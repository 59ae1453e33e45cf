"""The hand-written side of ``full_wave_bench.py``: the same wave as the engine's, without the engine.

One plain SQL query for audience, consent and frequency cap, ``predict_proba`` of the same model and
a numpy cut, the control group by the same salted blake2b hash, a greedy allocation by value within
the same capacities (control mirrored), a plain Jinja ``Environment`` rendering the same templates,
``executemany`` (SQLite) or ``COPY`` (PostgreSQL) into a plain table, ``smtplib`` on the same number
of connections and ``httpx`` POSTs of the same task list JSON signed with ``standardwebhooks``.
``run_hand`` is one self-contained function on purpose: it is the baseline the engine is measured against.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from full_wave_world import (
    CAMPAIGN,
    CAP_DAYS,
    CAP_MAX,
    CHANNELS,
    CONTROL_SHARE,
    FEATURES,
    LINK_SECRET,
    MODEL,
    REPO,
    REPS_PER_TERRITORY,
    SALT,
    SECRET,
    SENDER,
    TERRITORIES,
    WAVE_DAY,
    reps,
)
from stages import Stages


def money(value, places: int = 2) -> str:
    return f"{float(value):,.{places}f}"


def hand_plan(selected, scores, args: argparse.Namespace):
    """The hand-written plan stage: control group by the salted hash, greedy allocation by value within the
    capacities (control mirrored), visits round-robin over each territory's reps. ``selected`` holds
    customer_id, territory and the eligibility flags ff, cc, em; ``scores`` the model's scores."""
    import hashlib

    import numpy as np

    names = list(CHANNELS)
    rep_list = reps()
    ids = selected["customer_id"].tolist()
    n = len(ids)
    prefix = SALT.encode() + b"\x00"
    raw = b"".join(hashlib.blake2b(prefix + cid.encode(), digest_size=8).digest() for cid in ids)
    control = np.frombuffer(raw, dtype=">u8").astype(np.float64) / float(2**64) < CONTROL_SHARE
    values = np.full((n, 3), np.nan)
    for j, name in enumerate(names):
        value, cost, _priority, _due = CHANNELS[name]
        ok = selected[{"field_force": "ff", "call_center": "cc", "email": "em"}[name]].to_numpy() > 0
        values[ok, j] = scores[ok] * value - cost
    territory = selected["territory"].to_numpy(dtype=object)
    pool_names = ["call_center", "email", *(f"field_force:{t}" for t in TERRITORIES)]
    pool_index = {p: i for i, p in enumerate(pool_names)}
    ff_pool = np.array([pool_index.get(f"field_force:{t}", -1) for t in territory])
    caps = np.array(
        [args.calls_per_day, args.email_limit if args.email_limit is not None else n]
        + [REPS_PER_TERRITORY * args.visits_per_rep] * len(TERRITORIES)
    )

    def greedy(rows: np.ndarray, capacity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Options (customer, channel) by value, best first; each customer once, each pool within capacity."""
        v = values[rows]
        cust, chan = np.nonzero(~np.isnan(v) & (np.nan_to_num(v, nan=-1) >= 0))
        pool = np.where(chan == 0, ff_pool[rows[cust]], np.where(chan == 1, 0, 1))
        keep = pool >= 0
        cust, chan, pool = cust[keep], chan[keep], pool[keep]
        order = np.argsort(-v[cust, chan], kind="stable")
        left = capacity.copy()
        got = np.full(len(rows), -1)
        got_pool = np.full(len(rows), -1)
        for c, ch, p in zip(cust[order].tolist(), chan[order].tolist(), pool[order].tolist(), strict=True):
            if got[c] < 0 and left[p] > 0:
                got[c], got_pool[c] = ch, p
                left[p] -= 1
        return got, got_pool

    treated = np.flatnonzero(~control)
    t_chan, t_pool = greedy(treated, caps)
    used = np.bincount(t_pool[t_pool >= 0], minlength=len(pool_names))
    ratio = CONTROL_SHARE / (1 - CONTROL_SHARE)
    c_rows = np.flatnonzero(control)
    c_chan, _ = greedy(c_rows, np.round(used * ratio).astype(np.int64))
    channel = np.full(n, -1)
    channel[treated], channel[c_rows] = t_chan, c_chan
    # visits: round-robin over the territory's reps, best value first
    assignee = np.full(n, None, dtype=object)
    for t in TERRITORIES:
        rows = treated[(t_chan == 0) & (territory[treated] == t)]
        rows = rows[np.argsort(-values[rows, 0], kind="stable")]
        mine = [r for r, terr in rep_list if terr == t]
        for k, r in enumerate(rows.tolist()):
            assignee[r] = mine[k % len(mine)]
    return control, channel, assignee, values


def run_hand(work: Path, url: str, args: argparse.Namespace) -> dict:  # noqa: C901 - the hand-written baseline is one self-contained script on purpose
    import hashlib
    import hmac
    import re
    import smtplib
    import threading
    from concurrent.futures import ThreadPoolExecutor
    from datetime import UTC, date, datetime, timedelta
    from email.message import EmailMessage
    from urllib.parse import quote

    import httpx
    import jinja2
    import joblib
    import numpy as np
    import pandas as pd
    import sqlalchemy as sa
    from standardwebhooks import Webhook

    stages = Stages()
    as_of = date.fromisoformat(WAVE_DAY)
    min_score = args.min_score
    wave_key = WAVE_DAY
    names = list(CHANNELS)
    email_re = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

    def prepare():
        engine = sa.create_engine(url)
        model = joblib.load(work / "var" / "models" / MODEL / "v1.joblib")
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(REPO / "templates"), autoescape=jinja2.select_autoescape(["html"])
        )
        env.filters["money"] = money
        templates = {
            "email": [env.get_template(f"email/winback/{p}") for p in ("subject.txt", "body.txt", "body.html")],
            "call_center": [env.get_template(f"call_center/retention/{p}") for p in ("title.txt", "script.txt")],
            "field_force": [env.get_template(f"field_force/retention/{p}") for p in ("title.txt", "brief.txt")],
        }
        return engine, model, templates

    engine, model, templates = stages("prepare", prepare)
    pg = engine.dialect.name == "postgresql"
    since = (as_of - timedelta(days=CAP_DAYS)).isoformat()

    def select():
        query = f"""
            SELECT c.customer_id, c.age, c.segment, c.revenue_12m, c.recency_days, c.territory,
                   CASE WHEN c.segment = 'gold' AND c.consent_phone THEN 1 ELSE 0 END AS ff,
                   CASE WHEN c.phone IS NOT NULL AND c.consent_phone THEN 1 ELSE 0 END AS cc,
                   CASE WHEN c.email IS NOT NULL AND c.consent_email THEN 1 ELSE 0 END AS em
            FROM customers c
            WHERE c.age >= 18 AND c.recency_days BETWEEN 7 AND 730
              AND (c.consent_email OR c.consent_phone)
              AND c.customer_id NOT IN (
                  SELECT customer_id FROM hand_contacts WHERE status = 'sent' AND sent_at >= '{since}'
                  GROUP BY customer_id HAVING count(*) >= {CAP_MAX})
        """
        with engine.connect() as conn:
            frame = pd.DataFrame(
                conn.exec_driver_sql(query).fetchall(),
                columns=["customer_id", *FEATURES, "territory", "ff", "cc", "em"],
            )
        scores = model.predict_proba(frame[FEATURES])[:, 1]
        keep = scores >= min_score
        return frame[keep].reset_index(drop=True), scores[keep]

    selected, scores = stages("select", select)

    control, channel, assignee, values = stages("plan", hand_plan, selected, scores, args)
    if args.until == "plan":
        return {"selected": len(selected), **vars(stages)}
    ids = selected["customer_id"].to_numpy(dtype=object)
    treated_counts = {name: int(np.count_nonzero(~control & (channel == j))) for j, name in enumerate(names)}

    base = "http://127.0.0.1:8000"
    link_key = LINK_SECRET.encode()

    def sign(text: str) -> str:
        return hmac.new(link_key, text.encode(), hashlib.sha256).hexdigest()[:32]

    def email_context(row: dict) -> dict:
        token = f"{row['_id']}.{sign(str(row['_id']))}"
        return {
            **row,
            "campaign": CAMPAIGN,
            "wave": wave_key,
            "unsubscribe_url": f"{base}/unsubscribe/{token}",
            "click": lambda target: f"{base}/c/{token}?u={quote(target, safe='')}",
        }

    def render_email(row: dict) -> tuple[str, str, str]:
        context = email_context(row)
        subject, text, html = (t.render(context) for t in templates["email"])
        return " ".join(subject.split()), text, html

    def render_task(channel_name: str, row: dict) -> tuple[str, str]:
        context = {**row, "campaign": CAMPAIGN, "wave": wave_key}
        title, body = (t.render(context) for t in templates[channel_name])
        return " ".join(title.split()), body

    columns = (
        "c.customer_id, c.first_name, c.last_name, c.email, c.phone, c.age, c.region, c.segment, "
        "c.revenue_12m, c.recency_days, c.territory"
    )
    keys = [
        "customer_id",
        "first_name",
        "last_name",
        "email",
        "phone",
        "age",
        "region",
        "segment",
        "revenue_12m",
        "recency_days",
        "territory",
    ]

    def rows_of(conn, where_ids: list[str]) -> list[dict]:
        out = []
        for start in range(0, len(where_ids), 900):
            chunk = where_ids[start : start + 900]
            marks = ",".join(["%s" if pg else "?"] * len(chunk))
            out += [
                dict(zip(keys, r, strict=True))
                for r in conn.exec_driver_sql(
                    f"SELECT {columns} FROM customers c WHERE c.customer_id IN ({marks})", tuple(chunk)
                )
            ]
        return out

    def render_sample() -> int:
        rendered = 0
        with engine.connect() as conn:
            for j, name in enumerate(names):
                sample = ids[np.flatnonzero(~control & (channel == j))[:200]].tolist()
                for row in rows_of(conn, sample):
                    row["_id"] = 0
                    render_email(row) if name == "email" else render_task(name, row)
                    rendered += 1
        return rendered

    rendered = stages("render sample", render_sample)

    def record() -> int:
        now = datetime.now(UTC)
        keep = np.flatnonzero(channel >= 0)
        arm = np.where(control, "control", "treatment").tolist()
        status = np.where(control, "control", "pending").tolist()
        rows = [
            (
                k + 1,
                wave_key,
                ids[i],
                arm[i],
                names[channel[i]],
                assignee[i],
                float(scores[i]),
                float(values[i, channel[i]]),
                status[i],
                now,
                None,
            )
            for k, i in enumerate(keep.tolist())
        ]
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            if pg:
                with cur.copy(
                    "COPY hand_contacts (id, wave, customer_id, arm, channel, assignee, score, value, status, "
                    "created_at, sent_at) FROM STDIN"
                ) as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                as_text = [(*r[:9], r[9].isoformat(), None) for r in rows]
                cur.executemany("INSERT INTO hand_contacts VALUES (?,?,?,?,?,?,?,?,?,?,?)", as_text)
            raw.commit()
        finally:
            raw.close()
        return len(rows)

    recorded = stages("record", record)

    def pending(conn, name: str) -> list[dict]:
        mark = "%s" if pg else "?"
        result = conn.exec_driver_sql(
            f"SELECT h.id, h.assignee, {columns} FROM hand_contacts h "
            "JOIN customers c ON c.customer_id = h.customer_id "
            f"WHERE h.channel = {mark} AND h.status = 'pending' ORDER BY h.id",
            (name,),
        )
        return [{"_id": r[0], "_assignee": r[1], **dict(zip(keys, r[2:], strict=True))} for r in result]

    def mark_sent(conn, done: list[int]) -> None:
        now = datetime.now(UTC)
        stamp: datetime | str = now if pg else now.isoformat()
        mark = "%s" if pg else "?"
        raw = conn.connection.driver_connection
        cur = raw.cursor()
        cur.executemany(
            f"UPDATE hand_contacts SET status = 'sent', sent_at = {mark} WHERE id = {mark}", [(stamp, i) for i in done]
        )
        raw.commit()

    def send_email(rows: list[dict]) -> tuple[list[int], int]:
        slices = [rows[k :: args.connections] for k in range(args.connections)]
        sent: list[list[int]] = [[] for _ in slices]
        skipped = [0] * len(slices)

        def worker(k: int) -> None:
            with smtplib.SMTP("127.0.0.1", args.smtp_port, timeout=120) as smtp:
                for row in slices[k]:
                    address = row["email"]
                    if not address or not email_re.match(address):
                        skipped[k] += 1
                        continue
                    subject, text, html = render_email(row)
                    message = EmailMessage()
                    message["From"] = SENDER
                    message["To"] = address
                    message["Subject"] = subject
                    message["Message-ID"] = f"<hand.{row['_id']}@acme.example>"
                    message["List-Unsubscribe"] = f"<{base}/unsubscribe/{row['_id']}>"
                    message.set_content(text)
                    message.add_alternative(html, subtype="html")
                    smtp.send_message(message)
                    sent[k].append(row["_id"])

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(len(slices))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return [i for part in sent for i in part], sum(skipped)

    def task_lists(name: str, rows: list[dict]) -> list[tuple[str, bytes, list[int]]]:
        value, cost, priority, due_days = CHANNELS[name]
        due = (as_of + timedelta(days=due_days)).isoformat()
        created = datetime.now(UTC).isoformat()
        lists: list[tuple[str, bytes, list[int]]] = []
        groups: dict[str | None, list[dict]] = {}
        for row in rows:
            if name == "call_center" and not row["phone"]:
                continue
            groups.setdefault(row["_assignee"] if name == "field_force" else None, []).append(row)
        for rep, members in groups.items():
            for start in range(0, len(members), args.batch_size):
                chunk = members[start : start + args.batch_size]
                batch_id = f"hand-{name}-{chunk[0]['_id']}"
                tasks = []
                for row in chunk:
                    title, body = render_task(name, row)
                    common = {
                        "task_id": f"hand-{row['_id']}",
                        "customer_id": row["customer_id"],
                        "customer_name": f"{row['first_name']} {row['last_name']}",
                        "priority": priority,
                        "title": title,
                        "campaign": CAMPAIGN,
                        "wave": wave_key,
                        "outcome_ref": sign(f"hand-{row['_id']}"),
                        "outcome_url": f"{base}/v1/outcomes",
                    }
                    if name == "call_center":
                        tasks.append(
                            {
                                **common,
                                "phone": row["phone"],
                                "due_from": as_of.isoformat(),
                                "due_to": due,
                                "script": body,
                            }
                        )
                    else:
                        tasks.append(
                            {
                                **common,
                                "address": f"{row['region']}, {row['territory']}",
                                "territory": row["territory"],
                                "due_date": due,
                                "brief": body,
                            }
                        )
                if name == "call_center":
                    doc = {
                        "type": "call_center.task_list",
                        "version": 1,
                        "batch_id": batch_id,
                        "campaign": CAMPAIGN,
                        "wave": wave_key,
                        "created_at": created,
                        "tasks": tasks,
                    }
                else:
                    doc = {
                        "type": "field_force.visit_list",
                        "version": 1,
                        "batch_id": batch_id,
                        "rep_id": rep,
                        "territory": chunk[0]["territory"],
                        "created_at": created,
                        "visits": tasks,
                    }
                lists.append((batch_id, json.dumps(doc).encode(), [r["_id"] for r in chunk]))
        return lists

    def post_lists(client: httpx.Client, name: str, lists) -> list[int]:
        signer = Webhook(SECRET)

        def post(item) -> list[int]:
            batch_id, body, members = item
            now = datetime.now(UTC)
            headers = {
                "content-type": "application/json",
                "webhook-id": batch_id,
                "webhook-timestamp": str(int(now.timestamp())),
                "webhook-signature": signer.sign(batch_id, now, body.decode()),
            }
            client.post(f"{args.hook_url}/bare/{name}", content=body, headers=headers).raise_for_status()
            return members

        with ThreadPoolExecutor(args.concurrency) as pool:
            return [i for members in pool.map(post, lists) for i in members]

    def send() -> dict:
        out = {}
        with engine.connect() as conn:
            rows = pending(conn, "email")
            done, skipped = send_email(rows)
            mark_sent(conn, done)
            out["email"] = len(done)
            out["email_skipped"] = skipped
            limits = httpx.Limits(max_keepalive_connections=args.concurrency)
            with httpx.Client(timeout=120, limits=limits) as client:
                for name in ("call_center", "field_force"):
                    done = post_lists(client, name, task_lists(name, pending(conn, name)))
                    mark_sent(conn, done)
                    out[name] = len(done)
        return out

    sent = stages("send", send)
    return {
        "selected": len(ids),
        "treated_allocated": treated_counts,
        "control": int(control.sum()),
        "recorded": recorded,
        "rendered_sample": rendered,
        "sent": sent,
        **vars(stages),
    }
