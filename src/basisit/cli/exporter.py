"""basisit exporter: the suite's own Prometheus exporter (contracts 1 and 2 as metrics)."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from types import FrameType

import typer

from basisit.cli.common import err_console
from basisit.cli.render import esc


def exporter(
    listen: str = typer.Option(
        None,
        "--listen",
        help="127.0.0.1:PORT to serve /metrics on (default 127.0.0.1:$BASISIT_EXPORTER_PORT "
        "or 127.0.0.1:9464)",
    ),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="The suite's data directory (default $BASISIT_DATA_DIR)"
    ),
) -> None:
    """Serve provisioned units, billable flags and Kommune names for Prometheus, until
    stopped (SIGTERM or Ctrl-C). The exposition is rebuilt only when its inputs change."""
    if data_dir is not None:
        os.environ["BASISIT_DATA_DIR"] = str(data_dir)
    from basisit.app.exporter import exposition
    from basisit.monitoring import exporter as driver
    from basisit.monitoring import prometheus

    if listen is None:
        listen = prometheus.Settings.from_env().exporter_address
    server = driver.server(exposition(), listen)
    host, port = server.server_address[:2]

    def stop(_signum: int, _frame: FrameType | None) -> None:
        # shutdown() waits for serve_forever, which runs in this thread: ask from another.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    err_console.print(f"basisit exporter on http://{esc(host)}:{port}/metrics", highlight=False)
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def register(app: typer.Typer) -> None:
    app.command("exporter")(exporter)
