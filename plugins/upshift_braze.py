"""BrazeHook: the Braze REST endpoint and API key of an Airflow connection, as a BrazeClient.

Transport only (auth, base URL, retries, rate limits live in upshift.sync.clients); no payload
state. Connection `braze_default` (or any id): host = the instance's REST endpoint, e.g.
`https://rest.iad-01.braze.com` (or the emulator's `http://127.0.0.1:8090/braze`), password =
a REST API key with `users.track` and `users.export.ids`. As an environment variable:

    AIRFLOW_CONN_BRAZE_DEFAULT='{"conn_type": "http", "host": "https://rest.iad-01.braze.com",
      "password": "<REST API key>"}'
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook

from upshift.sync.clients import BrazeClient
from upshift.sync.errors import SyncError
from upshift.sync.settings import SyncSettings


def base_url(host: str | None, port: int | None, schema: str | None, default: str = "") -> str:
    """A connection's base URL: the host as given when it has a scheme, else https://host[:port][/schema]."""
    host = (host or "").strip().rstrip("/")
    if not host:
        return default
    if "://" in host:
        return host
    url = f"https://{host}{f':{port}' if port else ''}"
    return f"{url}/{schema.strip('/')}" if schema else url


class BrazeHook(BaseHook):
    """Braze REST API client from an Airflow connection (host = REST endpoint, password = API key)."""

    conn_name_attr = "braze_conn_id"
    default_conn_name = "braze_default"
    conn_type = "http"
    hook_name = "Braze"

    def __init__(self, braze_conn_id: str = default_conn_name, settings: SyncSettings | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.braze_conn_id = braze_conn_id
        self.settings = settings

    def get_conn(self) -> BrazeClient:
        connection = self.get_connection(self.braze_conn_id)
        url = base_url(connection.host, connection.port, connection.schema)
        return BrazeClient(url, connection.password or "", self.settings or SyncSettings.from_env())

    def test_connection(self) -> tuple[bool, str]:
        """Export one unknown id: proves the endpoint answers and the key may read users."""
        try:
            with self.get_conn() as client:
                return True, client.check()
        except (SyncError, ValueError) as error:
            return False, str(error)
