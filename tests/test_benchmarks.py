"""The benchmark entry point at a tiny size, so it cannot rot: it runs, and it writes the table
of figures and ratios as JSON and Markdown. Times are printed, never asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.__main__ import run
from upshift.warehouse import WarehouseSettings

pytestmark = pytest.mark.slow

# `dag` needs a whole local Airflow (the scheduler tests drive the same LocalAirflow) and `daily`
# four builds of two more worlds (the same generate and build steps as `scoring`).
SMOKE_SCENARIOS = ["scoring", "sync", "memory"]


@pytest.fixture(scope="module")
def smoke(warehouse_server: WarehouseSettings, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("bench")
    result = run(
        # A workspace's own limits (not the documented ones) for the emulator and the sync's client.
        [
            *("--users", "300", "--days", "30", "--scenarios", ",".join(SMOKE_SCENARIOS), "--out", str(out)),
            *("--braze-track-rate-limit", "300", "--iterable-bulk-update-rate", "5"),
        ],
        server=warehouse_server,
    )
    return result, out


def test_every_chosen_scenario_reports_its_ratios(smoke: tuple[dict, Path]) -> None:
    result, _ = smoke

    scenarios = result["scenarios"]
    assert list(scenarios) == SMOKE_SCENARIOS
    assert scenarios["scoring"]["build_vs_floor"] > 0
    assert scenarios["scoring"]["events"] > 0
    sync = scenarios["sync"]
    for destination in ("braze", "iterable"):
        assert sync[f"{destination}_changed_users"] > 0
        assert sync[f"{destination}_share_of_ceiling"] > 0
        assert sync[f"{destination}_requests_vs_minimum"] == 1
        assert sync[f"{destination}_rate_limited_requests"] >= 0
    # The configured ceiling is the one the share is of; the documented one is printed beside it.
    assert (sync["braze_ceiling_users_per_s"], sync["braze_documented_ceiling_users_per_s"]) == (300 / 3 * 75, 75_000)
    assert (sync["iterable_ceiling_users_per_s"], sync["iterable_documented_ceiling_users_per_s"]) == (5_000, 10_000)
    assert scenarios["sync"]["unchanged_rerun_requests_all_steps"] == 0


def test_every_python_process_reports_its_own_peak_memory(smoke: tuple[dict, Path]) -> None:
    result, _ = smoke

    memory = result["scenarios"]["memory"]
    peaks = {name: memory[f"{name}_peak_rss_mib"] for name in ("generator", "gates", "sync", "report")}
    assert all(peak > 10 for peak in peaks.values()), peaks


def test_the_figures_are_written_as_json_and_markdown(smoke: tuple[dict, Path]) -> None:
    result, out = smoke

    assert json.loads((out / "benchmark.json").read_text()) == json.loads(json.dumps(result, default=str))
    markdown = (out / "benchmark.md").read_text()
    for heading in SMOKE_SCENARIOS:
        assert f"## {heading}" in markdown
    assert "| build_vs_floor |" in markdown
