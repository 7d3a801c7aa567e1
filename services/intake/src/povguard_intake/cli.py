"""`povguard import`, `povguard export` and `povguard template`: the registry in and out of the template through
the running intake service's API (so the same checks, scopes and audit apply)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

app = typer.Typer()
console = Console(stderr=True)

UrlOption = Annotated[str, typer.Option(envvar="POVGUARD_INTAKE_URL", help="the intake service")]
TokenOption = Annotated[str | None, typer.Option(envvar="POVGUARD_TOKEN",
                                                 help="bearer token (default: a local development token)")]


def _headers(token: str | None) -> dict[str, str]:
    if token is None:
        from povguard_platform.actor import Actor, Role
        from povguard_platform.auth import issue_token
        from povguard_platform.settings import get_settings

        settings = get_settings()
        token = issue_token(Actor(user="cli", role=Role.COUNTY_BUREAU, org=settings.campaign.split("-")[0]), settings)
    return {"Authorization": f"Bearer {token}"}


def _check(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 400:
        try:
            problem = response.json()
            detail = problem.get("detail") or problem.get("title")
        except ValueError:
            detail = response.text
        console.print(f"[red]{response.status_code}[/red] {detail}")
        raise typer.Exit(1)
    return response


@app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="XLSX or CSV in the template")],
    as_json: Annotated[bool, typer.Option("--json", help="print the whole report as JSON")] = False,
    errors_xlsx: Annotated[Path | None, typer.Option(help="save the input with an error column here")] = None,
    url: UrlOption = "http://127.0.0.1:8101",
    token: TokenOption = None,
    wait: Annotated[float, typer.Option(help="seconds to wait for the import to finish")] = 3600,
) -> None:
    """Import households (批量导入农户信息); every bad row is reported with row, column and reason. The import is a
    job on the server: if the service restarts it resumes there, and this command keeps waiting up to --wait."""
    headers = _headers(token)
    with httpx.Client(base_url=url, headers=headers, timeout=300) as client:
        with file.open("rb") as f:
            started = _check(client.post("/v1/imports", files={"file": (file.name, f)})).json()
        import_id = started["import_id"]
        report: dict[str, Any] = started
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console, disable=as_json) as progress:
            task = progress.add_task(f"导入 {file.name}", total=None)
            deadline = time.monotonic() + wait
            while report["status"] == "running":
                if time.monotonic() > deadline:
                    console.print(f"[red]导入 {import_id} 在 {wait:.0f} 秒内没有结束[/red]：它仍在服务端进行"
                                  f"（服务重启后会继续），稍后用 GET {url}/v1/imports/{import_id} 查看结果")
                    raise typer.Exit(2)
                time.sleep(0.5)
                try:
                    polled = client.get(f"/v1/imports/{import_id}", params={"limit": 0})
                except httpx.TransportError:  # the service is restarting: the job survives it
                    continue
                if polled.status_code == 503:
                    continue
                report = _check(polled).json()
                progress.update(task, total=report["households"] or None, completed=report["processed"])
        report = _check(client.get(f"/v1/imports/{import_id}", params={"limit": 100_000})).json()
        if errors_xlsx is not None and report["error_count"]:
            errors_xlsx.write_bytes(_check(client.get(report["errors_xlsx"])).content)
    if as_json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        _print_report(report)
    raise typer.Exit(0 if report["status"] == "done" else 1)


def _print_report(report: dict[str, Any]) -> None:
    console.print(f"{report['file_name']}: {report['households']} 户 / {report['rows']} 行 — 导入 "
                  f"{report['imported']}，未变 {report['unchanged']}，退回 {report['refused']}（{report['status']}）")
    if report.get("message"):
        console.print(f"[red]{report['message']}[/red]")
    if report["errors"]:
        table = Table("行", "列", "原因", title=f"错误 {report['error_count']} 条")
        for e in report["errors"][:50]:
            table.add_row(str(e["row"]), e["column"], e["message"])
        console.print(table)
        if report["error_count"] > 50:
            console.print(f"… 其余 {report['error_count'] - 50} 条见 --json 或 --errors-xlsx")


@app.command("export")
def export_file(
    org: Annotated[str, typer.Option(help="county, township, village or group code")],
    file: Annotated[Path, typer.Argument(dir_okay=False, help="where to write the XLSX")],
    purpose: str = "数据比对",
    url: UrlOption = "http://127.0.0.1:8101",
    token: TokenOption = None,
) -> None:
    """Export the registry of an org unit in the template (contains personal data; the export is audited)."""
    with httpx.Client(base_url=url, headers=_headers(token), timeout=600) as client:
        response = _check(client.get("/v1/exports/registry.xlsx", params={"org": org, "purpose": purpose}))
    file.write_bytes(response.content)
    console.print(f"wrote {file} ({len(response.content):,} bytes)")


@app.command("template")
def template_file(file: Annotated[Path, typer.Argument(dir_okay=False)] = Path("农户信息模板.xlsx")) -> None:
    """Write the empty import template with its notes and allowed values."""
    from povguard_intake.bulk import template_xlsx

    file.write_bytes(template_xlsx())
    console.print(f"wrote {file}")


def main() -> None:  # for `python -m povguard_intake.cli`
    app()


if __name__ == "__main__":
    main()

