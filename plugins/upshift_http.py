"""What the Braze and Iterable hooks share: an Airflow HTTP connection as a base URL and API key.

The connection's fields mean what they mean in apache-airflow-providers-http's HttpHook: `host`
is a host name or a full URL, `schema` is the URL scheme (`https`, `http`), `port` an optional
port, here `password` the API key. A host with `://` is used as given (its own scheme, port and
path: the emulator's `http://127.0.0.1:8090/braze`); otherwise the URL is `schema://host[:port]`.
One difference from HttpHook: an empty schema means `https`, not `http`, because the key travels
in a header. Transport only: clients, retries and rate limits live in upshift.sync.clients.
"""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowFailException

from upshift.sync.clients import ApiClient
from upshift.sync.errors import SyncError
from upshift.sync.settings import SyncSettings

SCHEMES = ("https", "http")


class DestinationConnectionInvalid(AirflowFailException):
    """A destination connection names no usable URL. Fix the connection; a retry cannot help."""


def base_url(conn_id: str, host: str | None, port: int | None, schema: str | None, default: str = "") -> str:
    """The destination's base URL from a connection's host, port and schema (see the module doc)."""
    host = (host or "").strip().rstrip("/")
    if "://" in host:
        return host
    scheme = (schema or "").strip().lower() or "https"
    if scheme not in SCHEMES:
        raise DestinationConnectionInvalid(
            f"Connection {conn_id}: schema {schema!r} is not a URL scheme. As in Airflow's HTTP connections "
            "the schema field is the scheme (https or http); to add a path, give the host as a full URL "
            "(https://host/path) and leave the schema empty."
        )
    if not host:
        if default:
            return default
        raise DestinationConnectionInvalid(
            f"Connection {conn_id} has no host: set it to the destination's REST endpoint."
        )
    return f"{scheme}://{host}{f':{port}' if port else ''}"


class DestinationHook(BaseHook):
    """An upshift.sync client (`client_class`) from an Airflow HTTP connection."""

    conn_type = "http"
    client_class: ClassVar[type[ApiClient]]
    default_url: ClassVar[str] = ""

    def __init__(self, conn_id: str, settings: SyncSettings | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id
        self.settings = settings

    def base_url(self) -> str:
        connection = self.get_connection(self.conn_id)
        return base_url(self.conn_id, connection.host, connection.port, connection.schema, default=self.default_url)

    def get_conn(self) -> ApiClient:
        password = self.get_connection(self.conn_id).password or ""
        return self.client_class(self.base_url(), password, self.settings or SyncSettings.from_env())

    def test_connection(self) -> tuple[bool, str]:
        """One cheap authenticated read (the client's `check`); the message never carries the key."""
        try:
            with self.get_conn() as client:
                return True, client.check()
        except (SyncError, DestinationConnectionInvalid, ValueError) as error:
            return False, str(error)
