"""The demo world: synthetic customers, simulated channel systems, a local SMTP sink and webhook receivers.

Shipped because ``campaign demo`` is the README's first command; no core module imports it.
``run.run_demo(...)`` runs the whole closed loop on local servers.

May import: ``flows``, ``orchestrator.wave`` and every domain package.
"""
