"""``soundsift ui``: serve the Streamlit search page on an index."""
from __future__ import annotations

import typer

from ui.cli.app import app
from ui.cli.common import (HostOption, IndexOption, VerboseOption, err_console, reports_errors, setup_logging,
                           warn_if_shared)
from ui.cli.results import IndexModelOption


@app.command("ui")
@reports_errors
def ui_command(
    index: IndexOption = None,
    port: int = typer.Option(8501, "--port", "-p", min=1, max=65535, help="Port to serve the page on."),
    host: HostOption = "127.0.0.1",
    model: IndexModelOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Open the search page in the browser (Streamlit), on one index."""
    import sys
    from pathlib import Path

    from engine.layout import IndexLayout, missing_index, resolve_index_dir
    from ui.components.server import exec_page

    setup_logging(verbose)
    if model and Path(model).expanduser().exists():
        model = str(Path(model).expanduser().resolve())
    index_dir = resolve_index_dir(index).resolve()
    if not IndexLayout(index_dir).catalog.is_file():
        raise missing_index(index_dir, index)
    warn_if_shared(host, "search and play your library")
    err_console.print(f"soundsift ui: index {index_dir} on http://{host}:{port}/ (Ctrl+C stops)", soft_wrap=True)
    sys.stdout.flush()
    sys.stderr.flush()
    exec_page(index_dir, port=port, host=host, model=model)
