"""One phone rule (issue 11, item 3): every place that reads a phone goes through
``shared.normalize.phone``, so ``phonenumbers`` is imported there and nowhere else in the
services or ``shared`` (a second reading of numbers is how ``0692 45 67 89`` came to be accepted
by e-mail and refused by JSON and by crm's look-ups)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
THE_RULE = Path("shared/normalize/phone.py")


def _imports_phonenumbers(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import) and any(
            alias.name.split(".")[0] == "phonenumbers" for alias in node.names
        ):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "phonenumbers":
            return True
    return False


def test_phonenumbers_is_read_in_the_shared_phone_module_only() -> None:
    sources = [*ROOT.joinpath("shared").rglob("*.py"), *ROOT.joinpath("services").rglob("*.py")]
    readers = sorted(str(path.relative_to(ROOT)) for path in sources if _imports_phonenumbers(path))
    assert readers == [str(THE_RULE)]
