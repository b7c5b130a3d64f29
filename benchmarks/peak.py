"""python -m benchmarks.peak -m MODULE [args...]: run MODULE as __main__, then report its peak RSS.

The figure is VmHWM from /proc/self/status, the high-water mark of this process's own memory
since its exec. `ru_maxrss` of a child would not do: Linux carries the parent's high-water mark
over fork and exec, so every child of a large benchmark process would report at least its size.
"""

from __future__ import annotations

import atexit
import runpy
import sys
from pathlib import Path

MARKER = "BENCH_PEAK_RSS_KIB="


def peak_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _report() -> None:
    sys.stdout.flush()
    print(f"{MARKER}{peak_rss_kib()}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] != "-m":
        raise SystemExit("usage: python -m benchmarks.peak -m MODULE [args...]")
    module = sys.argv[2]
    sys.argv = [module, *sys.argv[3:]]
    atexit.register(_report)
    runpy.run_module(module, run_name="__main__", alter_sys=True)
