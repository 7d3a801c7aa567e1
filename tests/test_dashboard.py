"""The dashboard and the API docs in a real browser (Playwright driving Debian's chromium) against `povguard up` with
a small demo county, with every request to anything but this machine refused: the figures shown equal the APIs' (the
reporting service's and the owning services' own), a drill-down, a number that changes when a collector syncs a
visit, and every service's /docs and /redoc. Screenshots go to var/screenshots/."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from assessment_helpers import form
from intake_helpers import household_body
from playwright.async_api import Browser, Page, Route, async_playwright
from rich.console import Console
from system_helpers import SERVICES, running_up

from povguard_platform.actor import Actor, Role
from povguard_platform.auth import issue_token
from povguard_platform.settings import get_settings
from povguard_tools.demo.runner import drive_campaign
from povguard_tools.testing import eventually

HOUSEHOLDS, SEED = 60, 10
SHOTS = Path(__file__).resolve().parents[1] / "var" / "screenshots"
pytestmark = pytest.mark.timeout(240)


def token(role: Role = Role.COUNTY_BUREAU, org: str = "533123") -> str:
    return issue_token(Actor(user="浏览器测试", role=role, org=org), get_settings())


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """`povguard up` with a demo county driven through every stage; yields the services' URLs."""
    data_dir = tmp_path_factory.mktemp("dashboard")
    with running_up(data_dir / "system") as ports:
        urls = {name: f"http://127.0.0.1:{ports[name]}" for name in SERVICES}
        drive_campaign(urls, HOUSEHOLDS, SEED, data_dir, Console(quiet=True))
        yield urls


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    assert executable, "the browser tests need Debian's chromium (apt-get install chromium fonts-noto-cjk)"
    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        await launched.close()


async def offline_page(browser: Browser, outside: list[str]) -> Page:
    """A 1280×800 page that may reach only this machine: anything else is refused and noted."""
    page = await browser.new_page(viewport={"width": 1280, "height": 800}, locale="zh-CN")

    async def guard(route: Route) -> None:
        url = route.request.url
        if url.startswith(("http://127.0.0.1", "data:", "blob:")):
            await route.continue_()
        else:
            outside.append(url)
            await route.abort()

    await page.route("**/*", guard)
    return page


