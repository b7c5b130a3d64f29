"""Where the warehouse is and how to reach it.

Everything that needs PostgreSQL - the CLI, the generator, dbt, Airflow and the tests - gets
its connection from the settings built here, so the `UPSHIFT_PG_*` variables are read in one
place. When `UPSHIFT_PG_HOST` is unset the warehouse is an embedded PostgreSQL from the
`pgserver` wheel: no root, no Docker, a Unix socket only, data under `UPSHIFT_HOME`.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql

REPO_ROOT = Path(__file__).resolve().parent.parent
AIRFLOW_CONN_ID = "upshift_warehouse"
EMBEDDED_USER = "postgres"
# Cosmos' Postgres profile mapping insists on a password. Servers that let the user in without
# one (the embedded server trusts its socket) ignore it, so this stand-in only satisfies Cosmos.
NO_PASSWORD_PLACEHOLDER = "no-password"

# All date logic is UTC. PostgreSQL derives dates, month buckets and day arithmetic on
# timestamptz from the session's TimeZone, which otherwise follows the server's or database's
# default or the client's PGTZ, so every session the project opens is pinned to this zone.
SESSION_TIME_ZONE = "UTC"
# For a connection string: beats the server's and the database's default time zone, but not
# a PGTZ in the client's environment (libpq sends that as a startup parameter, applied later).
SESSION_OPTIONS = f"-c timezone={SESSION_TIME_ZONE}"
# For processes and libraries that open their own libpq sessions (dbt, Great Expectations'
# psycopg2 engine): PGTZ overrides every default, and a PGTZ already set.
SESSION_ENV = {"PGTZ": SESSION_TIME_ZONE}


# PostgreSQL truncates names at 63 bytes; dbt appends `_intermediate` (13) to the target schema.
MAX_NAME_LENGTH = 63
SCHEMA_SUFFIX_LENGTH = len("_intermediate")
# The engines the dbt project builds on (UPSHIFT_WAREHOUSE, the profiles.yml output of that
# name): PostgreSQL, the default, or Apache Spark through dbt-spark's session method.
WAREHOUSE_ENGINES = ("postgres", "spark")
# Schemas: lower case, so the name PostgreSQL stores is the name every tool (dbt, Great
# Expectations through SQLAlchemy, psql, the sync) writes, quoted or not.
SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]*")
# Databases are only ever quoted by us; a dash or upper case is fine, a quote or space is not.
DATABASE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")

# The warehouse layout: dbt builds each layer (dbt_project.yml's `+schema`) into
# `<target schema>_<layer>`, as its generate_schema_name does; Python names dbt's relations only
# through WarehouseSettings.layer_schema / relation, which follow the same rule. The longest
# suffix, `_intermediate`, is SCHEMA_SUFFIX_LENGTH (a test holds the two together).
Layer = Literal["staging", "intermediate", "marts", "reference"]
LAYERS: tuple[Layer, ...] = ("staging", "intermediate", "marts", "reference")
DEFAULT_TARGET_SCHEMA = "analytics"
# The sync's state tables (also dbt's source `upshift_sync`), unless UPSHIFT_SYNC_SCHEMA names another.
DEFAULT_SYNC_SCHEMA = "upshift_sync"


class WarehouseError(RuntimeError):
    """The warehouse cannot be reached or prepared; the message says what to check."""


class SchemaNameError(WarehouseError, ValueError):
    """A configured schema name is not a plain lower-case identifier (a bad value, hence ValueError)."""


def check_schema_name(variable: str, value: str, *, suffix_length: int = 0) -> str:
    """`value` if it is a safe schema name, else a SchemaNameError naming `variable` and the rule.

    Names end up in SQL that dbt, the gates and the sync write (`create schema ...`), so only
    plain lower-case identifiers are accepted: anything else could change what that SQL does.
    """
    limit = MAX_NAME_LENGTH - suffix_length
    if not SCHEMA_NAME.fullmatch(value) or len(value) > limit:
        raise SchemaNameError(
            f"{variable}={value!r} is not an allowed schema name: use lower-case letters, digits and "
            f"underscores, starting with a letter or underscore, at most {limit} characters."
        )
    return value


def _check_database_name(value: str) -> str:
    if not DATABASE_NAME.fullmatch(value) or len(value.encode()) > MAX_NAME_LENGTH:
        raise WarehouseError(
            f"UPSHIFT_PG_DATABASE={value!r} is not an allowed database name: use letters, digits, "
            f"underscores and dashes, starting with a letter or underscore, at most {MAX_NAME_LENGTH} characters."
        )
    return value


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        raise WarehouseError(f"UPSHIFT_PG_PORT={text!r} is not a port number (1-65535).")
    return port


def warehouse_engine(env: Mapping[str, str] = os.environ) -> str:
    """The engine UPSHIFT_WAREHOUSE selects (default postgres); anything else is refused by name."""
    engine = env.get("UPSHIFT_WAREHOUSE") or "postgres"
    if engine not in WAREHOUSE_ENGINES:
        raise WarehouseError(f"UPSHIFT_WAREHOUSE={engine!r} is not an engine: use {' or '.join(WAREHOUSE_ENGINES)}.")
    return engine


def upshift_home(env: Mapping[str, str] = os.environ) -> Path:
    """Directory for local state: embedded PostgreSQL data, the Airflow home, stamps."""
    return Path(env.get("UPSHIFT_HOME") or REPO_ROOT / ".upshift").resolve()


def target_schema(env: Mapping[str, str] = os.environ) -> str:
    """dbt's target schema (`UPSHIFT_PG_SCHEMA`, default analytics), checked: for code that needs
    it without the rest of the settings, such as the DAG's dbt profile."""
    return check_schema_name(
        "UPSHIFT_PG_SCHEMA", env.get("UPSHIFT_PG_SCHEMA") or DEFAULT_TARGET_SCHEMA, suffix_length=SCHEMA_SUFFIX_LENGTH
    )


