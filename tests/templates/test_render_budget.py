"""Problem 3 of issue 15, templates: a runaway template fails its message with file:line, not the machine.

Nested ``range(100000)`` loops passed validate and hung preview and a real wave; ``'a'*10**9``
built a gigabyte. Each message now renders under a ``RenderBudget`` (operations, seconds,
characters); a wave stops cleanly after ``wave_overruns`` messages over budget.
"""

from __future__ import annotations

import resource
from pathlib import Path

import pytest

from orchestrator.errors import ValidationFailed
from orchestrator.rules.kinds import channel_kind
from orchestrator.templates.budget import RenderBudget, RenderBudgetExhausted
from orchestrator.templates.loader import RenderError, TemplateSet

RUNAWAY = {
    "nested loops": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "huge repetition": "{{ 'a' * 10**9 }}",
    "doubling": "{% set ns = namespace(s='a') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
    "wide method": "{{ 'a'.center(10**9) }}",
    "wide printf": "{{ '%999999999d' % 5 }}",
    "wide format": "{{ '{:>999999999}'.format(5) }}",
    "huge power": "{{ 7 ** 10000000 }}",
    "output in a loop": "{% for i in range(100000) %}{{ 'x' * 900000 }}{% endfor %}",
    "literal text in a loop": "{% for i in range(100000) %}" + "y" * 100 + "{% endfor %}",
    "exponential macro": "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(40) }}",
    "doubling filter": "{% set ns = namespace(s='a') %}{% for i in range(40) %}{% set ns.s = ns.s|replace('a', 'aa') %}"
    "{% endfor %}",
    "growing filter": "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s|tojson %}{% endfor %}",
    "wide indent": "{{ ('a\\n' * 1000)|indent(10**7) }}",
}


def template(tmp_path: Path, body: str, budget: RenderBudget | None = None) -> TemplateSet:
    folder = tmp_path / "email" / "t"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "subject.txt").write_text("Hello {{ first_name }}\n")
    (folder / "body.txt").write_text("Dear {{ first_name }},\n" + body + "\n")
    loaded = TemplateSet.load(tmp_path, "email", "t", channel_kind("email").layout)
    if budget is not None:
        loaded.budget = budget
    return loaded


@pytest.mark.parametrize("name", RUNAWAY)
def test_runaway_template_fails_its_message_at_file_and_line(tmp_path, name):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    [result] = template(tmp_path, RUNAWAY[name]).render_many([{"first_name": "Ann"}])
    assert isinstance(result, RenderError) and result.over_budget, result
    assert str(result.problem).startswith(f"{tmp_path / 'email' / 't' / 'body.txt'}:2: over the render budget")
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024 < 200  # MiB, not gigabytes


def test_ordinary_templates_render_as_before(tmp_path):
    body = "{% for i in range(1000) %}{{ i }},{% endfor %} {{ 'ab' * 3 }} {{ 2 ** 10 }} {{ '%5d' % 7 }}"
    [result] = template(tmp_path, body).render_many([{"first_name": "Ann"}])
    assert isinstance(result, dict)
    assert result["text"].startswith("Dear Ann,\n0,1,2,") and "ababab 1024     7" in result["text"]


def test_the_budget_is_per_message(tmp_path):
    """Each message gets its own budget: 30 messages of 9,000 operations each pass a budget of 10,000."""
    loaded = template(tmp_path, "{% for i in range(9000) %}{% endfor %}ok", RenderBudget(operations=10_000))
    assert all(isinstance(r, dict) for r in loaded.render_many([{"first_name": "Ann"}] * 30))


def test_a_wave_stops_cleanly_after_too_many_overruns(tmp_path):
    """Messages over budget fail one by one; after wave_overruns of them rendering stops with a ValidationFailed
    naming the file and line (a wave's chunk stops there, its contacts stay pending)."""
    loaded = template(tmp_path, RUNAWAY["nested loops"], RenderBudget(wave_overruns=3))
    results = loaded.render_many([{"first_name": "Ann"}] * 2)
    assert all(isinstance(r, RenderError) and r.over_budget for r in results)
    with pytest.raises(RenderBudgetExhausted) as stopped:
        loaded.render_many([{"first_name": "Ann"}] * 100)
    assert isinstance(stopped.value, ValidationFailed)
    assert "body.txt:2: over the render budget" in str(stopped.value.problems[0])
    assert "3 messages went over the render budget" in str(stopped.value.problems[0])
