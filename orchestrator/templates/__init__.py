"""Message templates written by campaign managers: load, check statically, render in Jinja's sandbox.

Contracts:

* ``loader.TemplateSet.load(folder, channel, name, layout)`` compiles a template folder once (the
  ``ChannelLayout`` comes from the caller: the channel kind's); ``check(columns)``
  finds undefined variables at file:line; ``render`` / ``render_many`` run in the immutable sandbox
  with ``StrictUndefined`` and HTML autoescape.
* ``links``: signed tracking tokens and click links (``{{ click(url) }}``).

May import: ``orchestrator.settings``, ``orchestrator.errors``.
"""
