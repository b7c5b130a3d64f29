"""Request dispatch: routing, auth, faults, rate limits, then the platform models.

One process serves both platforms. Braze lives under `/braze` (so a Braze REST endpoint of
`http://host:8090/braze` replaces `https://rest.iad-01.braze.com`), Iterable under
`/iterable` (replacing `https://api.iterable.com`). The prefixes are optional: Braze paths
(`/users/...`) and Iterable paths (`/api/...`) do not overlap, so a bare base URL works too.
Inspection and control live under `/_emulator/` and need no key.

Order of checks for an API request, as a client observes it: unknown path 404, wrong key 401
(Braze: `Authorization: Bearer <key>`, https://www.braze.com/docs/api/basics/; Iterable:
`Api-Key` or `Api_Key` header,
https://support.iterable.com/hc/en-us/articles/41044692130196-Getting-Started-with-Iterable-s-API),
injected delay, injected disconnect or 429, the rate limit, injected 5xx, body size (413),
JSON, the model, and last an injected `process_then_500`.
"""

from __future__ import annotations

import hmac
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote

from upshift.emulator.braze import BrazeWorkspace
from upshift.emulator.faults import Fault, Faults, FaultSpecError
from upshift.emulator.iterable import IterableProject
from upshift.emulator.iterable import error as iterable_error
from upshift.emulator.page import public_limits, render_page
from upshift.emulator.ratelimit import FixedWindowLimiter, RateDecision
from upshift.emulator.replies import Reply
from upshift.emulator.requestlog import RequestLog
from upshift.emulator.settings import EmulatorSettings

CONTROL_PREFIX = "/_emulator"


