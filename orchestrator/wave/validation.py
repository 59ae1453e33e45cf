"""Validation of a campaign as a whole: rules file, customer columns, templates, contact policy.

Used by ``campaign validate`` and before every wave, so that both report the same problems.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from orchestrator.customers.table import ColumnKind
from orchestrator.errors import Problem, ValidationFailed, did_you_mean
from orchestrator.rules.kinds import channel_kind, kind_names
from orchestrator.rules.kinds.email import KIND as EMAIL_KIND
from orchestrator.rules.loader import validate_campaign_file
from orchestrator.rules.spec import CampaignSpec
from orchestrator.settings import Settings
from orchestrator.templates.loader import TemplateSet

EMAIL = EMAIL_KIND.name  # the kind whose template has A/B variants
POLICY_FILE = "policy.yaml"


@dataclass
class CampaignCheck:
    """A campaign's parts as far as they could be read, and every problem found."""

    spec: CampaignSpec | None = None
    templates: dict[str | None, TemplateSet] = field(
        default_factory=dict
    )  # e-mail, by variant; None = the channel's own
    task_templates: dict[str, TemplateSet] = field(default_factory=dict)  # call_center, field_force, webhook
    policy: object | None = None  # orchestrator.targeting.policy.PolicySpec
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.spec is not None and not has_errors(self.problems)

    def raise_for_errors(self) -> None:
        if not self.ok:
            raise ValidationFailed(self.problems)


def _load_template(
    check: CampaignCheck, settings: Settings, name: str, columns, channel: str = EMAIL
) -> TemplateSet | None:
    try:
        template = TemplateSet.load(settings.paths.templates_dir, channel, name, channel_kind(channel).layout)
    except ValidationFailed as exc:
        check.problems.extend(exc.problems)
        return None
    if columns is not None:
        check.problems.extend(template.check(columns))
    return template


def _policy(check: CampaignCheck, spec: CampaignSpec, settings: Settings, columns) -> None:
    shared_path = settings.paths.rules_dir / POLICY_FILE
    if not shared_path.exists() and not spec.policy:
        return
    from orchestrator.rules.policy_spec import check_policy, load_policy, merge_policy

    shared = None
    if shared_path.exists():
        shared, problems = load_policy(shared_path)
        check.problems.extend(problems)
        if shared is None:
            return
    try:
        policy = merge_policy(shared, spec.policy)
    except ValueError as exc:  # pydantic's ValidationError: the merged policy is inconsistent
        check.problems.append(Problem(str(spec.source), None, None, f"policy: {exc}"))
        return
    if columns is not None:
        check.problems.extend(check_policy(policy, columns, channels=spec.channels.names()))
    known = kind_names()
    for channel in policy.send_windows:
        if channel not in known:
            hint = did_you_mean(channel, known) or f"; the channels are {', '.join(known)}"
            check.problems.append(  # the shared file's are reported by load_policy, at their line
                Problem(str(spec.source), None, None, f"policy.send_windows: unknown channel '{channel}'{hint}")
            )
    check.policy = policy


def validate_campaign(
    settings: Settings,
    path: Path,
    columns: dict[str, ColumnKind] | None,
    engine: sa.Engine | None = None,
) -> CampaignCheck:
    """Check the rules file, its templates (and its variants'), the contact policy and, with
    an engine, whether the control group is large enough for the lift the campaign wants."""
    spec, problems = validate_campaign_file(path, columns=columns, engine=engine)
    check = CampaignCheck(spec=spec, problems=problems)
    if spec is None:
        return check
    email = getattr(spec.channels, EMAIL, None)
    if email is not None:
        default = email.template
        names: dict[str | None, str] = {
            None: default,
            **{key: v.template or default for key, v in (spec.variants or {}).items()},
        }
        loaded: dict[str, TemplateSet | None] = {}
        for key, name in names.items():
            if name not in loaded:
                loaded[name] = _load_template(check, settings, name, columns)
            template = loaded[name]
            if template is not None:
                check.templates[key] = template
    for channel, section in spec.channels.items():
        if channel != EMAIL:
            template = _load_template(check, settings, section.template, columns, channel)
            if template is not None:
                check.task_templates[channel] = template
    check.problems.extend(_delivery_problems(settings, spec))
    if email is not None:
        check.problems.extend(_dkim_problems(settings, spec, email.sender))
    _policy(check, spec, settings, columns)
    if engine is not None and columns is not None and spec.scores is not None:
        check.problems.extend(_model_problems(settings, spec, engine, columns))
    if engine is not None and columns is not None and not has_errors(check.problems):
        check.problems.extend(_empty_channels(settings, spec, check.policy, engine))
    if engine is not None and columns is not None and not has_errors(check.problems):
        check.problems.extend(_control_size(settings, spec, check.policy, engine))
    return check


