"""The human-readable page at GET /_emulator/: what each destination holds right now.

Email addresses are masked here (the JSON state at /_emulator/state has them, because tests
read profiles back by email); the request log below the tables is already redacted.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from upshift.emulator.settings import EmulatorSettings

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d2330; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
th, td { border: 1px solid #d5d9e0; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #f2f4f7; } code { font-size: 12px; white-space: pre-wrap; }
.muted { color: #667085; }
"""


def render_page(state: dict[str, Any], settings: EmulatorSettings) -> str:
    braze, iterable = state["braze"], state["iterable"]
    sections = [
        "<h1>upshift emulator</h1>",
        '<p class="muted">Braze at <code>/braze</code>, Iterable at <code>/iterable</code>; '
        "JSON at <a href='/_emulator/state'>/_emulator/state</a>. Refreshes every 5 s.</p>",
        "<h2>Braze users</h2>",
        _table(
            ["external_id", "email", "custom attributes", "events"],
            [
                [
                    user.get("external_id", ""),
                    mask_email(user.get("email")),
                    _json(user.get("custom_attributes", {})),
                    ", ".join(f"{event['name']} x{event['count']}" for event in user.get("custom_events", [])),
                ]
                for user in braze["users"]
            ],
        ),
        f"<p>{len(braze['events'])} events, {len(braze['purchases'])} purchases received.</p>",
        "<h2>Iterable users</h2>",
        _table(
            ["userId", "email", "dataFields"],
            [
                [user.get("userId", ""), mask_email(user.get("email")), _json(user.get("dataFields", {}))]
                for user in iterable["users"]
            ],
        ),
        "<h2>Iterable lists</h2>",
        _table(
            ["id", "name", "members"],
            [[item["id"], item["name"], len(item["members"])] for item in iterable["lists"]],
        ),
        "<h2>Iterable events</h2>",
        _table(
            ["user", "eventName", "id", "deliveries"],
            [
                [
                    event.get("userId") or mask_email(event.get("email")),
                    event["eventName"],
                    event["id"],
                    event["deliveries"],
                ]
                for event in iterable["events"]
            ],
        ),
        "<h2>Armed faults</h2>",
        f"<code>{escape(json.dumps(state['faults'], indent=2))}</code>",
        "<h2>Limits</h2>",
        f"<code>{escape(json.dumps(public_limits(settings), indent=2))}</code>",
        "<h2>Recent requests</h2>",
        _table(
            ["#", "at", "platform", "request", "status", "ms", "fault", "objects"],
            [
                [
                    entry["seq"],
                    entry["at"],
                    entry["platform"],
                    f"{entry['method']} {entry['path']}",
                    entry["status"] if entry["status"] is not None else "closed",
                    entry["duration_ms"],
                    entry["fault"] or "",
                    _json(entry["objects"]) if entry["objects"] else "",
                ]
                for entry in reversed(state["requests"][-100:])
            ],
        ),
    ]
    return (
        "<!doctype html><html><head><meta charset='utf-8'><meta http-equiv='refresh' content='5'>"
        f"<title>upshift emulator</title><style>{_STYLE}</style></head><body>{''.join(sections)}</body></html>"
    )


def public_limits(settings: EmulatorSettings) -> dict[str, Any]:
    """The settings without the API keys and the start-up fault string."""
    hidden = {"braze_api_key", "iterable_api_key", "faults"}
    return {name: value for name, value in vars(settings).items() if name not in hidden}


def mask_email(email: Any) -> str:
    if not isinstance(email, str) or "@" not in email:
        return ""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    if not rows:
        return '<p class="muted">none</p>'
    head = "".join(f"<th>{escape(header)}</th>" for header in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(cell))}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
