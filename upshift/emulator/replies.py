"""The answer a platform model gives, independent of the HTTP server that sends it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Reply:
    """Status, JSON (or text) body and extra headers of one response."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    def encoded(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body, default=str).encode()

    def with_headers(self, headers: dict[str, str]) -> Reply:
        return Reply(self.status, self.body, {**headers, **self.headers}, self.content_type)
