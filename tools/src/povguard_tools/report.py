"""`povguard report statistics|ledger`: the plan's statistics tables as XLSX (附件3 统计表, 附件2-2 工作台账) from
the running reporting service, for any org unit and date (the same scopes and audit as the API)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console

app = typer.Typer(help="统计报表：附件3 统计表、附件2-2 工作台账 (XLSX) from the reporting service.",
                  no_args_is_help=True)
console = Console(stderr=True)

OrgOption = Annotated[str | None, typer.Option(help="county, township or village code (default: the token's own)")]
AsOfOption = Annotated[str | None, typer.Option(help="截至 YYYY-MM-DD (default: now)")]
OutArgument = Annotated[Path, typer.Argument(dir_okay=False, help="where to write the XLSX")]
UrlOption = Annotated[str, typer.Option(envvar="POVGUARD_REPORTING_URL", help="the reporting service")]
TokenOption = Annotated[str | None, typer.Option(envvar="POVGUARD_TOKEN",
                                                 help="bearer token (default: a county-bureau development token)")]


def _token(token: str | None) -> str:
    if token is not None:
        return token
    from povguard_platform.actor import Actor, Role
    from povguard_platform.auth import issue_token
    from povguard_platform.settings import get_settings

    settings = get_settings()
    return issue_token(Actor(user="cli", role=Role.COUNTY_BUREAU, org=settings.campaign.split("-")[0]), settings)


def _fetch(path: str, params: dict[str, str | None], out: Path, url: str, token: str | None) -> None:
    if params.get("as_of"):
        try:
            date.fromisoformat(str(params["as_of"]))
        except ValueError:
            console.print(f"[red]--as-of must be a date YYYY-MM-DD, not {params['as_of']}[/red]")
            raise typer.Exit(2) from None
    query = {k: v for k, v in params.items() if v}
    try:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {_token(token)}"}, timeout=600) as client:
            response = client.get(path, params=query)
    except httpx.HTTPError as exc:
        console.print(f"[red]the reporting service at {url} is not reachable: {exc}[/red]")
        raise typer.Exit(1) from exc
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail") or response.json().get("title")
        except ValueError:
            detail = response.text
        console.print(f"[red]{response.status_code}[/red] {detail}")
        raise typer.Exit(1)
    out.write_bytes(response.content)
    console.print(f"wrote {out} ({len(response.content):,} bytes)")


@app.command("statistics")
def statistics(out: OutArgument, org: OrgOption = None, as_of: AsOfOption = None,
               url: UrlOption = "http://127.0.0.1:8106", token: TokenOption = None) -> None:
    """附件3 防止返贫监测帮扶集中排查情况统计表: per village, township subtotals and the total."""
    _fetch("/v1/reports/statistics.xlsx", {"org": org, "as_of": as_of}, out, url, token)


@app.command("ledger")
def ledger(out: OutArgument, org: OrgOption = None, as_of: AsOfOption = None,
           include_personal: Annotated[bool, typer.Option(help="证件号码不脱敏 (audited)")] = False,
           purpose: str = "统计上报", url: UrlOption = "http://127.0.0.1:8106", token: TokenOption = None) -> None:
    """附件2-2 集中排查工作台账: one row per screened household (ID numbers masked unless --include-personal)."""
    _fetch("/v1/reports/ledger.xlsx", {"org": org, "as_of": as_of, "purpose": purpose,
                                       "include_personal": "true" if include_personal else None}, out, url, token)