def get(urls: dict[str, str], service: str, path: str, **params: Any) -> Any:
    r = httpx.get(urls[service] + path, params=params, headers={"Authorization": f"Bearer {token()}"}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def post(urls: dict[str, str], service: str, path: str, body: Any, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(urls[service] + path, json=body, headers=headers, timeout=30)


async def kpi(page: Page, key: str) -> int:
    return int((await page.locator(f'[data-kpi="{key}"] .n').inner_text()).replace(",", ""))


async def test_the_dashboard_shows_the_services_figures_drills_down_and_updates_live(
        system: dict[str, str], browser: Browser) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    county = get(system, "reporting", "/v1/dashboard/summary")
    t = county["totals"]
    # the reporting service's figures equal the owning services' own APIs on the same county
    bands = {b["band"]: b for b in get(system, "assessment", "/v1/bands", org="533123") if b["level"] == "township"}
    for band in county["bands"]:
        mine = sum(b["households"] for b in get(system, "assessment", "/v1/bands", org="533123")
                   if b["level"] == "township" and b["band"] == band["band"])
        assert band["households"] == mine, (band, bands)
    stages = get(system, "review", "/v1/stats/stages")["townships"]
    assert sum(s["total"] for s in stages) == sum(county["stages"]["all"].values()) > 0
    progress = get(system, "support", "/v1/progress", level="township")["data"]
    assert sum(p["plans"] for p in progress) == county["support"]["plans"] > 0
    assert sum(p["missing_measures"] for p in progress) == county["support"]["households_missing"]
    assert sum(p["safety_net_only"] for p in progress) == county["support"]["safety_net_only"]
    problems = get(system, "assessment", "/v1/data-problems/counts", org="533123")
    assert sum(p["open"] for p in problems) == county["problems"]["open"]
    assert sum(p["cleared"] for p in problems) == county["problems"]["cleared"]
    assert t["households"] == len(get(system, "intake", "/v1/households", org="533123", limit=500)["data"])

    outside: list[str] = []
    page = await offline_page(browser, outside)
    await page.goto(f"{system['reporting']}/dashboard#token={token()}")
    await page.wait_for_selector('[data-kpi="visited"]')
    for key in ("households", "persons", "visited", "assessed", "open_cases", "decided"):
        assert await kpi(page, key) == t[key], key
    await page.wait_for_function("window.echarts !== undefined")
    await page.screenshot(path=str(SHOTS / "dashboard-进度.png"), full_page=True)
    for tab in ("研判", "帮扶", "数据质量", "审计"):
        await page.click(f'#tabs a[data-tab="{tab}"]')
        await page.wait_for_selector("main section")
        await page.screenshot(path=str(SHOTS / f"dashboard-{tab}.png"), full_page=True)
    assert await page.locator("#bands").count() == 0  # the 审计 page is shown now
    await page.click('#tabs a[data-tab="帮扶"]')
    assert await kpi(page, "plans") == county["support"]["plans"]
    assert await page.locator("#measure-chart canvas").count() == 1

    # a household registered now in the first village, not visited yet
    first = county["children"][0]
    town = get(system, "reporting", "/v1/dashboard/summary", org=first["code"])
    village = town["children"][0]
    body = household_body(place={"county_code": "533123", "county": "盈江县", "township_code": first["code"],
                                 "township": first["name"], "village_code": village["code"],
                                 "village": village["name"], "group_code": village["code"] + "001", "group": "一组"})
    clerk = {"Authorization": f"Bearer {token(Role.VILLAGE_CLERK, village['code'])}"}
    r = post(system, "intake", "/v1/households", body, clerk)
    assert r.status_code == 201, r.text
    waiting = r.json()
    await eventually(lambda: get(system, "reporting", "/v1/dashboard/summary", org=village["code"])["totals"][
        "households"] == village["households"] + 1, within=30, interval=0.3)

    # drill down: county → the township → the village (its households listed) → (later) a household's history
    await page.click('#tabs a[data-tab="进度"]')
    await page.click(f'#children a.drill[data-org="{first["code"]}"]')
    await page.wait_for_function(f"document.querySelector('#crumbs strong').textContent === '{first['name']}'")
    assert await kpi(page, "households") == first["households"] + 1
    await page.click(f'#children a.drill[data-org="{village["code"]}"]')
    await page.wait_for_selector(f'#household-table a.drill[data-household="{waiting["household_id"]}"]')
    assert await kpi(page, "households") == village["households"] + 1
    await page.screenshot(path=str(SHOTS / "dashboard-村.png"), full_page=True)

    # live: a collector's tablet syncs the visit; the number changes without a reload
    before = await kpi(page, "visited")
    r = post(system, "intake", "/v1/batches/visits",
             {"items": [{"household_id": waiting["household_id"],
                         "form": form(collector="浏览器测试").model_dump(mode="json")}]},
             {"Authorization": f"Bearer {token(Role.COLLECTOR, village['code'])}"})
    assert r.status_code == 200 and not r.json()["failed"], r.text

    async def updated() -> bool:
        return await kpi(page, "visited") == before + 1
    await eventually(updated, within=30, interval=0.3)
    await page.click(f'#household-table a.drill[data-household="{waiting["household_id"]}"]')
    await page.wait_for_selector("#history")
    assert "VisitRecorded" in await page.locator("#history").inner_text()
    await page.screenshot(path=str(SHOTS / "dashboard-农户经历.png"), full_page=True)

    # 运行: every service ready, with its lags and dead letters
    await page.click('#tabs a[data-tab="运行"]')
    await page.wait_for_selector("#services")
    assert await page.locator("#services .ok").count() == len(SERVICES)
    await page.screenshot(path=str(SHOTS / "dashboard-运行.png"), full_page=True)
    assert outside == []  # nothing was loaded from outside this machine


async def test_every_services_api_docs_render_offline(system: dict[str, str], browser: Browser) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    outside: list[str] = []
    page = await offline_page(browser, outside)
    for name, url in system.items():
        await page.goto(f"{url}/docs")
        await page.wait_for_selector(".swagger-ui .info .title", timeout=15_000)
        assert await page.locator(".swagger-ui .opblock").count() > 3, name
        await page.goto(f"{url}/redoc")
        await page.wait_for_selector("[role=search], .api-content h1", timeout=15_000)
        assert await page.locator(".api-content h1").count() >= 1, name
    await page.screenshot(path=str(SHOTS / "redoc-reporting.png"))
    assert outside == []
