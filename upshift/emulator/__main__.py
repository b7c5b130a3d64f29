"""Run the emulator: `python -m upshift.emulator --host 127.0.0.1 --port 8090`.

API keys come from EMULATOR_BRAZE_API_KEY / EMULATOR_ITERABLE_API_KEY (or the flags, which
are visible in the process list, so prefer the environment); every other limit is an
EMULATOR_* variable named after its field in upshift.emulator.settings.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from upshift.emulator.server import make_server
from upshift.emulator.settings import EmulatorSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m upshift.emulator", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (0.0.0.0 in a container)")
    parser.add_argument("--port", type=int, default=8090, help="port to bind; 0 picks a free one")
    parser.add_argument("--braze-api-key", help="accepted Braze REST API key (default: env or a dev key)")
    parser.add_argument("--iterable-api-key", help="accepted Iterable API key (default: env or a dev key)")
    parser.add_argument("--faults", help='faults armed at start-up, e.g. \'{"braze": {"status_500": 1}}\'')
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(asctime)s %(message)s")
    try:
        settings = EmulatorSettings.from_env(
            braze_api_key=args.braze_api_key, iterable_api_key=args.iterable_api_key, faults=args.faults
        )
        server = make_server(settings, args.host, args.port)
    except (ValueError, OSError) as error:
        print(f"upshift emulator: {error}", file=sys.stderr)
        return 2
    # As PID 1 in a container SIGTERM has no default action; make `docker stop` end it at once.
    signal.signal(signal.SIGTERM, _interrupt)
    host, port = server.server_address[:2]
    print(f"upshift emulator listening on http://{host}:{port} (Braze at /braze, Iterable at /iterable)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
