"""IterableHook: the Iterable base URL and API key of an Airflow connection, as an IterableClient.

Transport only (auth, base URL, retries, rate limits live in upshift.sync.clients); no payload
state. Connection `iterable_default` (or any id), an HTTP connection as Airflow's HTTP provider
reads it (upshift_http): host = `api.iterable.com` (US) or `api.eu.iterable.com` (EU) with schema
`https`, or the full URL (`https://api.eu.iterable.com`, the emulator's
`http://127.0.0.1:8090/iterable`); an empty host means US. Password = a server-side API key. As
an environment variable:

    AIRFLOW_CONN_ITERABLE_DEFAULT='{"conn_type": "http", "host": "api.eu.iterable.com",
      "schema": "https", "password": "<API key>"}'
"""

from __future__ import annotations

from upshift_http import DestinationHook

from upshift.sync.clients import ITERABLE_US_URL, IterableClient


class IterableHook(DestinationHook):
    """Iterable API client from an Airflow connection (host = base URL, password = API key)."""

    conn_name_attr = "conn_id"
    default_conn_name = "iterable_default"
    hook_name = "Iterable"
    client_class = IterableClient
    default_url = ITERABLE_US_URL

    def __init__(self, conn_id: str = default_conn_name, **kwargs: object) -> None:
        super().__init__(conn_id, **kwargs)