@dataclass(frozen=True)
class Request:
    """One HTTP request as the server hands it over."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes | None
    content_length: int = 0


@dataclass(frozen=True)
class Call:
    """What a route handler gets: the parsed body, query, path parameters, rejection test."""

    payload: Any
    query: dict[str, list[str]]
    path_params: tuple[str, ...]
    rejects: Callable[[str | None], bool]

    def query_value(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass(frozen=True)
class Route:
    limiter: str
    handler: Callable[[Call], Reply]
    needs_body: bool = True


class Disconnect(Exception):
    """The request must end without a response (injected `disconnect` fault)."""


class Emulator:
    """Both platforms, their faults and limits, and the request log; thread-safe."""

    def __init__(self, settings: EmulatorSettings) -> None:
        self.settings = settings
        self.braze = BrazeWorkspace(settings)
        self.iterable = IterableProject(settings)
        self.faults = Faults()
        self.log = RequestLog()
        self.limiters = {
            "braze_track": FixedWindowLimiter(
                settings.braze_track_rate_limit, settings.braze_track_rate_window_seconds
            ),
            "braze_export": FixedWindowLimiter(
                settings.braze_export_rate_limit, settings.braze_export_rate_window_seconds
            ),
            "iterable_bulk_update": FixedWindowLimiter(settings.iterable_bulk_update_rate_per_second, 1.0),
            "iterable_track_bulk": FixedWindowLimiter(settings.iterable_track_bulk_rate_per_second, 1.0),
            "iterable_lists": FixedWindowLimiter(settings.iterable_lists_rate_per_second, 1.0),
            "iterable_read": FixedWindowLimiter(settings.iterable_read_rate_per_second, 1.0),
            "iterable_update_email": FixedWindowLimiter(settings.iterable_update_email_rate_per_second, 1.0),
        }
        self.faults.arm(settings.startup_faults())
        braze, iterable = self.braze, self.iterable
        self._routes: dict[tuple[str, str, str], Route] = {
            ("braze", "POST", "users/track"): Route(
                "braze_track", lambda call: braze.track(call.payload, call.rejects)
            ),
            ("braze", "POST", "users/export/ids"): Route("braze_export", lambda call: braze.export_ids(call.payload)),
            ("iterable", "POST", "users/bulkUpdate"): Route(
                "iterable_bulk_update", lambda call: iterable.bulk_update(call.payload, call.rejects)
            ),
            ("iterable", "POST", "users/updateEmail"): Route(
                "iterable_update_email", lambda call: iterable.update_email(call.payload)
            ),
            ("iterable", "GET", "users/getFields"): Route(
                "iterable_read", lambda call: iterable.fields(), needs_body=False
            ),
            ("iterable", "POST", "events/trackBulk"): Route(
                "iterable_track_bulk", lambda call: iterable.track_bulk(call.payload, call.rejects)
            ),
            ("iterable", "POST", "lists"): Route("iterable_lists", lambda call: iterable.create_list(call.payload)),
            ("iterable", "GET", "lists"): Route("iterable_read", lambda call: iterable.lists(), needs_body=False),
            ("iterable", "POST", "lists/subscribe"): Route(
                "iterable_lists", lambda call: iterable.subscribe(call.payload, call.rejects)
            ),
            ("iterable", "POST", "lists/unsubscribe"): Route(
                "iterable_lists", lambda call: iterable.unsubscribe(call.payload, call.rejects)
            ),
            ("iterable", "GET", "users/getByEmail"): Route(
                "iterable_read", lambda call: iterable.user(email=call.query_value("email")), needs_body=False
            ),
            ("iterable", "GET", "users/byUserId"): Route(
                "iterable_read", lambda call: iterable.user(user_id=call.query_value("userId")), needs_body=False
            ),
            ("iterable", "GET", "users/byUserId/{}"): Route(
                "iterable_read", lambda call: iterable.user(user_id=call.path_params[0]), needs_body=False
            ),
            ("iterable", "GET", "users/{}"): Route(
                "iterable_read", lambda call: iterable.user(email=call.path_params[0]), needs_body=False
            ),
        }

    def reset(self) -> None:
        """Forget all state, requests, faults and rate-limit windows."""
        self.braze.reset()
        self.iterable.reset()
        self.log.clear()
        self.faults.clear()
        for limiter in self.limiters.values():
            limiter.reset()

    def state(self) -> dict[str, Any]:
        return {
            "braze": self.braze.snapshot(),
            "iterable": self.iterable.snapshot(),
            "faults": self.faults.describe(),
            "limits": public_limits(self.settings),
            "requests": self.log.entries(),
        }

    # ---------------------------------------------------------------- dispatch

    def handle(self, request: Request) -> Reply:
        """Answer one request; raises Disconnect when the connection must just close."""
        path, _, query_string = request.path.partition("?")
        if path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
            return self._control(request, path[len(CONTROL_PREFIX) :] or "/")
        started = time.time()
        platform, api_path = _split_platform(path)
        route, path_params = self._route(platform, request.method, api_path)
        if route is None:
            reply = _not_found(platform)
            self.log.record(platform, request.method, path, reply.status, started)
            return reply
        in_flight = self.log.arrive(platform)
        fault: Fault | None = None
        try:
            if not self._authorized(platform, request.headers):
                reply = _unauthorized(platform, api_path, request.headers)
            else:
                fault = self.faults.next_fault(platform)
                if fault.delay_seconds:
                    time.sleep(fault.delay_seconds)
                if fault.disconnect:
                    raise Disconnect
                reply = self._guarded(route, platform, api_path, fault, request, parse_qs(query_string), path_params)
        except Disconnect:
            self.log.record(platform, request.method, path, None, started, "disconnect", in_flight=in_flight)
            raise
        finally:
            self.log.depart(platform)
        self.log.record(
            platform,
            request.method,
            path,
            reply.status,
            started,
            fault.name if fault else None,
            _counts(request),
            in_flight=in_flight,
        )
        return reply

    def _guarded(
        self,
        route: Route,
        platform: str,
        api_path: str,
        fault: Fault,
        request: Request,
        query: dict[str, list[str]],
        path_params: tuple[str, ...],
    ) -> Reply:
        limiter = self.limiters[route.limiter]
        if fault.rate_limited:
            reset = math.ceil(time.time() + fault.rate_limit_reset_seconds)
            return self._rate_limited(platform, api_path, RateDecision(False, limiter.limit, 0, reset))
        decision = limiter.hit()
        headers = decision.headers() if platform == "braze" else {}
        if not decision.allowed:
            return self._rate_limited(platform, api_path, decision)
        if fault.status:
            return _server_error(platform, fault.status).with_headers(headers)
        payload: Any = None
        if route.needs_body:
            if request.content_length > self.settings.max_body_bytes or request.body is None:
                return _too_large(platform, self.settings.max_body_bytes).with_headers(headers)
            try:
                payload = json.loads(request.body or b"null")
            except (json.JSONDecodeError, UnicodeDecodeError):
                return _bad_json(platform).with_headers(headers)
        rejects = self._rejects_braze if platform == "braze" else self._rejects_iterable
        reply = route.handler(Call(payload, query, path_params, rejects))
        if fault.process_then_status:
            return _server_error(platform, fault.process_then_status).with_headers(headers)
        return reply.with_headers(headers)

    def _rejects_braze(self, identifier: str | None) -> bool:
        return self.faults.is_rejected("braze", identifier)

    def _rejects_iterable(self, identifier: str | None) -> bool:
        return self.faults.is_rejected("iterable", identifier)

    def _rate_limited(self, platform: str, api_path: str, decision: RateDecision) -> Reply:
        if platform == "braze":
            # Braze documents X-RateLimit-* on every response and no Retry-After.
            return Reply(429, {"message": "Rate Limited"}, decision.headers())
        headers = {}
        if self.settings.iterable_retry_after_header:
            headers["Retry-After"] = str(max(1, math.ceil(decision.reset_epoch - time.time())))
        msg = f"Exceeded rate limit for endpoint: /api/{api_path}, project: {self.settings.iterable_project_id}"
        return iterable_error(429, msg, "RateLimitExceeded", {}).with_headers(headers)

    def _authorized(self, platform: str, headers: Mapping[str, str]) -> bool:
        if platform == "braze":
            scheme, _, key = (headers.get("Authorization") or "").partition(" ")
            return scheme.lower() == "bearer" and _same(key.strip(), self.settings.braze_api_key)
        key = headers.get("Api-Key") or headers.get("Api_Key") or ""
        return _same(key.strip(), self.settings.iterable_api_key)

    def _route(self, platform: str, method: str, api_path: str) -> tuple[Route | None, tuple[str, ...]]:
        exact = self._routes.get((platform, method, api_path))
        if exact:
            return exact, ()
        # Iterable's two user reads with the identifier in the path.
        head, _, last = api_path.rpartition("/")
        route = self._routes.get((platform, method, f"{head}/{{}}")) if head in {"users", "users/byUserId"} else None
        return (route, (unquote(last),)) if route else (None, ())

    # ---------------------------------------------------------------- control

    def _control(self, request: Request, path: str) -> Reply:
        method = request.method
        if method == "GET" and path in {"/", ""}:
            return Reply(200, render_page(self.state(), self.settings), content_type="text/html; charset=utf-8")
        if method == "GET" and path == "/health":
            return Reply(200, {"status": "ok"})
        if method == "GET" and path == "/state":
            return Reply(200, self.state())
        if method == "GET" and path == "/requests":
            return Reply(200, {"requests": self.log.entries(), "totals": self.log.totals()})
        if method == "POST" and path == "/reset":
            self.reset()
            return Reply(200, {"status": "reset"})
        if path == "/faults":
            if method == "GET":
                return Reply(200, self.faults.describe())
            if method == "DELETE":
                self.faults.clear()
                return Reply(200, self.faults.describe())
            if method == "POST":
                try:
                    self.faults.arm(json.loads(request.body or b"{}"))
                except (json.JSONDecodeError, FaultSpecError) as problem:
                    return Reply(400, {"error": str(problem)})
                return Reply(200, self.faults.describe())
        return Reply(404, {"error": f"no control endpoint {method} {CONTROL_PREFIX}{path}"})


def _split_platform(path: str) -> tuple[str, str]:
    """('braze' | 'iterable', path after the platform prefix and Iterable's /api/)."""
    trimmed = path.rstrip("/")
    if trimmed.startswith("/braze/"):
        return "braze", trimmed.removeprefix("/braze/")
    if trimmed.startswith("/iterable/"):
        trimmed = trimmed.removeprefix("/iterable")
    elif not trimmed.startswith("/api/"):
        return "braze", trimmed.lstrip("/")
    return "iterable", trimmed.removeprefix("/api/")


def _same(given: str, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())


def _counts(request: Request) -> dict[str, int]:
    """Object counts of a JSON body, for the request log (never the objects themselves)."""
    if not request.body:
        return {}
    try:
        payload = json.loads(request.body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    if not isinstance(payload, dict):
        return {}
    return {key: len(value) for key, value in payload.items() if isinstance(value, list)}


def _unauthorized(platform: str, api_path: str, headers: Mapping[str, str]) -> Reply:
    if platform == "braze":
        return Reply(401, {"message": "Invalid API key"})
    params = {"ip": headers.get("X-Forwarded-For", "127.0.0.1"), "endpoint": f"/api/{api_path}"}
    return iterable_error(401, "Invalid API key", "BadApiKey", params)


def _not_found(platform: str) -> Reply:
    if platform == "braze":
        return Reply(404, {"message": "Not Found"})
    return iterable_error(404, "Not found", "NotFound")


def _server_error(platform: str, status: int) -> Reply:
    if platform == "braze":
        return Reply(status, {"message": "Internal Server Error"})
    return iterable_error(status, "Internal server error", "GenericError")


def _too_large(platform: str, limit: int) -> Reply:
    if platform == "braze":
        return Reply(413, {"message": "Request Entity Too Large"})
    return iterable_error(413, f"Request body exceeds {limit} bytes", "BatchTooLarge")


def _bad_json(platform: str) -> Reply:
    if platform == "braze":
        return Reply(400, {"message": "Bad Request", "errors": ["Invalid JSON"]})
    return iterable_error(400, "Json body could not be parsed", "BadJsonBody")
