"""``campaign api [--host H] [--port P]``: serve the response API with uvicorn.

Defaults come from ``CAMPAIGN_API_HOST`` / ``CAMPAIGN_API_PORT``; the sources allowed to post
outcomes from ``CAMPAIGN_API_SOURCES__<NAME>__SECRET``. Registered in ``cli.py`` with
``app.command("api")(api_command)``. ``python -m orchestrator.cli.api`` runs it standalone.
"""

from __future__ import annotations

from typing import Annotated

import typer

from orchestrator.cli.output import console, err, get_settings

__all__ = ["api", "api_command"]


def api(
    host: Annotated[str | None, typer.Option(help="Interface to listen on (default: CAMPAIGN_API_HOST).")] = None,
    port: Annotated[
        int | None, typer.Option(help="Port to listen on (default: CAMPAIGN_API_PORT).", min=1, max=65535)
    ] = None,
) -> None:
    """Serve the response API: outcomes from channel systems, e-mail opens, clicks and unsubscribes."""
    import uvicorn

    from orchestrator.responses.api import create_app

    settings = get_settings()
    host = host or settings.api.host
    port = port or settings.api.port
    if not settings.api.sources:
        err.print(
            "no sources configured (CAMPAIGN_API_SOURCES__<NAME>__SECRET): POST /v1/outcomes answers 401 to everyone"
        )
    app = create_app(settings)
    console.print(
        f"response API on http://{host}:{port} (docs: /docs); "
        f"sources: {', '.join(sorted(settings.api.sources)) or 'none'}"
    )
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        limit_concurrency=settings.api.max_connections,  # beyond it: 503
        timeout_keep_alive=5,  # an idle connection holds nothing for long
    )


api_command = api

if __name__ == "__main__":
    typer.run(api)
