"""Success control: treated vs random control, lift, intervals, p-values, revenue, ROI; renderers.

Contracts:

* ``campaign.build_campaign_report(settings, campaign, ...)``: the report of a campaign from the ledger.
* ``data``: contacts with attributed outcomes as a frame (windows cut at the next contact, snapshot
  columns); ``report.build_report``: the per wave, channel, variant, decile and ``--by`` tables with
  corrected p-values, sample-ratio checks and early-look readings, put together from
  ``report_types`` (the report as plain data), ``segments`` (the statistics of each segment and the
  corrected p-values), ``sample_ratios`` (the sample-ratio checks), ``curves`` (the success curve
  and the gains table) and ``notes`` (the report's sentences); ``statistics``: the tests and
  intervals; ``adjustment``: Lin's regression adjustment (CUPED/CUPAC); ``sequential``: the
  always-valid confidence sequence; ``power``: sample sizes.
* ``global_control``: the global control group against everybody else, per month.
* Renderers, formatting the report without recomputing it: ``formatting`` (numbers, the headline and the
  lines around it) and ``table_cells`` (one row of cells per segment), shared by ``terminal`` (rich
  tables), ``artifacts`` (Prefect Markdown and table artifacts) and ``html_page`` (one self-contained
  page with the SVG ``charts``, drawn through ``chart_svg``); ``global_render``: the global control
  report.

May import: ``orchestrator.responses``, ``orchestrator.targeting``, ``orchestrator.ledger`` and below.
"""
