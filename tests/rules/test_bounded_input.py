"""Problem 3 of issue 15, rules files: hostile or careless YAML costs bounded time and memory.

A 642-byte file of 9 levels of aliases ("billion laughs") ran past 60 s and 1 GB; deep nesting,
huge lists and huge files were read whole; ``matches: "^(.+)+@x$"`` backtracked for minutes on
SQLite. Each is now a problem at its file:line (or, for ``matches``, runs in linear time on RE2).
"""

from __future__ import annotations

import resource

import pytest
import sqlalchemy as sa

from orchestrator.rules import yaml_source
from orchestrator.rules.condition_parser import portable_regex_problem
from tests.rules.test_conditions import selected
from tests.rules.test_rules import VALID, problems_of

LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{chr(97 + i)}: &{chr(97 + i)} [{','.join(['*' + chr(96 + i)] * 9)}]\n" for i in range(1, 10)
)


def test_billion_laughs_is_refused_at_its_line(write):
    path = write(VALID + LAUGHS.replace("a: &a", "x_a: &a"))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    problems = problems_of(path)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert any("aliases" in p and p.startswith("campaign.yaml:") for p in problems), problems
    assert grown_mb < 100  # expanding it would take gigabytes


def test_expanded_size_is_bounded_without_many_aliases():
    """Few alias uses, but each one doubles what it refers to: the expanded count stops it."""
    text = "a0: &a0 [" + ",".join(["x"] * 9000) + "]\n"
    text += "".join(f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}]\n" for i in range(1, 12))
    document, problems = yaml_source.parse_yaml(text, "big.yaml")
    assert problems and "more than 100,000 values" in problems[0].message
    assert problems[0].line is not None


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("name: x\naudience: " + "[" * 5000 + "]" * 5000 + "\n", 2, "nested too deeply"),
        ("name: x\naudience:\n" + "".join("  " * i + "- all:\n" for i in range(1, 60)), None, "nested too deeply"),
        ("name: x\nlist: [" + ",".join(["1"] * 100_001) + "]\n", 2, "a list of 100,001 items; at most 100,000"),
    ],
)
def test_depth_and_length_limits_name_the_line(text, line, message):
    _, problems = yaml_source.parse_yaml(text, "rules.yaml")
    assert problems and message in problems[0].message, problems
    if line is not None:
        assert problems[0].line == line


def test_file_size_is_bounded(write, tmp_path):
    big = write(VALID + "# " + "x" * yaml_source.MAX_BYTES + "\n", "big.yaml")
    assert any("at most 1,000,000 are read" in p for p in problems_of(big))
    huge = tmp_path / "huge.yaml"
    huge.write_bytes(b"#" * (4 * yaml_source.MAX_BYTES + 1))
    text, problems = yaml_source.read_text_file(huge, "rules file")
    assert text is None and "larger than" in problems[0].message


def test_matches_runs_in_linear_time_on_sqlite(engine, make_customer_table):
    """The pattern that backtracked for minutes on Python's re; RE2 answers at once (on both databases)."""
    table = make_customer_table(
        [sa.Column("customer_id", sa.Text, primary_key=True), sa.Column("email", sa.Text)],
        [{"customer_id": "c1", "email": "a" * 20_000 + "@y"}, {"customer_id": "c2", "email": "ab@x"}],
    )
    assert portable_regex_problem("^(.+)+@x$") is None
    assert selected(engine, table, "email: {matches: '^(.+)+@x$'}") == {"c2"}
    assert selected(engine, table, "email: {matches: '^(A|a)+@Y$'}") == {"c1"}  # case ignored, as before


def test_patterns_re2_cannot_run_in_linear_time_are_refused():
    assert "linear time" in (portable_regex_problem("a{1001}") or "")
    assert "at most 1000 characters" in (portable_regex_problem("a" * 1001) or "")
