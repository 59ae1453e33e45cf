"""The world both sides of ``full_wave_bench.py`` work in: the campaign, its policy and capacity, the reps.

The rules file (three channels, a broad audience, a score cut), the policy (consent per channel, a
frequency cap), the capacity file and the reps per territory, with the constants both the engine's
run and the hand-written one (``full_wave_hand.py``) read, so the two do the same work.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
LINK_SECRET = "full-wave-bench-link-secret-0123456789"
WAVE_DAY = "2026-11-24"  # a Tuesday
MODEL = "full-wave-response"
FEATURES = ["age", "segment", "revenue_12m", "recency_days"]
TRAINING_ROWS = 50_000
CAMPAIGN = "full-wave-bench"
SALT = "full-wave-bench"
CONTROL_SHARE = 0.1
CAP_MAX, CAP_DAYS = 4, 30
REPS_PER_TERRITORY = 20
TERRITORIES = [f"T{r}{k}" for r in range(5) for k in range(1, 4)]  # as orchestrator.demo.synthetic draws them
# channel -> (value, cost, priority, due_days), as in the rules file below
CHANNELS = {"field_force": (160, 40, 2, 5), "call_center": (60, 6, 3, 3), "email": (8, 0.05, 0, 0)}
SENDER = "Acme Bank <offers@acme.example>"

RULES = """\
name: {campaign}
description: A broad retention wave by visit, call or e-mail, cut by a response model's score.
audience:
  all:
    - age: {{gte: 18}}
    - recency_days: {{between: [7, 730]}}
control:
  share: {share}
  salt: {salt}
channels:
  field_force:
    template: retention
    eligible: {{segment: gold}}
    name_columns: [first_name, last_name]
    address_columns: [region, territory]
    territory_column: territory
    cost: 40
    value: 160
    priority: 2
    due_days: 5
  call_center:
    template: retention
    eligible: {{phone: {{is_null: false}}}}
    phone_column: phone
    name_columns: [first_name, last_name]
    cost: 6
    value: 60
    priority: 3
    due_days: 3
  email:
    template: winback
    sender: "{sender}"
    eligible: {{email: {{is_null: false}}}}
    cost: 0.05
    value: 8
allocation:
  overflow: fallback
scores:
  model: {model}
  min_score: {min_score}
"""

POLICY = f"""\
consent:
  email: consent_email
  call_center: consent_phone
  field_force: consent_phone
suppression:
  reasons: [unsubscribed, hard_bounce]
frequency_caps:
  - {{max: {CAP_MAX}, days: {CAP_DAYS}}}
"""


def capacity_yaml(calls: int, visits_per_rep: int, email_limit: int | None) -> str:
    text = (
        f"call_center:\n  tasks_per_day: {calls}\n"
        f"field_force:\n  visits_per_rep_per_day: {visits_per_rep}\n  reps: reps.csv\n"
    )
    if email_limit is not None:
        text += f"email:\n  per_day: {email_limit}\n"
    return text


def reps() -> list[tuple[str, str]]:
    return [(f"R{t}{i:02d}", t) for t in TERRITORIES for i in range(1, REPS_PER_TERRITORY + 1)]
