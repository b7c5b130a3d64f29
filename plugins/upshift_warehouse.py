"""UpshiftWarehouseHook: the `upshift_warehouse` Airflow connection as upshift WarehouseSettings.

The one way tasks (gates, sync, report) find the warehouse. Connection fields: conn_type
`postgres`, host = the PostgreSQL server (or the embedded server's socket directory), port,
login, password, schema = the database. The target and raw schemas come from the worker's
`UPSHIFT_PG_SCHEMA` / `UPSHIFT_RAW_SCHEMA`, as they do for dbt. An empty host fails the task at
once (`WarehouseConnectionInvalid`) instead of starting an embedded PostgreSQL in the worker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowFailException

from upshift.warehouse import AIRFLOW_CONN_ID, WarehouseError, WarehouseSettings

if TYPE_CHECKING:
    import psycopg


class WarehouseConnectionInvalid(AirflowFailException):
    """The warehouse connection cannot name a warehouse (no host, a bad port or database name).

    Fails without retries: fix the connection, then clear the task.
    """


class UpshiftWarehouseHook(BaseHook):
    """WarehouseSettings (and psycopg connections) from an Airflow postgres connection."""

    conn_name_attr = "warehouse_conn_id"
    default_conn_name = AIRFLOW_CONN_ID
    conn_type = "postgres"
    hook_name = "upshift warehouse"

    def __init__(self, warehouse_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.warehouse_conn_id = warehouse_conn_id

    def get_settings(self) -> WarehouseSettings:
        connection = self.get_connection(self.warehouse_conn_id)
        try:
            return WarehouseSettings.from_connection(
                host=connection.host,
                port=connection.port,
                login=connection.login,
                password=connection.password,
                database=connection.schema,
                conn_id=self.warehouse_conn_id,
            )
        except WarehouseError as error:
            raise WarehouseConnectionInvalid(str(error)) from error

    def get_conn(self) -> psycopg.Connection:
        """A psycopg connection to the warehouse database, its session pinned to UTC."""
        from upshift.warehouse import connect

        return connect(self.get_settings(), connect_timeout=10)

    def test_connection(self) -> tuple[bool, str]:
        """Connect and ask the server's version; the message never carries the password."""
        import psycopg

        try:
            settings = self.get_settings()
            with self.get_conn() as conn:
                version = conn.execute("show server_version").fetchone()
        except (WarehouseConnectionInvalid, psycopg.Error) as error:
            return False, f"{type(error).__name__}: {str(error).strip()}"
        return True, f"Connected to {settings.describe()}, PostgreSQL {version[0] if version else 'unknown'}"
