"""Offer exposures: past upgrade offers shown to users as multi-channel sequences.

A sequence opens in-app (sometimes by email), follows up by email two to three days
later, and sometimes ends with a push or SMS a week after the first touch.
"""

from __future__ import annotations

import numpy as np

from upshift.generator.catalog import Catalog
from upshift.generator.frames import Frame, concat, expand, select
from upshift.generator.population import COUNTRY_OFFSET_SECONDS, Side, Window
from upshift.generator.tables import EMAIL, IN_APP, PUSH, SMS
from upshift.generator.timing import DAY, HOUR, sample_times

EXPOSED_SHARE = 0.3
ENGAGED_EXPOSED_SHARE = 0.55
EXTRA_SEQUENCES = 0.8


def exposure_rows(
    rng: np.random.Generator,
    side: Side,
    members: np.ndarray,
    role: str,
    ids: np.ndarray,
    catalog: Catalog,
    window: Window,
) -> Frame:
    offers = np.array([offer.offer_code for offer in catalog.offers_for(role)], dtype=object)
    size = len(members)
    share = np.where(side.in_any_segment()[members], ENGAGED_EXPOSED_SHARE, EXPOSED_SHARE)
    exposed = (rng.random(size) < share) & ~side.dormant[members]
    counts = np.where(exposed, 1 + rng.poisson(EXTRA_SEQUENCES, size), 0)
    owner, _ = expand(counts)
    offset = COUNTRY_OFFSET_SECONDS[side.country[members]][owner]
    active_from = side.active_from(window)[members][owner]
    first = sample_times(rng, active_from, window.end, offset, "view")
    offer = offers[rng.integers(0, len(offers), len(owner))]

    opening = np.where(rng.random(len(owner)) < 0.7, IN_APP, EMAIL).astype(object)
    follow_up = first + (rng.uniform(48, 72, len(owner)) * HOUR).astype(np.int64)
    nudge = first + 7 * DAY + (rng.uniform(0, 6, len(owner)) * HOUR).astype(np.int64)
    nudge_channel = np.where(rng.random(len(owner)) < 0.75, PUSH, SMS).astype(object)
    wants_follow_up = rng.random(len(owner)) < 0.6
    wants_nudge = rng.random(len(owner)) < 0.35

    email = np.full(len(owner), EMAIL, dtype=object)
    steps = [
        {"owner": owner, "offer": offer, "channel": opening, "at": first},
        select({"owner": owner, "offer": offer, "channel": email, "at": follow_up}, wants_follow_up),
        select({"owner": owner, "offer": offer, "channel": nudge_channel, "at": nudge}, wants_nudge),
    ]
    rows = concat(steps)
    if not rows:
        return {}
    rows = select(rows, rows["at"] < window.end)
    return {
        "user_id": ids[members][rows["owner"]],
        "offer_code": rows["offer"],
        "channel": rows["channel"],
        "exposed_at": rows["at"],
    }
