"""A local HTTP emulator of the Braze and Iterable endpoints the sync uses.

No machine here can reach Braze or Iterable, so the demo, the tests and docker-compose talk
to this instead; pointing the sync at a real workspace is only a change of base URL and key.
It is written from the platforms' public API documentation (sources are cited in each
module): auth headers, request validation and batch limits, response bodies including
row-level errors, rate limiting with the documented headers, and runtime fault injection.

- `braze`: POST /users/track, POST /users/export/ids.
- `iterable`: POST /api/users/bulkUpdate, POST /api/events/trackBulk, POST and GET
  /api/lists, POST /api/lists/subscribe and /unsubscribe, GET /api/users/{email},
  /api/users/byUserId/{userId} (and the query-string variants).
- `app`: routing (Braze under /braze, Iterable under /iterable), auth, faults, limits,
  and the control endpoints under /_emulator/ (state, faults, reset, requests, HTML page).
- `server`: the stdlib HTTP server, `serve_in_thread()` and `start_subprocess()`.

Usage in a test::

    from upshift.emulator import EmulatorSettings, serve_in_thread

    with serve_in_thread(EmulatorSettings(braze_track_rate_limit=5)) as emulator:
        requests.post(f"{emulator.braze_url}/users/track", ...)
"""

from upshift.emulator.app import Emulator
from upshift.emulator.server import RunningEmulator, serve_in_thread, start_subprocess
from upshift.emulator.settings import EmulatorSettings

__all__ = ["Emulator", "EmulatorSettings", "RunningEmulator", "serve_in_thread", "start_subprocess"]
