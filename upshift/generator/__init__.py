"""Synthetic two-sided gig marketplace for upshift's raw tables.

`generate_marketplace` fills the raw data contract (users, bookings, searches, proposals,
profile views, contacts, subscriptions, offer exposures), as `GenerationOptions` say, with realistic, deterministic
demo data in which every readiness signal fires for a visible share of users, plus a
controlled share of dirty rows. `load_planted` appends hand-written fixture rows whose
timestamps are relative to the as-of date.
"""

from upshift.generator.dirty import DIRTY_KINDS
from upshift.generator.generate import GenerationOptions, GenerationReport, ProgressEvent, generate_marketplace
from upshift.generator.planted import load_planted

__all__ = [
    "DIRTY_KINDS",
    "GenerationOptions",
    "GenerationReport",
    "ProgressEvent",
    "generate_marketplace",
    "load_planted",
]