@dataclass(frozen=True)
class WarehouseSettings:
    """Connection and schema settings of the warehouse, read from the environment."""

    host: str | None
    port: int
    user: str
    password: str = field(repr=False)
    database: str
    schema: str
    raw_schema: str
    home: Path
    embedded: bool
    # The engine dbt builds on; the raw tables and the gates stay on PostgreSQL unless it is
    # spark. On spark the PostgreSQL above is the sync's state store, the sync reads its models
    # from Spark (upshift/sync/on_spark.py; docs/scaling.md says what runs where).
    engine: str = "postgres"

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> WarehouseSettings:
        host = env.get("UPSHIFT_PG_HOST") or None
        return cls(
            host=host,
            port=_port(env.get("UPSHIFT_PG_PORT") or "5432"),
            user=env.get("UPSHIFT_PG_USER") or EMBEDDED_USER,
            password=env.get("UPSHIFT_PG_PASSWORD") or "",
            database=env.get("UPSHIFT_PG_DATABASE") or "upshift",
            schema=target_schema(env),
            raw_schema=env.get("UPSHIFT_RAW_SCHEMA") or "raw",
            home=upshift_home(env),
            embedded=host is None,
            engine=warehouse_engine(env),
        )

    @classmethod
    def from_connection(
        cls,
        *,
        host: str | None,
        port: int | None,
        login: str | None,
        password: str | None,
        database: str | None,
        conn_id: str = AIRFLOW_CONN_ID,
        env: Mapping[str, str] = os.environ,
    ) -> WarehouseSettings:
        """Settings from the fields of an Airflow connection (conn_type postgres, schema = the
        database); the target and raw schemas and UPSHIFT_HOME still come from `env`.

        An empty host is refused rather than read as "embedded": in a worker that would start a
        fresh, empty PostgreSQL beside the task instead of reaching the warehouse dbt built.
        """
        if not (host or "").strip():
            raise WarehouseError(
                f"The Airflow connection {conn_id} has no host. Set its host to the warehouse's PostgreSQL "
                "server (or, for the embedded warehouse, the socket directory `python -m upshift.cli "
                "warehouse status` shows); `run.py` and `upshift.cli airflow up` fill it in themselves."
            )
        return cls.from_env(
            {
                "UPSHIFT_PG_HOST": host.strip(),
                "UPSHIFT_PG_PORT": str(port or 5432),
                "UPSHIFT_PG_USER": login or "",
                "UPSHIFT_PG_PASSWORD": "" if password == NO_PASSWORD_PLACEHOLDER else password or "",
                "UPSHIFT_PG_DATABASE": database or "",
                "UPSHIFT_PG_SCHEMA": env.get("UPSHIFT_PG_SCHEMA", ""),
                "UPSHIFT_RAW_SCHEMA": env.get("UPSHIFT_RAW_SCHEMA", ""),
                "UPSHIFT_HOME": env.get("UPSHIFT_HOME", ""),
                "UPSHIFT_WAREHOUSE": env.get("UPSHIFT_WAREHOUSE", ""),
            }
        )

    def __post_init__(self) -> None:
        warehouse_engine({"UPSHIFT_WAREHOUSE": self.engine})
        _check_database_name(self.database)
        check_schema_name("UPSHIFT_PG_SCHEMA", self.schema, suffix_length=SCHEMA_SUFFIX_LENGTH)
        check_schema_name("UPSHIFT_RAW_SCHEMA", self.raw_schema)

    @property
    def embedded_data_dir(self) -> Path:
        return self.home / "pgdata"

    def with_database(self, database: str) -> WarehouseSettings:
        return replace(self, database=database)

    def layer_schema(self, layer: Layer) -> str:
        """The schema dbt builds `layer` into: `<target schema>_<layer>` (generate_schema_name)."""
        if layer not in LAYERS:
            raise ValueError(f"{layer!r} is not a layer of the dbt project; expected one of {', '.join(LAYERS)}")
        return f"{self.schema}_{layer}"

    def relation(self, layer: Layer, name: str) -> sql.Identifier:
        """The dbt model or seed `name` of `layer`, quoted for psycopg's sql composition."""
        from psycopg import sql

        return sql.Identifier(self.layer_schema(layer), name)

    @property
    def known_host(self) -> str:
        """The host, once there is one: the embedded server's comes from ensure_warehouse()."""
        if self.host is None:
            raise WarehouseError("The warehouse host is unknown: call ensure_warehouse() first.")
        return self.host

    @property
    def socket_dir(self) -> bool:
        """Whether the host is a Unix socket directory (the embedded server's) rather than a name."""
        return self.known_host.startswith("/")

    def conninfo(self, database: str | None = None) -> dict[str, object]:
        """Keyword arguments for `psycopg.connect`; a host starting with / is a socket directory."""
        params: dict[str, object] = {
            "host": self.known_host,
            "port": self.port,
            "user": self.user,
            "dbname": database or self.database,
            "application_name": "upshift",
            "options": SESSION_OPTIONS,
        }
        if self.password:
            params["password"] = self.password
        return params

    def env(self) -> dict[str, str]:
        """The `UPSHIFT_*` variables dbt's profiles.yml and child processes read."""
        return {
            "UPSHIFT_PG_HOST": self.known_host,
            "UPSHIFT_PG_PORT": str(self.port),
            "UPSHIFT_PG_USER": self.user,
            "UPSHIFT_PG_PASSWORD": self.password,
            "UPSHIFT_PG_DATABASE": self.database,
            "UPSHIFT_PG_SCHEMA": self.schema,
            "UPSHIFT_RAW_SCHEMA": self.raw_schema,
            "UPSHIFT_HOME": str(self.home),
            "UPSHIFT_WAREHOUSE": self.engine,
        }

    def airflow_connection(self) -> str:
        """The `upshift_warehouse` Airflow connection in JSON form.

        JSON rather than a URI because a socket-directory host (`/path/to/dir`) has no place in
        the authority part of a URI and does not survive the round trip.
        """
        return json.dumps(
            {
                "conn_type": "postgres",
                "host": self.known_host,
                "port": self.port,
                "login": self.user,
                "password": self.password or NO_PASSWORD_PLACEHOLDER,
                "schema": self.database,
            }
        )

    def describe(self) -> str:
        """One line for humans and logs; never includes the password."""
        kind = "embedded PostgreSQL" if self.embedded else "PostgreSQL"
        where = f"socket dir {self.host}" if (self.host or "").startswith("/") else f"{self.host}:{self.port}"
        return (
            f"{kind} at {where}, database {self.database}, user {self.user}, "
            f"target schema {self.schema}, raw schema {self.raw_schema}"
        )


