#!/usr/bin/env python3
"""The two quickstart commands: `python3 run.py demo` and `python3 run.py test`.

Standard library only, so it runs on a fresh machine with nothing but Python 3.11+. It builds
`.venv` from requirements.lock with a pinned uv, re-syncs only when the lock (or pyproject.toml)
changed, then hands over to the environment:

    demo [options]  ->  python -m upshift.cli demo [options]
    test [args]     ->  python -m pytest [args]

The tests also render the weekly growth review in headless Chromium: `test` installs Debian's
chromium package when it is missing and this is a root shell with apt-get (otherwise it says how
to install it, and the report test fails until it is there).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent
VENV = REPO / ".venv"
LOCK = REPO / "requirements.lock"
PYPROJECT = REPO / "pyproject.toml"
# The uv that compiled requirements.lock; it lives in its own small venv inside .venv so that
# syncing the project environment to the lock never uninstalls it.
UV_VERSION = "0.13.9"
TOOLS = VENV / ".tools"
STAMP = VENV / ".upshift-lock.sha256"
# Bytecode written once at install: with PYTHONDONTWRITEBYTECODE set (as in many container
# images, this machine's too) Python never writes .pyc files, so every process - each Airflow
# service, task, dbt and gate - compiled Airflow, dbt, Cosmos and Great Expectations from source
# again (about half the CPU of importing them). Part of the stamp, so an older .venv re-syncs once.
SYNC_OPTIONS = ("--compile-bytecode",)
PYTHON_VERSION = "3.11"
COMMANDS = {
    "demo": ["-m", "upshift.cli", "demo"],
    "test": ["-m", "pytest"],
}


def _bin(venv: Path, name: str) -> Path:
    scripts = "Scripts" if os.name == "nt" else "bin"
    return venv / scripts / (f"{name}.exe" if os.name == "nt" else name)


def _run(*command: str | Path) -> None:
    print("+", " ".join(str(part) for part in command), flush=True)
    subprocess.run([str(part) for part in command], check=True, cwd=REPO)


def _wanted_stamp() -> str:
    digest = hashlib.sha256(f"uv {UV_VERSION}\n{' '.join(SYNC_OPTIONS)}\n".encode())
    for path in (LOCK, PYPROJECT):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _uv() -> Path:
    uv = _bin(TOOLS, "uv")
    if not uv.exists():
        _run(sys.executable, "-m", "venv", TOOLS)
        _run(
            _bin(TOOLS, "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", f"uv=={UV_VERSION}"
        )
    return uv


@contextmanager
def _exclusive(lock_file: Path) -> Iterator[None]:
    """One set-up at a time: two runs started together must not sync the same venv at once."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("w") as handle:
        if os.name == "posix":
            import fcntl

            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def ensure_environment() -> Path:
    """Create or refresh .venv so it holds exactly requirements.lock plus this project."""
    python = _bin(VENV, "python")
    if _is_current(python):
        return python
    with _exclusive(REPO / ".upshift" / "setup.lock"):
        if not _is_current(python):
            _build_environment(python)
    return python


def _is_current(python: Path) -> bool:
    return python.exists() and STAMP.exists() and STAMP.read_text().strip() == _wanted_stamp()


def _build_environment(python: Path) -> None:
    if VENV.exists() and not python.exists():
        shutil.rmtree(VENV)
    VENV.mkdir(exist_ok=True)
    uv = _uv()
    if not (VENV / "pyvenv.cfg").exists():
        _run(uv, "venv", "--quiet", "--allow-existing", "--python", PYTHON_VERSION, VENV)
    _run(uv, "pip", "sync", "--quiet", *SYNC_OPTIONS, "--python", python, LOCK)
    _run(uv, "pip", "install", "--quiet", "--python", python, "--no-deps", "--editable", REPO)
    STAMP.write_text(_wanted_stamp() + "\n")


def ensure_chromium() -> None:
    """Headless Chromium for the report test: Debian's package, installed when we are allowed to."""
    if shutil.which("chromium") or shutil.which("chromium-browser"):
        return
    apt = shutil.which("apt-get")
    if apt and hasattr(os, "geteuid") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        print("+ apt-get update && apt-get install -y chromium  (for the growth review render test)", flush=True)
        subprocess.run([apt, "update", "-qq"], check=False, env=env)
        subprocess.run([apt, "install", "-y", "-qq", "--no-install-recommends", "chromium"], check=False, env=env)
        if shutil.which("chromium"):
            return
    print(
        "Chromium is missing: the growth review render test needs it (Debian/Ubuntu: `sudo apt-get install chromium`).",
        file=sys.stderr,
    )


def main(argv: list[str]) -> int:
    if sys.version_info < (3, 11):  # noqa: UP036 - this is what tells users on older Pythons
        print(f"upshift needs Python 3.11 or newer; this is {sys.version.split()[0]}.", file=sys.stderr)
        return 2
    if not argv or argv[0] not in COMMANDS:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    command, extra = argv[0], argv[1:]
    try:
        python = ensure_environment()
    except subprocess.CalledProcessError as error:
        print(f"Setting up .venv failed ({error}); fix the cause above and rerun.", file=sys.stderr)
        return 1
    os.chdir(REPO)
    if command == "test":
        ensure_chromium()
    arguments = [str(python), *COMMANDS[command], *extra]
    if os.name != "nt":
        os.execv(python, arguments)  # replaces this process: exit code and signals are pytest's own
    return subprocess.call(arguments)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
