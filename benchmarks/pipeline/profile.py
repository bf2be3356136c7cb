"""Optional sampling profile of the service processes during one phase (``py-spy record``,
raw collapsed stacks), and a summary of where each process's samples are: the top frames by
self time and by inclusive time.

Enabled by ``BENCH_PIPELINE_PROFILE=<directory>`` (py-spy from ``BENCH_PYSPY`` or the PATH,
e.g. ``uv tool install py-spy``). Sampling costs CPU on a 2-core machine: a profiled run's
figures are perturbed and are marked so.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from benchmarks.pipeline.system import Process

SAMPLES_PER_SECOND = 50


@dataclass
class Profiler:
    directory: Path
    executable: str
    running: list[tuple[Process, subprocess.Popen[bytes], Path]]

    @classmethod
    def find(cls, directory: str, executable: str | None) -> Profiler | None:
        found = executable or shutil.which("py-spy")
        if not found:
            return None
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        return cls(path, found, [])

    def start(self, processes: list[Process], seconds: float) -> None:
        for process in processes:
            output = self.directory / f"{process.name.replace(' ', '-')}.txt"
            popen = subprocess.Popen(
                [
                    *(self.executable, "record", "--pid", str(process.pid)),
                    *("--duration", str(int(seconds)), "--rate", str(SAMPLES_PER_SECOND)),
                    *("--format", "raw", "--nonblocking", "--output", str(output)),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            self.running.append((process, popen, output))

    def finish(self) -> str:
        """Wait for the samplers; write and return the summary (Markdown)."""
        parts = []
        for process, popen, output in self.running:
            try:
                popen.wait(timeout=120)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait()
            parts.append(summarise(process.name, output))
        self.running.clear()
        text = "\n\n".join(parts)
        (self.directory / "summary.md").write_text(text + "\n")
        return text


# Leaves that are waiting, not working: the selector's poll (asyncio), uvloop's C loop (its
# Python caller is the leaf), a thread blocked on a condition.
IDLE_LEAVES = (
    "EpollSelector.select (",
    "_PollLikeSelector.select (",
    "Runner.run (asyncio/runners.py)",
    "Condition.wait (",
)


PROJECT_PACKAGES = ("shared", "ingest", "qualify", "dispatch", "crm")


def summarise(name: str, output: Path, top: int = 8) -> str:
    """Where a process's working samples are (idle leaves left out): self time by package,
    the top leaf frames, and the project's own frames by inclusive time."""
    leaf: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    project: Counter[str] = Counter()
    total = idle = 0
    try:
        lines = output.read_text().splitlines()
    except OSError:
        return f"### {name}\n\nno profile ({output.name} missing)"
    for line in lines:
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_parse(frame) for frame in stack.split(";") if frame]
        if not frames:
            continue
        if frames[-1][0].startswith(IDLE_LEAVES):
            idle += count
            continue
        total += count
        leaf[frames[-1][0]] += count
        packages[frames[-1][1]] += count
        for frame in {label for label, package in frames if package in PROJECT_PACKAGES}:
            project[frame] += count
    if not total:
        return f"### {name}\n\nno working samples ({idle} idle)"
    by_package = ", ".join(
        f"{package} {100 * n / total:.0f} %" for package, n in packages.most_common(6)
    )
    rows = [
        f"### {name} ({total} working samples, {idle} idle left out)",
        "",
        f"Self time by package: {by_package}.",
        "",
        "| self % | frame |",
        "|---:|---|",
    ]
    rows += [f"| {100 * n / total:.1f} | `{frame}` |" for frame, n in leaf.most_common(top)]
    rows += ["", "| inclusive % | project frame |", "|---:|---|"]
    rows += [
        f"| {100 * n / total:.1f} | `{frame}` |"
        for frame, n in project.most_common(3 * top)
        if not frame.startswith(_BOILERPLATE)
    ][: 2 * top]
    return "\n".join(rows)


_BOILERPLATE = ("<module>", "ServiceDefinition.main", "run_service_cli", "Worker._supervise")


def _parse(frame: str) -> tuple[str, str]:
    """``func (pkg/mod/file.py:123)`` → (``func (mod/file.py)``, ``pkg``): lines would split
    one function; the package says whose code it is."""
    function, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    parts = Path(path).parts
    module = "/".join(parts[-2:]) if len(parts) >= 2 else path
    return f"{function} ({module})", parts[0] if parts else path
