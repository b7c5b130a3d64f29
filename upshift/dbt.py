"""Run the dbt project in-process with the warehouse settings.

The CLI and the tests use this; Airflow does not (Cosmos runs dbt there, from the manifest
that `parse()` writes).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from upshift.warehouse import REPO_ROOT, SESSION_ENV, WarehouseSettings, environment

# The dbt project the CLI, the gates and the DAG run: this checkout's, or a copy of it elsewhere
# (UPSHIFT_DBT_PROJECT_DIR), e.g. a fork an analytics engineer edits, or one target/ per test
# process (dbt writes its manifest and partial parse into the project's target/ folder, which
# Cosmos reads back from there; two processes building one project would overwrite each other's).
DBT_PROJECT_DIR = Path(os.environ.get("UPSHIFT_DBT_PROJECT_DIR") or REPO_ROOT / "dbt_project").resolve()
MANIFEST_PATH = DBT_PROJECT_DIR / "target" / "manifest.json"
# profiles.yml's profile; its output (target) is the engine's name. Every invocation names both,
# as the DAG's Cosmos tasks do: dbt keeps its partial parse (target/partial_parse.msgpack, which
# Cosmos copies into each task's project) only for the same --profile, --target and --vars, so
# the manifest `parse()` writes spares each stage's first build a whole re-parse.
DBT_PROFILE = "upshift"
# `dbt parse` never connects, so it can run before any warehouse exists; profiles.yml still
# needs a host to render.
_PARSE_ONLY_HOST = "localhost"


class DbtCommandFailed(RuntimeError):
    """A dbt command did not succeed; dbt's own output above says which node and why."""


def run_dbt(args: Sequence[str], settings: WarehouseSettings, *, check: bool = True) -> object:
    """Invoke `dbt <args>` against the project; raises DbtCommandFailed when it fails.

    With check=False a run that completed with failing nodes (a data test failing, a model
    erroring) returns its results instead, for the caller to name the failures; a command
    that could not run at all (no results) still raises.

    dbt reads `env_var()` from os.environ, so the settings go there for the invocation, with
    PGTZ=UTC: dbt-postgres has no profile field for session options, and PGTZ pins every
    session dbt opens to UTC whatever the server's, the database's or the caller's time zone.
    The sync schema goes too, as the sync reads and validates it, so dbt's source `upshift_sync`
    is the schema the sync writes.
    """
    from dbt.cli.main import dbtRunner

    from upshift.sync.settings import SyncSettings

    env = {
        **replace(settings, host=settings.host or _PARSE_ONLY_HOST).env(),
        "UPSHIFT_SYNC_SCHEMA": SyncSettings.from_env().schema,
        **SESSION_ENV,
    }
    command = [
        *args,
        *("--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)),
        *("--profile", DBT_PROFILE, "--target", settings.engine),
    ]
    with environment(env):
        result = dbtRunner().invoke(command)
    if not result.success and (check or result.result is None):
        raise DbtCommandFailed(f"`dbt {' '.join(args)}` failed: {result.exception or 'see the dbt output above'}")
    return result.result


def parse(settings: WarehouseSettings | None = None) -> Path:
    """Write target/manifest.json, which the Airflow DAG renders its tasks from."""
    run_dbt(["parse", "--quiet"], settings or WarehouseSettings.from_env())
    return MANIFEST_PATH
