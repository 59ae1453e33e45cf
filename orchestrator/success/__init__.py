"""Success control: treated vs random control, lift, intervals, p-values, revenue, ROI; renderers.

Contracts:

* ``campaign.build_campaign_report(settings, campaign, ...)``: the report of a campaign from the ledger.
* ``data``: contacts with attributed outcomes as a frame; ``report.build_report``: the per wave,
  channel, variant and decile tables; ``statistics``: the tests and intervals; ``power``: sample sizes.
* ``render``: terminal, JSON and HTML (with charts).

May import: ``orchestrator.responses``, ``orchestrator.targeting``, ``orchestrator.ledger`` and below.
"""
