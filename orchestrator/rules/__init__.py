"""Campaign managers' rules files: YAML with positions, the campaign spec, conditions compiled to SQL.

Contracts:

* ``loader.load_campaign(path, columns) -> CampaignSpec``: parse, validate against the customer
  table's columns (did-you-mean at file:line:col) and resolve segments; raises ``ValidationFailed``.
* ``spec``: the pydantic models of a rules file (``sections``: the building blocks of its channel
  sections); ``policy_spec`` the shared contact policy; ``outcomes`` the outcome types per channel
  (``rules/outcomes.yaml``).
* ``kinds``: one ``ChannelKind`` declaration per channel kind (section model, template layout,
  capacity pool, delivery mode, outcome types, builder and adapter), registered in ``KINDS``;
  the core reads these instead of branching on channel names.
* ``conditions.compile_condition``: a parsed audience condition to a SQLAlchemy expression with bound
  parameters (rules are never ``eval``-ed); ``id_lists``: include/exclude id files as temp tables.

May import: ``orchestrator.customers``, ``orchestrator.templates`` (layouts), ``channels`` (the
adapter base, for kinds), ``orchestrator.db``, ``orchestrator.settings``, ``orchestrator.errors``.
"""
