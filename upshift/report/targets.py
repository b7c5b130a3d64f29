"""The targets and band edges the review states and draws, read from the growth_headlines row.

They are dbt vars (dbt_project.yml, "targets and bands"); growth_headlines flags each headline
against them and emits each as a column named like its var without `metrics_`. The review takes
them from that row only, so the page always states the thresholds the flags were computed with
and an analyst changes a target in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class Targets:
    expansion_share_healthy_pct: float
    expansion_share_healthy_max_pct: float
    expansion_share_underdeveloped_pct: float
    time_to_upgrade_target_days: float
    time_to_upgrade_amber_max_days: float
    ready_without_conversion_green_below_pct: float
    ready_without_conversion_amber_below_pct: float
    retention_floor_pct: float
    conversion_triggered_target_pct: float
    conversion_broadcast_ceiling_pct: float
    lift_ci_low_green_above_pct_points: float
    lift_amber_above_pct_points: float


# Said where a threshold would be when the row does not carry them (written before
# growth_headlines emitted its targets).
NOT_RECORDED = "Targets not recorded in this headline row; rerun upgrade_readiness for its date."


def targets_from_row(row: dict[str, Any] | None) -> Targets | None:
    """The row's targets, or None when there is no row or it lacks any of them."""
    if row is None:
        return None
    values = {field.name: row.get(field.name) for field in fields(Targets)}
    if any(value is None for value in values.values()):
        return None
    return Targets(**{name: float(value) for name, value in values.items()})
