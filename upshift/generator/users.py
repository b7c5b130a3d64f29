"""The users table: one row per client and worker, with fake contact details.

Emails use the reserved example domains and phone numbers the fictional 555 range, so
the demo data never contains a reachable address. An email carries its user's id, so no two
users share one (Iterable keys profiles on email too: a shared one merges two users).
"""

from __future__ import annotations

import numpy as np

from upshift.generator.catalog import COUNTRIES
from upshift.generator.frames import Frame
from upshift.generator.population import Side

FIRST_NAMES = np.array(
    [
        "alex", "sam", "jordan", "maria", "li", "priya", "noah", "emma", "lucas", "sofia", "omar", "yuki",
        "ana", "ben", "chloe", "diego", "ella", "felix", "grace", "hugo", "ivy", "jonas", "kai", "lena",
    ],
    dtype=object,
)  # fmt: skip
EMAIL_DOMAINS = np.array(["example.com", "example.net", "example.org"], dtype=object)
COUNTRY_CODES = np.array([country.code for country in COUNTRIES], dtype=object)
PHONE_PREFIXES = np.array([country.phone_prefix for country in COUNTRIES], dtype=object)
PHONE_SHARE = 0.7


def user_rows(rng: np.random.Generator, side: Side, members: np.ndarray, role: str, ids: np.ndarray) -> Frame:
    size = len(members)
    country = side.country[members]
    name = FIRST_NAMES[rng.integers(0, len(FIRST_NAMES), size)]
    user_id = ids[members]
    email = name + "." + user_id + "@" + EMAIL_DOMAINS[rng.integers(0, len(EMAIL_DOMAINS), size)]
    line = np.char.zfill(rng.integers(0, 10_000, size).astype(str), 4).astype(object)
    phone = PHONE_PREFIXES[country] + " 555 01" + line
    phone = np.where(rng.random(size) < PHONE_SHARE, phone, None)
    return {
        "user_id": user_id,
        "role": np.full(size, role, dtype=object),
        "email": email,
        "phone": phone,
        "country": COUNTRY_CODES[country],
        "created_at": side.created_at[members],
    }