def _pgserver() -> ModuleType:
    """Import pgserver without its warning about XDG_RUNTIME_DIR, which it handles itself."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver
    return pgserver


def _start_embedded(settings: WarehouseSettings) -> WarehouseSettings:
    """Initialise (first time) and start the embedded server; it keeps running after we exit."""
    settings.home.mkdir(parents=True, exist_ok=True)
    server = _pgserver().get_server(settings.embedded_data_dir, cleanup_mode=None)
    # The server outlives this process on purpose (`warehouse stop` ends it); pgserver's exit
    # hook would only log, to a stream that may already be closed.
    atexit.unregister(server._cleanup)
    info = server.get_postmaster_info()
    if info.socket_dir is None:
        raise WarehouseError(f"The embedded PostgreSQL in {settings.embedded_data_dir} reports no socket directory.")
    return replace(settings, host=str(info.socket_dir), port=info.port or 5432, user=EMBEDDED_USER, password="")


def embedded_status(settings: WarehouseSettings) -> str:
    """`running`, `stopped` or `not initialised`, without starting anything."""
    data_dir = settings.embedded_data_dir
    if not (data_dir / "PG_VERSION").exists():
        return "not initialised"
    info = _pgserver().utils.PostmasterInfo.read_from_pgdata(data_dir)
    return "running" if info is not None and info.is_running() else "stopped"


def stop_embedded(settings: WarehouseSettings) -> bool:
    """Stop the embedded server if it runs; returns whether it was running."""
    if embedded_status(settings) != "running":
        return False
    # As root, pgserver runs PostgreSQL as its own `pgserver` system user; stop it as that user.
    run_as = "pgserver" if os.name == "posix" and os.geteuid() == 0 else None
    _pgserver().pg_ctl(["-w", "stop"], pgdata=settings.embedded_data_dir, user=run_as)
    return True


def _create_database_if_missing(settings: WarehouseSettings) -> None:
    """Connect to the warehouse database; only when it does not exist, create it from `postgres`.

    An existing database needs neither CREATEDB nor CONNECT on the `postgres` database, so a
    least-privilege role works once an administrator created the database.
    """
    import psycopg
    from psycopg import errors, sql

    try:
        with connect(settings, connect_timeout=10):
            return
    except psycopg.OperationalError as error:
        if not _is_missing_database(error, settings.database):
            raise _unreachable(settings, error) from error
    try:
        with connect(settings, database="postgres", autocommit=True, connect_timeout=10) as admin:
            admin.execute(sql.SQL("create database {}").format(sql.Identifier(settings.database)))
    except errors.DuplicateDatabase:
        return
    except errors.InsufficientPrivilege as error:
        raise WarehouseError(
            f"Database {settings.database} does not exist and user {settings.user} may not create it "
            "(no CREATEDB privilege). Create it as an administrator (`create database ... owner ...`) "
            "or grant CREATEDB."
        ) from error
    except psycopg.OperationalError as error:
        raise WarehouseError(
            f"Database {settings.database} does not exist, and creating it needs a connection to the "
            f"`postgres` database, which failed: {_first_line(error)}. Create the database as an "
            f"administrator, or grant user {settings.user} CONNECT on `postgres` and CREATEDB."
        ) from error


def _is_missing_database(error: BaseException, database: str) -> bool:
    """A refused connection carries no SQLSTATE in psycopg; the server's message names the cause."""
    return f'database "{database}" does not exist' in str(error)


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _unreachable(settings: WarehouseSettings, error: BaseException) -> WarehouseError:
    return WarehouseError(
        f"Cannot reach {settings.describe()}: {_first_line(error)}. Check the UPSHIFT_PG_* settings "
        "or unset UPSHIFT_PG_HOST to use the embedded PostgreSQL."
    )


