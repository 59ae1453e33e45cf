"""Channel kinds: what a channel means to the core, declared once per kind and registered by name.

A channel kind (``email``, ``call_center``, ``field_force``, ``webhook``) is one module that
declares a ``ChannelKind``: the section of a rules file it reads, the parts of its templates,
how allocation pools its capacity, how its contacts are delivered, the outcome types its
system reports, the builder of its messages and the adapter that delivers them. The core
reads these declarations instead of branching on channel names.

``KINDS`` is the one table of kinds, kind name -> ``"module:attr"`` of the declaration,
imported on first use (kombu-style). Adding a channel kind is one new module and one line
here (or ``register_kind(name, "module:attr")`` at run time, e.g. in a test)::

    KINDS = {..., "sms": "orchestrator.rules.kinds.sms:KIND"}

The contract of a declaration (``ChannelKind``):

* ``spec``: the pydantic model of its section in a rules file (``channels: {<name>: ...}``), a
  subclass of ``sections.ChannelSpec`` (every channel has ``eligible``, ``cost``, ``value``,
  ``template``); ``columns`` names the section's keys that name customer columns, checked
  against the customer table like the audience;
* ``layout``: the parts of its templates (``templates/<name>/<template>/``), passed to
  ``TemplateSet.load``;
* ``pool``: ``"channel"`` (one capacity pool named after the kind, its daily limit the
  ``capacity.yaml`` section's ``daily_limit`` attribute), ``"endpoint"`` (one pool per
  endpoint the section's ``endpoint`` names, ``webhook:crm``; the contact's assignee is the
  endpoint) or ``"territory"`` (one pool per territory of the reps in ``capacity.yaml``, keyed
  by the customer column the section's ``territory_column`` names; the assignee is the rep);
* ``delivery``: ``"journal"`` (message by message, each accepted one journalled before the
  ledger is updated: e-mail) or ``"batches"`` (task lists fixed in the ledger before the
  first POST, sent under a stable batch key); ``per_assignee``: one list per assignee (a
  rep's visits);
* ``outcome_types`` and ``outcome_classes``: the outcome types its system reports and which
  of them count by default as a response, a conversion or a negative outcome
  (``rules/outcomes.yaml`` may override the classes); ``suppressing``: outcome types that put
  the customer on the channel's suppression list, with the reason; ``links``: its messages
  carry tracked links handled by the response API;
* ``builder``: ``"module:attr"`` of the function that turns one rendered ledger row into an
  ``Outbound`` for batch kinds (``orchestrator.delivery.tasks``; imported by delivery, never
  here); ``adapter``: ``"module:Class"`` of the channel adapter, made from the settings by
  ``connect(kind, settings, section)`` (default: a signed-webhook adapter for the
  endpoint ``endpoint_key(section)`` of ``settings.webhooks.endpoints``).

May import: ``orchestrator.rules`` (sections), ``orchestrator.templates`` (layouts),
``channels`` (the adapter base), ``orchestrator.settings``, ``orchestrator.errors``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from channels.base import Channel, PermanentDeliveryError
from orchestrator.errors import did_you_mean
from orchestrator.templates.loader import ChannelLayout

if TYPE_CHECKING:
    from orchestrator.rules.sections import ChannelSpec
    from orchestrator.settings import Settings

__all__ = [
    "KINDS",
    "ChannelKind",
    "ColumnKey",
    "UnknownChannelKind",
    "channel_kind",
    "kind_names",
    "kinds",
    "load_target",
    "on_change",
    "register_kind",
    "unregister_kind",
    "webhook_adapter",
]

KINDS: dict[str, str] = {
    "email": "orchestrator.rules.kinds.email:KIND",
    "call_center": "orchestrator.rules.kinds.call_center:KIND",
    "field_force": "orchestrator.rules.kinds.field_force:KIND",
    "webhook": "orchestrator.rules.kinds.webhook:KIND",
}
"""Kind name -> ``"module:attr"`` of its ``ChannelKind``; the order breaks ties between channels."""

Pool = Literal["channel", "endpoint", "territory"]
Delivery = Literal["journal", "batches"]
OUTCOME_CLASSES = ("response", "conversion", "negative")


@dataclass(frozen=True, slots=True)
class ColumnKey:
    """A key of a channel section that names customer columns (one, or a list)."""

    key: str  # e.g. "phone_column"
    default: str | tuple[str, ...]  # what the section names when the key is not given
    kind: str | None = None  # the column kind the column must have (customers.table.ColumnKind), if any
    holds: str | None = None  # what such a column holds, for messages ("e-mail addresses"); default the kind
    required_by: str | None = None  # the payload field that cannot be empty, so the key must name a column
    example: str = ""  # a value of the key for messages, e.g. "[first_name, last_name]"


def webhook_adapter(kind: ChannelKind, settings: Settings, section: ChannelSpec) -> Channel:
    """The adapter of a batch kind: ``kind.adapter`` for the signed-webhook endpoint of the section."""
    key = kind.endpoint_key(section)
    endpoint = settings.webhooks.endpoints.get(key)
    if endpoint is None:
        env = f"CAMPAIGN_WEBHOOKS_ENDPOINTS__{key.upper()}"
        raise PermanentDeliveryError(
            f"no endpoint '{key}' is configured for channel {kind.name}; set {env}__URL and {env}__SECRET"
        )
    adapter: Any = kind.adapter_class()  # a TaskListChannel: (endpoint, settings, name=)
    return adapter(endpoint, settings.webhooks, name=key)


@dataclass(frozen=True)
class ChannelKind:
    """What one channel kind means to the core; see the module docstring for each field."""

    name: str
    spec: type[ChannelSpec]
    description: str
    layout: ChannelLayout
    adapter: str  # "module:Class" of the channel adapter
    outcome_types: tuple[str, ...]
    outcome_classes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    pool: Pool = "channel"
    daily_limit: str | None = "per_day"  # attribute of the capacity.yaml section with the daily limit
    delivery: Delivery = "batches"
    per_assignee: bool = False
    builder: str | None = None  # "module:attr" of the Outbound builder of a batch kind
    columns: tuple[ColumnKey, ...] = ()
    suppressing: Mapping[str, str] = field(default_factory=dict)  # outcome type -> suppression reason
    links: bool = False
    connect: Callable[[ChannelKind, Settings, ChannelSpec], Channel] = webhook_adapter

    def __post_init__(self) -> None:
        if self.pool not in ("channel", "endpoint", "territory"):
            raise ValueError(
                f"The 'pool' of channel kind {self.name!r} must be 'channel', 'endpoint' or 'territory'. "
                f"Got {self.pool!r} instead."
            )
        if self.delivery not in ("journal", "batches"):
            raise ValueError(
                f"The 'delivery' of channel kind {self.name!r} must be 'journal' or 'batches'. "
                f"Got {self.delivery!r} instead."
            )
        if self.delivery == "batches" and not self.builder:
            raise ValueError(f"Channel kind {self.name!r} delivers batches and needs a 'builder' ('module:attr').")
        for name, types in self.outcome_classes.items():
            unknown = [t for t in types if t not in self.outcome_types]
            if name not in OUTCOME_CLASSES or unknown:
                raise ValueError(
                    f"The outcome_classes of channel kind {self.name!r} must map {', '.join(OUTCOME_CLASSES)} to "
                    f"some of its outcome_types. Got {name!r}: {types!r} instead."
                )
        object.__setattr__(self, "outcome_classes", MappingProxyType(dict(self.outcome_classes)))
        object.__setattr__(self, "suppressing", MappingProxyType(dict(self.suppressing)))

    def endpoint_key(self, section: ChannelSpec) -> str:
        """The settings key of the endpoint the kind delivers to: the section's endpoint, or the kind's name."""
        return str(getattr(section, "endpoint")) if self.pool == "endpoint" else self.name  # noqa: B009

    def territory_column(self, section: ChannelSpec) -> str | None:
        """The customer column with the territory (territory pools), else ``None``."""
        return str(getattr(section, "territory_column")) if self.pool == "territory" else None  # noqa: B009

    def adapter_class(self) -> type[Channel]:
        return load_target(self.adapter)

    def make_adapter(self, settings: Settings, section: ChannelSpec) -> Channel:
        """The adapter for a campaign's section, configured from the settings."""
        return self.connect(self, settings, section)


