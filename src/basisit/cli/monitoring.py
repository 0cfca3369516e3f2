"""basisit monitoring up | down | status | config: Prometheus and the exporter on this host."""

from __future__ import annotations

from pathlib import Path

import typer

from basisit.app import monitoring as use_case
from basisit.cli.common import Format, console, emit, err_console, group
from basisit.cli.render import Table, esc, plain
from basisit.monitoring.prometheus import Settings, render_config

app = group("Prometheus and the suite's exporter as background processes on 127.0.0.1.")

PROMETHEUS_PORT = typer.Option(
    None, "--prometheus-port", help="default $BASISIT_PROMETHEUS_PORT or 9090"
)
EXPORTER_PORT = typer.Option(None, "--exporter-port", help="default $BASISIT_EXPORTER_PORT or 9464")
INTERVAL = typer.Option(
    None, "--scrape-interval", help="seconds; default $BASISIT_SCRAPE_INTERVAL or 60"
)
RETENTION = typer.Option(
    None, "--retention", help="how long Prometheus keeps samples; default 400d"
)
FORMAT = typer.Option(Format.table, "--format")


def _settings(
    prometheus_port: int | None,
    exporter_port: int | None,
    scrape_interval: int | None,
    retention: str | None,
) -> Settings:
    return Settings.from_env(
        prometheus_port=prometheus_port,
        exporter_port=exporter_port,
        scrape_interval_s=scrape_interval,
        retention=retention,
    )


def _holder(port: int) -> str:
    from basisit.preflight.ports import holders

    who = holders([port]).get(port)
    return f" (by {', '.join(who)})" if who else ""


def _show(report: use_case.Report, fmt: Format, title: str) -> None:
    if fmt is not Format.table:
        emit(report.to_dict(), fmt)
        return
    table = Table(title=title)
    for col in ("Component", "State", "PID", "Address", "Log"):
        table.add_column(col)
    for c in report.components:
        style = "green" if c.pid else "dim"
        table.add_row(c.name, plain(c.state, style), str(c.pid or "-"), c.address, c.log)
    console.print(table)
    if report.targets:
        targets = Table(title=f"Scrape targets ({report.url}/targets)")
        for col in ("Job", "AGS", "Server", "Target", "Health", "Last error"):
            targets.add_column(col)
        for t in report.targets:
            health = plain(t["health"], "green" if t["health"] == "up" else "red")
            targets.add_row(
                t["job"], t["ags"] or "-", t["server"] or "-", t["target"], health, t["error"]
            )
        console.print(targets)
        up = sum(1 for t in report.targets if t["health"] == "up")
        console.print(f"targets: {up} up, {len(report.targets) - up} not up", highlight=False)
    if report.components and any(c.state == "running" for c in report.components):
        firing = ", ".join(sorted({a["alert"] for a in report.alerts})) or "none"
        console.print(f"alerts firing: {esc(firing)}", highlight=False)
    for note in report.notes:
        err_console.print(f"[yellow]note:[/] {esc(note)}", highlight=False)


@app.command("up")
def up(
    prometheus_port: int | None = PROMETHEUS_PORT,
    exporter_port: int | None = EXPORTER_PORT,
    scrape_interval: int | None = INTERVAL,
    retention: str | None = RETENTION,
    fmt: Format = FORMAT,
) -> None:
    """Start Prometheus and the exporter (what is not running yet), with generated
    configuration and file_sd targets from the stack outputs."""
    settings = _settings(prometheus_port, exporter_port, scrape_interval, retention)
    report = use_case.up(settings, holder=_holder)
    _show(report, fmt, f"Monitoring: Prometheus on {report.url}")


@app.command("down")
def down(fmt: Format = FORMAT) -> None:
    """Stop Prometheus and the exporter (their data stays)."""
    _show(use_case.down(), fmt, "Monitoring stopped")


@app.command("status")
def status(fmt: Format = FORMAT) -> None:
    """PIDs, ports, the scrape targets' health and the firing alerts (Prometheus' API)."""
    report = use_case.status()
    _show(report, fmt, f"Monitoring: Prometheus on {report.url}")


@app.command("config")
def config(
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write it here (default: print it)"
    ),
    prometheus_port: int | None = PROMETHEUS_PORT,
    exporter_port: int | None = EXPORTER_PORT,
    scrape_interval: int | None = INTERVAL,
) -> None:
    """The generated Prometheus configuration (what `up` runs with); check it with
    `promtool check config`."""
    settings = _settings(prometheus_port, exporter_port, scrape_interval, None)
    if output is None:
        console.out(render_config(settings), end="", highlight=False)
        return
    path, _ = use_case.write_config(settings, output)
    err_console.print(f"written to {esc(path)}", highlight=False)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="monitoring")
