"""Send windows in the policy file: validation with file:line, and when a window opens in a customer's zone."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from orchestrator.rules.policy_spec import PolicySpec, SendWindowSpec, load_policy, merge_policy
from orchestrator.rules.windows import SendWindow, country_zones, customer_zones, waiting_until

BERLIN = ZoneInfo("Europe/Berlin")


def _window(**spec) -> SendWindow:
    return SendWindow.from_spec(SendWindowSpec.model_validate(spec))


def test_policy_file_with_windows_loads(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(
        "timezone: Europe/Berlin\n"
        "send_windows:\n"
        '  email: {window: "8:00-20:00"}\n'
        '  call_center: {window: "09:00-18:00", days: mon-fri}\n'
        "  field_force: {days: [mon, tue, wed, thu, fri]}\n"
    )
    policy, problems = load_policy(path)
    assert problems == [] and policy is not None
    assert policy.timezone == "Europe/Berlin"
    assert policy.send_windows["email"].window == "08:00-20:00"
    assert policy.send_windows["call_center"].days == ("mon", "tue", "wed", "thu", "fri")
    assert policy.send_windows["field_force"].days == policy.send_windows["call_center"].days
    merged = merge_policy(policy, PolicySpec.model_validate({"send_windows": {"email": {"days": "sat,sun"}}}))
    assert merged.send_windows["email"].days == ("sat", "sun") and merged.send_windows["email"].window == "08:00-20:00"


def test_bad_windows_and_zones_are_reported_at_their_line(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(
        "timezone: Europe/Berln\n"
        "send_windows:\n"
        '  email: {window: "20:00-08:00"}\n'
        '  call_center: {window: "9-18", days: mon-fir}\n'
        "  field_force: {days: fri-mon, hours: 3}\n"
    )
    policy, problems = load_policy(path)
    assert policy is None
    found = {(p.line, p.message) for p in problems}
    text = "\n".join(f"{p.file}:{p.line}: {p.message}" for p in problems)
    assert (1, "unknown time zone 'Europe/Berln', did you mean 'Europe/Berlin'?") in found, text
    assert any(line == 3 and "ends before it starts" in m and "00:00-24:00" in m for line, m in found), text
    assert any(line == 4 and "'9-18' is not a time window" in m and "08:00-20:00" in m for line, m in found), text
    assert any(line == 4 and "unknown weekday 'fir', did you mean 'fri'?" in m for line, m in found), text
    assert any(line == 5 and "runs backwards" in m for line, m in found), text
    assert any(line == 5 and "hours" in m for line, m in found), text
    assert all(p.file == str(path) for p in problems)


def test_next_open_in_the_customers_zone():
    window = _window(window="08:00-20:00", days="mon-fri")
    tuesday_6_utc = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)  # 07:00 in Berlin, 15:00 in Tokyo
    assert window.next_open(tuesday_6_utc, ZoneInfo("Asia/Tokyo")) is None
    assert window.next_open(tuesday_6_utc, BERLIN) == datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
    friday_evening = datetime(2026, 11, 27, 19, 30, tzinfo=UTC)  # 20:30 Friday in Berlin: next is Monday 08:00
    assert window.next_open(friday_evening, BERLIN) == datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
    saturday = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    assert window.next_open(saturday, BERLIN) == datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
    # summer time: 08:00 in Berlin is 06:00 UTC on the Monday after the switch
    assert window.next_open(datetime(2026, 3, 29, 5, 0, tzinfo=UTC), BERLIN) == datetime(2026, 3, 30, 6, 0, tzinfo=UTC)
    weekdays_only = _window(days="mon-fri")
    assert weekdays_only.next_open(saturday, BERLIN) == datetime(2026, 11, 29, 23, 0, tzinfo=UTC)  # Monday 00:00
    assert _window(window="00:00-24:00").next_open(saturday, BERLIN) is None


def test_customer_zones_from_timezone_then_country_then_campaign():
    countries = country_zones()
    assert countries["DE"] == "Europe/Berlin" and "US" not in countries  # several zones: no guess
    rows = [
        {"timezone": "America/New_York", "country": "DE"},
        {"timezone": None, "country": "jp"},
        {"timezone": "Not/AZone", "country": "US"},
        {"id": "x"},
    ]
    zones = customer_zones(rows, BERLIN)
    assert [z.key for z in zones] == ["America/New_York", "Asia/Tokyo", "Europe/Berlin", "Europe/Berlin"]
    now = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
    waits = waiting_until(_window(window="08:00-20:00"), zones, now)
    assert waits == [
        datetime(2026, 11, 24, 13, 0, tzinfo=UTC),  # 01:00 in New York: opens 08:00 EST
        None,  # 15:00 in Tokyo
        datetime(2026, 11, 24, 7, 0, tzinfo=UTC),
        datetime(2026, 11, 24, 7, 0, tzinfo=UTC),
    ]


def test_a_window_for_an_unknown_channel_is_an_error_at_its_line(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text('send_windows:\n  email: {window: "08:00-20:00"}\n  emial: {days: mon-fri}\n')
    policy, problems = load_policy(path)
    assert policy is None
    [problem] = problems
    assert (problem.line, problem.message) == (3, "unknown channel 'emial', did you mean 'email'?")
