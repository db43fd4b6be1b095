"""`shatterbox serve`: the local web app."""

from __future__ import annotations

import os
from typing import Optional

import typer

from shatterbox.cli._common import ModelOpt, _friendly_errors, _say, app
from shatterbox.errors import InputError


@app.command()
def serve(
    model: str = ModelOpt,
    port: int = typer.Option(8000, "--port", "-p", help="TCP port."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on; the default 127.0.0.1 is reachable from this machine only."),
    stores: Optional[str] = typer.Option(None, "--stores", help="A folder of activation stores (each made by `shatterbox harvest --out DIR/NAME`) for the Corpus tab."),
    decoder: Optional[str] = typer.Option(None, "--decoder", help="The Generate tab's decoder (e.g. gemma-3-270m from the decoder extra), loaded at its first request."),
) -> None:
    """Serve the web app (Attention, Heads, Explain tabs and a JSON API with docs at /docs), offline."""
    from shatterbox.web import serve as run_server

    with _friendly_errors():
        if not 0 < port < 65536:
            raise InputError(f"port {port} is out of range: use 1-65535 (e.g. --port 8000)")
        if host not in ("127.0.0.1", "localhost", "::1"):
            _say(f"warning: listening on {host}: other machines on the network can use this server")
        try:
            if stores is not None and not os.path.isdir(stores):
                raise InputError(f"--stores {stores!r} is not a folder: give the folder that holds your stores (e.g. --stores stores)")
            run_server(model, host=host, port=port, stores=stores, decoder=decoder, on_ready=lambda url: _say(f"shatterbox serving {model!r} at {url} (Ctrl+C to stop)"))
        except OSError as exc:
            raise InputError(f"{exc.strerror or exc}; choose another --port") from exc
