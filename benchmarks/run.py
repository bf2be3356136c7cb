"""``make bench``: run every ``benchmarks/bench_*.py`` and write docs/benchmarks.md.

Each benchmark module defines ``async def run() -> str`` returning a Markdown section (a ``##``
heading, what was measured, a table). Figures that are compared are measured in the same run and
reported as ratios: these machines are noisy. Run one: ``python -m benchmarks.run bench_x``.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

OUTPUT = Path("docs/benchmarks.md")
MARKER = "<!-- bench:"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{cpu}, {os.cpu_count()} cores, {memory_gib:.0f} GiB, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )


def discover(selected: list[str]) -> list[str]:
    names = sorted(path.stem for path in Path(__file__).parent.glob("bench_*.py"))
    return [name for name in names if not selected or name in selected]


def previous_sections() -> dict[str, str]:
    """Sections of the current file by benchmark name (a partial run keeps the others)."""
    if not OUTPUT.exists():
        return {}
    sections: dict[str, str] = {}
    for chunk in OUTPUT.read_text().split(MARKER)[1:]:
        name, _, body = chunk.partition(" -->\n")
        sections[name.strip()] = body
    return sections


def main(selected: list[str]) -> None:
    sections = previous_sections()
    for name in discover(selected):
        module = importlib.import_module(f"benchmarks.{name}")
        sys.stderr.write(f"running {name}…\n")
        sections[name] = asyncio.run(module.run()).rstrip() + "\n\n"
    header = (
        "# Benchmarks\n\n"
        f"Written by `make bench` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.\n\n"
        f"Machine: {machine()}.\n\n"
        "Compared figures are measured in the same run and read as ratios.\n"
    )
    body = "".join(f"{MARKER}{name} -->\n{sections[name]}" for name in sorted(sections))
    OUTPUT.write_text(header + "\n" + body)
    sys.stderr.write(f"wrote {OUTPUT}\n")


if __name__ == "__main__":
    main(sys.argv[1:])