def _dkim_problems(settings: Settings, spec: CampaignSpec, sender: str) -> list[Problem]:
    """An error when the sender's DKIM key is required but missing, or configured but unreadable (nothing is sent)."""
    from channels.dkim import signer_for

    try:
        signer_for(settings.dkim, sender)
    except ValueError as exc:
        return [Problem(str(spec.source), None, None, f"channels.email.sender: {exc}")]
    return []


def _delivery_problems(settings: Settings, spec: CampaignSpec) -> list[Problem]:
    """Warnings for task channels that have no endpoint or no capacity to run with (errors at run time), and the
    capacity file's problems as the wave's plan would meet them (the reps file only for a field-force campaign)."""
    from orchestrator.targeting.capacity import load_capacity

    problems: list[Problem] = []
    for channel, section in spec.channels.items():
        kind = channel_kind(channel)
        if kind.delivery != "batches":
            continue
        key = kind.endpoint_key(section)
        if key not in settings.webhooks.endpoints:
            env = f"CAMPAIGN_WEBHOOKS_ENDPOINTS__{key.upper()}"
            problems.append(
                Problem(
                    str(spec.source),
                    None,
                    None,
                    f"channel {channel}: no endpoint '{key}' is configured; set {env}__URL and {env}__SECRET",
                    "warning",
                )
            )
    territorial = [name for name in spec.channels.names() if channel_kind(name).pool == "territory"]
    try:  # as the wave's plan reads it: the reps file only for a campaign that visits
        capacity = load_capacity(settings.paths.rules_dir, spec.channels.names())
    except ValidationFailed as exc:
        return problems + exc.problems
    if territorial:
        if not capacity.reps:
            problems += [
                Problem(
                    str(spec.source),
                    None,
                    None,
                    f"channel {name}: no sales reps; list them in rules/capacity.yaml under {name}: "
                    "{reps: reps.csv, visits_per_rep_per_day: 6}",
                    "warning",
                )
                for name in territorial
            ]
    return problems


def _model_problems(settings: Settings, spec: CampaignSpec, engine: sa.Engine, columns) -> list[Problem]:
    """The scores section names a registered model that can score the customer table."""
    from orchestrator.rules.yaml_source import parse_yaml
    from orchestrator.scoring.registry import ModelNotFound, get, load
    from orchestrator.scoring.response import FeatureMismatch, table_kinds

    document, _ = parse_yaml(spec.source.read_text(encoding="utf-8"), str(spec.source))
    scores = spec.scores
    if scores is None:
        return []
    where = ("scores", "version") if scores.version is not None else ("scores", "model")
    try:
        record = get(engine, scores.model, scores.version)
        if scores.min_score is not None and scores.min_score < 0 and record.kind != "uplift":
            problem = (
                f"min_score {scores.min_score:g} is below 0: only an uplift model predicts effects below 0; "
                f"'{scores.model}' is a {record.kind} model"
            )
            return (
                [document.positions.problem(("scores", "min_score"), problem, at="value")]
                if document
                else [Problem(str(spec.source), None, None, problem)]
            )
        model = load(settings, record)
        model.check_kinds(table_kinds(columns))
    except ModelNotFound as exc:
        message = f"{exc}; train one with `campaign models train --name {scores.model} ...`"
    except FeatureMismatch as exc:
        message = f"model '{scores.model}' cannot score the customer table: {exc}"
    except (OSError, ValueError) as exc:
        message = f"model '{scores.model}' cannot be loaded: {exc}"
    else:
        return []
    if document is None:
        return [Problem(str(spec.source), None, None, message)]
    return [document.positions.problem(where, message, at="value")]


