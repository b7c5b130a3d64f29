"""IterableHook: the Iterable base URL and API key of an Airflow connection, as an IterableClient.

Transport only (auth, base URL, retries, rate limits live in upshift.sync.clients); no payload
state. Connection `iterable_default` (or any id): host = `https://api.iterable.com` (US) or
`https://api.eu.iterable.com` (EU; an empty host means US), or the emulator's
`http://127.0.0.1:8090/iterable`; password = a server-side API key. As an environment variable:

    AIRFLOW_CONN_ITERABLE_DEFAULT='{"conn_type": "http", "host": "https://api.eu.iterable.com",
      "password": "<API key>"}'
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook
from upshift_braze import base_url

from upshift.sync.clients import ITERABLE_US_URL, IterableClient
from upshift.sync.errors import SyncError
from upshift.sync.settings import SyncSettings


class IterableHook(BaseHook):
    """Iterable API client from an Airflow connection (host = base URL, password = API key)."""

    conn_name_attr = "iterable_conn_id"
    default_conn_name = "iterable_default"
    conn_type = "http"
    hook_name = "Iterable"

    def __init__(
        self, iterable_conn_id: str = default_conn_name, settings: SyncSettings | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.iterable_conn_id = iterable_conn_id
        self.settings = settings

    def get_conn(self) -> IterableClient:
        connection = self.get_connection(self.iterable_conn_id)
        url = base_url(connection.host, connection.port, connection.schema, default=ITERABLE_US_URL)
        return IterableClient(url, connection.password or "", self.settings or SyncSettings.from_env())

    def test_connection(self) -> tuple[bool, str]:
        """List the project's lists: proves the base URL answers and the key is accepted."""
        try:
            with self.get_conn() as client:
                return True, client.check()
        except (SyncError, ValueError) as error:
            return False, str(error)
