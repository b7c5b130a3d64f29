"""The HTTP server around the emulator, and ways to run it for tests and the demo.

Standard library only (`http.server.ThreadingHTTPServer`): the emulator must start anywhere
the package imports, including a bare container. HTTP/1.1 keep-alive is on, as with the real
APIs, so a client's connection pool behaves as it would in production.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.request import urlopen

from upshift.emulator.app import Disconnect, Emulator, Request
from upshift.emulator.requestlog import redact_path
from upshift.emulator.settings import EmulatorSettings

logger = logging.getLogger("upshift.emulator")


class EmulatorHandler(BaseHTTPRequestHandler):
    """Hands each request to the Emulator; never logs headers, bodies or raw paths."""

    protocol_version = "HTTP/1.1"
    # TCP_NODELAY, as production HTTP servers set it: the reply's headers and body are two
    # writes, and with Nagle on the body waits for the client's delayed ACK (~40 ms a request).
    disable_nagle_algorithm = True
    server: EmulatorHTTPServer

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        emulator = self.server.emulator
        length = int(self.headers.get("Content-Length") or 0)
        too_large = length > emulator.settings.max_body_bytes
        body = None if too_large else self.rfile.read(length) if length else b""
        request = Request(self.command, self.path, self.headers, body, length)
        try:
            reply = emulator.handle(request)
        except Disconnect:
            self.close_connection = True
            return
        payload = reply.encoded()
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if too_large:
            # The unread body is still on the socket; the connection cannot be reused.
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Replace the default stderr line (which carries the raw path) with a redacted one."""
        status = args[1] if format.startswith('"%s" %s') and len(args) > 1 else ""
        logger.info("%s %s %s", getattr(self, "command", ""), redact_path(getattr(self, "path", "")), status)


class EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], emulator: Emulator) -> None:
        self.emulator = emulator
        super().__init__(address, EmulatorHandler)


@dataclass
class RunningEmulator:
    """A started emulator: its base URL, the in-process object (thread mode), and stop()."""

    url: str
    settings: EmulatorSettings = field(repr=False)
    emulator: Emulator | None = None
    _stop: Any = field(default=None, repr=False)
    pid: int | None = None  # the child process (subprocess mode), for a benchmark's CPU figures

    @property
    def braze_url(self) -> str:
        """Base URL to configure as the Braze REST endpoint."""
        return f"{self.url}/braze"

    @property
    def iterable_url(self) -> str:
        """Base URL to configure as the Iterable API base."""
        return f"{self.url}/iterable"

    def stop(self) -> None:
        if self._stop is not None:
            self._stop()
            self._stop = None

    def __enter__(self) -> RunningEmulator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def make_server(settings: EmulatorSettings, host: str = "127.0.0.1", port: int = 0) -> EmulatorHTTPServer:
    return EmulatorHTTPServer((host, port), Emulator(settings))


def serve_in_thread(
    settings: EmulatorSettings | None = None, host: str = "127.0.0.1", port: int = 0
) -> RunningEmulator:
    """Start the emulator on a daemon thread (port 0: a free port); stop() shuts it down."""
    settings = settings or EmulatorSettings()
    server = make_server(settings, host, port)
    thread = threading.Thread(target=server.serve_forever, name="upshift-emulator", daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    bound_host, bound_port = server.server_address[:2]
    return RunningEmulator(f"http://{bound_host}:{bound_port}", settings, server.emulator, stop)


def start_subprocess(
    settings: EmulatorSettings | None = None, host: str = "127.0.0.1", port: int = 0, timeout: float = 15.0
) -> RunningEmulator:
    """Start `python -m upshift.emulator` as a child process and wait until it answers.

    Settings, API keys included, travel in the child's environment, never on its command line.
    """
    settings = settings or EmulatorSettings()
    env = {**os.environ, **settings.to_env(), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "upshift.emulator", "--host", host, "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    url = _read_url(process, timeout)
    _wait_healthy(url, timeout)

    def stop() -> None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()

    return RunningEmulator(url, settings, None, stop, pid=process.pid)


def _read_url(process: subprocess.Popen[str], timeout: float) -> str:
    """The URL the child prints on its first line (it may have picked the port itself)."""
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(process.stdout.readline() if process.stdout else ""))
    reader.start()
    reader.join(timeout)
    line = result[0].strip() if result else ""
    if not line.startswith("upshift emulator listening on "):
        process.kill()
        raise RuntimeError(f"the emulator did not start within {timeout}s (exit code {process.poll()})")
    return line.removeprefix("upshift emulator listening on ").split()[0]


def _wait_healthy(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urlopen(f"{url}/_emulator/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.05)
