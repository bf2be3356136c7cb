"""A service never imports another service; shared imports no service."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("ingest", "qualify", "dispatch", "crm")


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("owner", [*SERVICES, "shared"])
def test_no_cross_service_imports(owner: str) -> None:
    folder = ROOT / "shared" if owner == "shared" else ROOT / "services" / owner
    files = list(folder.rglob("*.py"))
    assert files
    forbidden = set(SERVICES) - {owner}
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_roots(path) & forbidden) for path in files
    }
    assert {path: names for path, names in offenders.items() if names} == {}


# SQL lives in repositories (and tables in models): everything else in a service may name the
# session type and catch database errors, nothing more.
SQL_HOMES = frozenset({"repository.py", "models.py"})
ALLOWED_SQLALCHEMY = frozenset({"sqlalchemy.ext.asyncio", "sqlalchemy.exc"})


def sql_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        else:
            continue
        found.update(
            name
            for name in names
            if name.split(".")[0] == "sqlalchemy" and name not in ALLOWED_SQLALCHEMY
        )
    return found


def is_sql_home(path: Path) -> bool:
    return path.name in SQL_HOMES or path.parent.name in ("repositories", "models")


@pytest.mark.parametrize("owner", SERVICES)
def test_sql_only_in_repositories_and_models(owner: str) -> None:
    package = ROOT / "services" / owner / owner
    offenders = {
        str(path.relative_to(ROOT)): sorted(sql_imports(path))
        for path in package.rglob("*.py")
        if not is_sql_home(path)
    }
    assert {path: names for path, names in offenders.items() if names} == {}