def ensure_warehouse(settings: WarehouseSettings | None = None) -> WarehouseSettings:
    """Make the warehouse usable and return settings with a concrete host.

    Starts the embedded server when no host is configured, and creates the database when it is
    missing (on an external server this needs the CREATEDB privilege, or create it beforehand).
    """
    settings = settings or WarehouseSettings.from_env()
    if settings.embedded:
        settings = _start_embedded(settings)
    _create_database_if_missing(settings)
    return settings


def sqlalchemy_url(settings: WarehouseSettings, database: str | None = None, *, session_options: bool = True) -> str:
    """A database of the warehouse's server as a SQLAlchemy URL (psycopg2); a socket directory
    goes in `?host=`. For Great Expectations' datasource and Airflow's metadata database.

    With `session_options` its sessions are UTC (`options`, against a non-UTC server or database
    default); without, the URL also suits drivers that take no `options` (Airflow derives an
    asyncpg URL from its metadata URL). Holds the password when there is one: pass it on, never
    to a log.
    """
    from sqlalchemy.engine import URL

    socket_dir = settings.socket_dir
    url = URL.create(
        "postgresql+psycopg2",
        username=settings.user,
        password=settings.password or None,
        host=None if socket_dir else settings.host,
        port=None if socket_dir else settings.port,
        database=database or settings.database,
        query={
            **({"options": SESSION_OPTIONS} if session_options else {}),
            **({"host": settings.known_host, "port": str(settings.port)} if socket_dir else {}),
        },
    )
    return url.render_as_string(hide_password=False)


