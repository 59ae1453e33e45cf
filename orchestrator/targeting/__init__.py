"""Who is contacted, on which channel: selection in SQL, contact policy, control split, arbitration, allocation.

Contracts:

* ``selection``: the audience, lists and contact policy ANDed into one SQL query; scores cut on chunks.
* ``policy``: consent, suppression list, frequency caps over the ledger, global control.
* ``control``: stable salted-hash treatment/control split and A/B variants.
* ``arbitration``: one campaign per customer across a cycle.
* ``capacity`` / ``allocation``: channel pools and the exact min-cost-flow allocation.
* ``exploration``: a share of the allocated customers tries a drawn channel, with recorded propensities.
* ``options``: per (customer, channel) of a campaign its expected value and capacity pool, the rows
  the allocation weighs and exploration draws among.
* ``planning.plan_cycle``: all of the above for the campaigns of one cycle -> ``CampaignPlan``.
* ``frame``: ``ContactFrame``, what a wave records as equal-length columns (customer, arm,
  variant, channel, assignee, score, expected value, pool); ``Selection`` and ``CampaignPlan``
  carry one, ``orchestrator.ledger.contacts.record_contacts`` writes it.

May import: ``orchestrator.rules``, ``orchestrator.scoring``, ``orchestrator.customers``,
``orchestrator.execution``, ``orchestrator.db``, ``orchestrator.settings``, ``orchestrator.errors``.
"""
