"""Wall time and peak memory of one step, in this process or in a child process of its own.

Peak RSS is per process: each measured step runs in a child of its own through
`benchmarks.peak`, which reports that process's own high-water mark, so the generator, the
gates, the sync and the report each get their own figure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.peak import MARKER

REPO_ROOT = Path(__file__).resolve().parents[1]


class StepFailed(RuntimeError):
    """A measured child process exited non-zero; the message holds the end of its output."""


@dataclass
class Timer:
    seconds: float = 0.0


@contextmanager
def timed() -> Iterator[Timer]:
    """`with timed() as timer: ...` then `timer.seconds`."""
    timer = Timer()
    started = time.perf_counter()
    try:
        yield timer
    finally:
        timer.seconds = time.perf_counter() - started


@dataclass
class ChildRun:
    """What a child process printed last (a JSON object), how long it took and its peak RSS."""

    seconds: float
    peak_rss_mib: float
    result: dict = field(default_factory=dict)


def run_child(module: str, arguments: Sequence[str], env: Mapping[str, str] | None = None) -> ChildRun:
    """Run `python -m <module> <arguments>`; its last JSON output line becomes `result`."""
    started = time.perf_counter()
    python_path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.peak", "-m", module, *arguments],
        env={**os.environ, **(env or {}), "PYTHONPATH": python_path},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = process.stdout.read() if process.stdout else ""
    process.wait()
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise StepFailed(f"`python -m {module}` exited {process.returncode}:\n{output[-3000:]}")
    peak_kib, result = 0, {}
    for line in output.splitlines():
        if line.startswith(MARKER):
            peak_kib = int(line.removeprefix(MARKER))
        elif line.startswith("{"):
            try:
                result = json.loads(line)
            except json.JSONDecodeError:
                continue
    return ChildRun(seconds=seconds, peak_rss_mib=peak_kib / 1024, result=result)
