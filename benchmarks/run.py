"""``make bench``: run every ``benchmarks/bench_*.py`` and write docs/benchmarks.md whole.

Each benchmark module defines ``async def run() -> str`` returning a Markdown section (a ``##``
heading, what was measured, a table). Figures that are compared are measured in the same run and
reported as ratios: these machines are noisy.

- ``python -m benchmarks.run`` (``make bench``): every benchmark, and docs/benchmarks.md is
  rewritten from this run only: no section survives from an earlier run.
- ``python -m benchmarks.run bench_x [bench_y…]``: a partial run for development. It never
  touches docs/benchmarks.md: it writes var/benchmarks/partial.md (or ``--output PATH``), headed
  as a partial run, and prints the sections.

Every section is stamped with its own start and end time, the git commit it measured (``+dirty``
when the work tree had changes), the load average at its start and end, and PostgreSQL's
durability settings. The run turns production durability on (fsync, synchronous_commit,
full_page_writes) when the server has it off, and resets it afterwards
(``scripts/pg_durability.sh``).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.environment import (
    ROOT,
    durability,
    durability_text,
    git_commit,
    load_average,
    machine,
    production_durability,
    utc_now_text,
)

OUTPUT = ROOT / "docs/benchmarks.md"
PARTIAL_OUTPUT = ROOT / "var/benchmarks/partial.md"
FAILED_OUTPUT = ROOT / "var/benchmarks/failed-run.md"


def discover(selected: list[str]) -> list[str]:
    names = sorted(path.stem for path in Path(__file__).parent.glob("bench_*.py"))
    unknown = sorted(set(selected) - set(names))
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(unknown)} (have: {', '.join(names)})")
    return [name for name in names if not selected or name in selected]


@dataclass
class Section:
    name: str
    body: str
    stamp: str


def run_one(name: str) -> Section:
    module = importlib.import_module(f"benchmarks.{name}")
    started_at, commit, load_before = utc_now_text(), git_commit(), load_average()
    settings = asyncio.run(durability())
    started = time.perf_counter()
    body = asyncio.run(module.run()).rstrip()
    seconds = time.perf_counter() - started
    stamp = (
        f"<sub>`{name}`: {started_at} → {utc_now_text()} ({seconds:,.0f} s), commit {commit}; "
        f"load average (1/5/15 min) {load_before} at start, {load_average()} at end; "
        f"{durability_text(settings)}.</sub>"
    )
    return Section(name, body, stamp)


def render(sections: list[Section], *, partial: bool, header_lines: list[str]) -> str:
    title = "# Benchmarks (partial run, not docs/benchmarks.md)" if partial else "# Benchmarks"
    intro = (
        "Written whole by `make bench` (`python -m benchmarks.run`): every section below comes "
        "from the same run and carries its own stamp (time, commit, load, durability). "
        "Compared figures are measured in the same run and read as ratios."
    )
    if partial:
        intro = (
            "A partial run (`python -m benchmarks.run " + " ".join(s.name for s in sections) + "`)"
            " for development: only these sections; docs/benchmarks.md is written by "
            "`make bench` alone."
        )
    parts = [title, intro, "\n".join(header_lines)]
    for section in sections:
        heading, _, rest = section.body.partition("\n")
        parts.append(f"{heading}\n\n{section.stamp}\n{rest}".rstrip())
    return "\n\n".join(parts) + "\n"


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run")
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument("--output", type=Path, help="where a partial run writes its sections")
    args = parser.parse_args(argv)
    names = discover(args.names)
    partial = bool(args.names)
    output: Path = args.output or (PARTIAL_OUTPUT if partial else OUTPUT)
    if partial and output.resolve() == OUTPUT.resolve():
        raise SystemExit("a partial run never writes docs/benchmarks.md: run `make bench`")

    started_at, load_before, started = utc_now_text(), load_average(), time.perf_counter()
    before = asyncio.run(durability())
    with production_durability(before) as change:
        if change.error:
            sys.stderr.write(f"could not turn production durability on: {change.error}\n")
        measured = asyncio.run(durability())
        sys.stderr.write(f"{durability_text(measured)}\n")
        sections: list[Section] = []
        for name in names:
            sys.stderr.write(f"running {name}…\n")
            try:
                sections.append(run_one(name))
            except BaseException:
                # Keep what was measured for the post-mortem, never in docs/benchmarks.md.
                FAILED_OUTPUT.parent.mkdir(parents=True, exist_ok=True)
                FAILED_OUTPUT.write_text(
                    render(sections, partial=True, header_lines=[f"- Failed in {name}."])
                )
                sys.stderr.write(f"{name} failed; sections so far in {FAILED_OUTPUT}\n")
                raise
    durability_note = durability_text(measured)
    if change.changed:
        durability_note += (
            " — turned on for this run by `scripts/pg_durability.sh on` (the server had "
            + ", ".join(f"{key}={value}" for key, value in before.items())
            + ") and reset afterwards"
        )
    header_lines = [
        f"- Run: {started_at} → {utc_now_text()} "
        f"({(time.perf_counter() - started) / 60:,.1f} min), commit {git_commit()}.",
        f"- Machine: {machine()}.",
        f"- Load average (1/5/15 min): {load_before} at start, {load_average()} at end "
        "(above the core count, other work shared the machine: read absolute figures with "
        "care, ratios measured side by side hold better).",
        f"- Database: {durability_note}.",
    ]
    text = render(sections, partial=partial, header_lines=header_lines)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    if partial:
        sys.stdout.write(text)
    shown = output.relative_to(ROOT) if output.is_relative_to(ROOT) else output
    sys.stderr.write(f"wrote {shown}\n")


if __name__ == "__main__":
    main(sys.argv[1:])
