"""BrazeHook: the Braze REST endpoint and API key of an Airflow connection, as a BrazeClient.

Transport only (auth, base URL, retries, rate limits live in upshift.sync.clients); no payload
state. Connection `braze_default` (or any id), an HTTP connection as Airflow's HTTP provider
reads it (upshift_http): host = the instance's REST endpoint, either `rest.iad-01.braze.com` with
schema `https` or the full URL `https://rest.iad-01.braze.com` (the emulator:
`http://127.0.0.1:8090/braze`); password = a REST API key with `users.track` and
`users.export.ids`. As an environment variable:

    AIRFLOW_CONN_BRAZE_DEFAULT='{"conn_type": "http", "host": "rest.iad-01.braze.com",
      "schema": "https", "password": "<REST API key>"}'
"""

from __future__ import annotations

from upshift_http import DestinationHook

from upshift.sync.clients import BrazeClient


class BrazeHook(DestinationHook):
    """Braze REST API client from an Airflow connection (host = REST endpoint, password = API key)."""

    conn_name_attr = "conn_id"
    default_conn_name = "braze_default"
    hook_name = "Braze"
    client_class = BrazeClient

    def __init__(self, conn_id: str = default_conn_name, **kwargs: object) -> None:
        super().__init__(conn_id, **kwargs)