def _control_size(settings: Settings, spec: CampaignSpec, policy, engine: sa.Engine) -> list[Problem]:
    """Warn when the control group the wave would draw is too small for the lift it must prove.

    The selection is estimated without scoring: every SQL filter (audience, lists, contact
    policy) counted in the database at today's date, less the global control share, cut to
    the score rule's ``top``/``top_percent``.
    """
    import math
    from datetime import date

    control = spec.control
    if control.expected_response_rate is None or control.min_detectable_lift is None:
        return []
    from orchestrator.customers.table import customer_table
    from orchestrator.success.power import control_group_warning
    from orchestrator.targeting.selection import named_conditions

    table = customer_table(engine, settings.database.customer_table)
    with engine.connect() as conn:
        conditions = [
            cond for _stage, _label, cond in named_conditions(spec, table, policy, as_of=date.today(), conn=conn)
        ]
        n = conn.execute(
            sa.select(sa.func.count()).select_from(table).where(sa.and_(sa.true(), *conditions))
        ).scalar_one()
    if policy is not None and policy.global_control is not None:
        n = round(n * (1 - policy.global_control.share))
    if spec.scores is not None and spec.scores.top is not None:
        n = min(n, spec.scores.top)
    if spec.scores is not None and spec.scores.top_percent is not None:
        n = math.ceil(n * spec.scores.top_percent / 100)
    warning = control_group_warning(
        n, control.share, control.expected_response_rate, control.min_detectable_lift, 0.05, 0.8
    )
    return [Problem(str(spec.source), None, None, warning, "warning")] if warning else []


def _empty_channels(settings: Settings, spec: CampaignSpec, policy, engine: sa.Engine) -> list[Problem]:
    """An error at the channel's line for every channel of a multichannel campaign that no customer of
    the audience may get today (its ``eligible:`` condition and the contact policy for it): the
    allocation, exploration and the per-channel models would never see it. One query asks whether
    each channel has a customer (``EXISTS``: it stops at the first one, not a scan of the table);
    only when one has none is the audience counted, for the message."""
    from datetime import date

    from orchestrator.customers.table import customer_table
    from orchestrator.rules.yaml_source import parse_yaml
    from orchestrator.targeting.planning import selection_columns
    from orchestrator.targeting.selection import named_conditions

    names = spec.channels.names()
    if len(names) < 2:
        return []  # a single channel: the funnel's audience and policy steps say it all
    table = customer_table(engine, settings.database.customer_table)
    today = date.today()
    with engine.connect() as conn:
        audience = [cond for _s, _l, cond in named_conditions(spec, table, policy, as_of=today, conn=conn)]
        flags = selection_columns(spec, policy, table, today)
        found = conn.execute(
            sa.select(
                *(
                    sa.select(sa.literal(1))
                    .select_from(table)
                    .where(sa.and_(sa.true(), *audience, flags[f"eligible:{name}"] == 1))
                    .exists()
                    for name in names
                )
            )
        ).one()
        if all(found):
            return []
        total = conn.execute(
            sa.select(sa.func.count()).select_from(table).where(sa.and_(sa.true(), *audience))
        ).scalar_one()
    if not total:
        return []  # nobody in the audience at all (or no customers yet): nothing to say per channel
    document, _ = parse_yaml(spec.source.read_text(encoding="utf-8"), str(spec.source))
    problems = []
    for name, eligible in zip(names, found, strict=True):
        if eligible:
            continue
        message = (
            f"channel {name}: none of the {total:,} customers of the audience may get it today "
            f"(its eligible: condition and the contact policy for {name}); fix the condition or remove the channel"
        )
        key = ("channels", name, "eligible") if spec.channels.section(name).eligible is not None else ("channels", name)
        problems.append(
            document.positions.problem(key, message, at="value" if key[-1] == "eligible" else "key")
            if document
            else Problem(str(spec.source), None, None, message)
        )
    return problems