def pin_time_zone(conn: psycopg.Connection) -> psycopg.Connection:
    """Set the session's time zone to UTC, whatever the server, database or PGTZ say.

    Committed at once when the connection is transactional, so a later rollback keeps it.
    """
    conn.execute(f"set time zone '{SESSION_TIME_ZONE}'")
    if not conn.autocommit:
        conn.commit()
    return conn


def connect(
    settings: WarehouseSettings | None = None, *, database: str | None = None, **kwargs: object
) -> psycopg.Connection:
    """A psycopg 3 connection to the warehouse database (starting the embedded server if needed),
    or to another `database` of its server, its session pinned to UTC.

    The one way the project opens a session: `kwargs` (autocommit, connect_timeout,
    application_name, ...) go to `psycopg.connect` and win over the settings' defaults.
    """
    import psycopg

    if settings is None or settings.host is None:
        settings = ensure_warehouse(settings)
    conn = psycopg.connect(**{**settings.conninfo(database), **kwargs})
    try:
        return pin_time_zone(conn)
    except BaseException:
        conn.close()
        raise


@contextmanager
def environment(overrides: Mapping[str, str]) -> Iterator[None]:
    """Set `overrides` in os.environ for the block, then restore what was there.

    For libraries that read the environment when they run in this process: dbt's `env_var()`,
    and libpq's PGTZ (SESSION_ENV) for the sessions dbt and Great Expectations open.
    """
    saved = {name: os.environ.get(name) for name in overrides}
    os.environ.update(overrides)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