class UnknownChannelKind(LookupError, ValueError):
    """A channel kind that is not in ``KINDS``."""


_loaded: dict[str, ChannelKind] = {}
_listeners: list[Callable[[], None]] = []


def load_target(target: str) -> Any:
    """The object named by ``"module:attr"``, imported on first use."""
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise ValueError(
            f"A registry target must be 'module:attr', e.g. 'channels.email:EmailChannel'. Got {target!r}."
        )
    return getattr(importlib.import_module(module_name), attr)


def channel_kind(name: str) -> ChannelKind:
    """The declaration of kind ``name``; ``UnknownChannelKind`` with a suggestion for any other name."""
    kind = _loaded.get(name) if isinstance(name, str) else None
    if kind is not None:
        return kind
    try:
        target = KINDS[name]
    except (KeyError, TypeError):
        hint = did_you_mean(str(name), KINDS) or "; known kinds: " + ", ".join(repr(k) for k in KINDS)
        raise UnknownChannelKind(f"No such channel kind {name!r}{hint}") from None
    kind = load_target(target)
    if not isinstance(kind, ChannelKind) or kind.name != name:
        raise TypeError(f"{target} must be the ChannelKind named {name!r}; got {kind!r}")
    _loaded[name] = kind
    return kind


def kind_names() -> tuple[str, ...]:
    """The registered kinds, in the order ties between channels are broken."""
    return tuple(KINDS)


def kinds() -> tuple[ChannelKind, ...]:
    """Every registered kind's declaration, in registry order."""
    return tuple(channel_kind(name) for name in KINDS)


def register_kind(name: str, target: str) -> ChannelKind:
    """Add kind ``name`` (``"module:attr"`` of its ``ChannelKind``) to ``KINDS``; returns the declaration.

    The models that have one entry per kind (a rules file's ``channels:``) are rebuilt.
    """
    if name in KINDS and KINDS[name] != target:
        raise ValueError(f"Channel kind {name!r} is registered as {KINDS[name]}; unregister it first.")
    KINDS[name] = target
    try:
        kind = channel_kind(name)
    except BaseException:
        del KINDS[name]
        raise
    _changed()
    return kind


def unregister_kind(name: str) -> None:
    """Remove kind ``name`` from ``KINDS`` (a kind registered at run time, e.g. by a test)."""
    KINDS.pop(name, None)
    _loaded.pop(name, None)
    _changed()


def on_change(listener: Callable[[], None]) -> None:
    """Call ``listener()`` whenever a kind is registered or unregistered."""
    _listeners.append(listener)


def _changed() -> None:
    for listener in _listeners:
        listener()
