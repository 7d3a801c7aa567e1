"""Each service installs and starts from its own package's declared dependencies: contracts, platform (and rules, for
the services that use them) and what its `pyproject.toml` names, without the tooling or another service."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVICES = {"intake": [], "assessment": ["rules"], "review": [], "support": ["rules"], "audit": ["rules"],
            "reporting": ["rules"]}


def _uv() -> str:
    found = shutil.which("uv") or str(ROOT / ".uv" / "bin" / "uv")
    if not Path(found).exists():
        pytest.skip("uv is installed by `make install`")
    return found


@pytest.mark.timeout(300)
@pytest.mark.parametrize("service", sorted(SERVICES))
def test_a_service_installs_and_builds_its_app_alone(service: str, tmp_path: Path) -> None:
    uv, venv = _uv(), tmp_path / "venv"
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True, timeout=120)
    libs = [ROOT / "libs" / name for name in ("contracts", "platform", *SERVICES[service])]
    subprocess.run([uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"),
                    *map(str, libs), str(ROOT / "services" / service)], check=True, timeout=240)
    probe = f"""
import importlib.util
from povguard_platform.serve import service_definitions
from povguard_platform.settings import get_settings
from povguard_platform.web import create_app
others = [m for m in ("povguard_tools", "typer" if "{service}" not in ("intake", "audit") else "",
                      *(f"povguard_{{s}}" for s in {sorted(SERVICES)!r} if s != "{service}")) if m]
assert not [m for m in others if importlib.util.find_spec(m)], [m for m in others if importlib.util.find_spec(m)]
app = create_app(service_definitions()["{service}"], get_settings())
paths = app.openapi()["paths"]
assert "/readyz" in paths and any(p.startswith("/v1/") for p in paths), sorted(paths)
print("ok", len(paths))
"""
    result = subprocess.run([str(venv / "bin" / "python"), "-c", probe], capture_output=True, text=True, timeout=120,
                            cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.startswith("ok"), result.stdout + result.stderr