def audit_validation(engine: sa.Engine, path: Path, check: CampaignCheck, *, actor: str | None = None) -> int:
    """Record one validation in the audit trail: the file, its digest and its templates' digests, how many
    errors and warnings (never the messages: they may quote data). Returns the event's id."""
    import hashlib

    from orchestrator.db import audit

    spec = check.spec
    if spec is not None:
        digest = spec.sha256
    else:
        try:
            digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        except OSError:
            digest = "unreadable"
    errors = sum(p.severity == "error" for p in check.problems)
    details: dict[str, str | int] = {
        "file": str(path)[-200:],
        "rules_sha256": digest,
        "result": "errors" if errors else "ok",
    }
    for template in [*check.templates.values(), *check.task_templates.values()]:
        details[f"template {template.channel}/{template.name}"] = template.digest
    return audit.record_now(
        engine,
        actor=actor or audit.current_actor(),
        action="validate",
        campaign=None if spec is None else spec.name,
        subject=f"rules file {Path(path).name}"[:200],
        counts={"errors": errors, "warnings": len(check.problems) - errors},
        details=details,
    )


def has_errors(problems: list[Problem]) -> bool:
    return any(p.severity == "error" for p in problems)


# --- every file under rules/, by kind --------------------------------------------------------

CAPACITY_FILE = "capacity.yaml"
OUTCOMES_FILE = "outcomes.yaml"
SEGMENTS_DIR = "segments"
KINDS = ("campaign", "policy", "capacity", "outcomes", "segment")


def rules_files(rules_dir: Path) -> list[Path]:
    """The YAML files under ``rules_dir`` that ``campaign validate`` checks without arguments: its own
    files (campaigns, policy, capacity, outcomes) and the segments in ``segments/``, in name order."""
    found = [p for pattern in ("*.yaml", "*.yml") for p in Path(rules_dir).glob(pattern)]
    found += [p for pattern in ("*.yaml", "*.yml") for p in (Path(rules_dir) / SEGMENTS_DIR).glob(pattern)]
    return sorted(p for p in found if p.is_file())


def kind_of_file(path: Path) -> str:
    """What a rules-folder file is, from its name and folder: ``policy.yaml``, ``capacity.yaml`` and
    ``outcomes.yaml`` are what their names say, a file in a ``segments`` folder is a segment, any other
    a campaign."""
    name = Path(path).name
    if name == POLICY_FILE:
        return "policy"
    if name == CAPACITY_FILE:
        return "capacity"
    if name == OUTCOMES_FILE:
        return "outcomes"
    if Path(path).parent.name == SEGMENTS_DIR:
        return "segment"
    return "campaign"


def validate_other_file(
    kind: str, path: Path, columns: dict[str, ColumnKind] | None, channels: set[str] | None
) -> list[Problem]:
    """Every problem of a policy, capacity, outcomes or segment file, as a wave would meet them.

    ``channels`` are the channels of the campaigns validated with it (``None``: all): the policy's
    consent columns and the capacity's reps file are checked for those only, as a run does.
    """
    if kind == "policy":
        from orchestrator.rules.policy_spec import load_policy

        return load_policy(path, columns, channels=channels)[1]
    if kind == "capacity":
        from orchestrator.targeting.capacity import load_capacity

        try:
            load_capacity(path.parent, channels)
        except ValidationFailed as exc:
            return exc.problems
        return []
    if kind == "outcomes":
        from orchestrator.rules.outcomes import load_outcomes

        try:
            load_outcomes(path.parent)
        except ValidationFailed as exc:
            return exc.problems
        return []
    if kind == "segment":
        from orchestrator.rules.condition_parser import InSegment
        from orchestrator.rules.segments import SegmentLibrary
        from orchestrator.rules.yaml_source import Positions

        library = SegmentLibrary(path.parent, columns)
        library.resolve(InSegment(path.stem), Positions(str(path)), ())
        return library.problems
    raise ValueError(f"unknown kind of rules file '{kind}'; one of {', '.join(KINDS)}")
