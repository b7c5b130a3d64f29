"""Reference data the generator draws from: categories, countries, plans and offers.

Plans and offers are read from the dbt seeds at run time so the generated subscriptions
and exposures always use the codes the models join against.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from upshift.contract import raw_contract

SEEDS_DIR = Path(__file__).resolve().parents[2] / "dbt_project" / "seeds"


@dataclass(frozen=True)
class Category:
    """A service category; booking amounts are log-normal around `median_usd`."""

    name: str
    weight: float
    median_usd: float
    sigma: float


@dataclass(frozen=True)
class Country:
    """A market: its currency, price level against USD and UTC offset for diurnal timing."""

    code: str
    currency: str
    weight: float
    price_level: float
    utc_offset_hours: float
    phone_prefix: str


@dataclass(frozen=True)
class Plan:
    plan_code: str
    role: str
    plan_rank: int
    monthly_price_cents: int


@dataclass(frozen=True)
class Offer:
    offer_code: str
    role: str
    readiness_tier: str
    target_plan_code: str


CATEGORIES: tuple[Category, ...] = (
    Category("cleaning", 0.21, 85.0, 0.45),
    Category("handyman", 0.15, 120.0, 0.60),
    Category("moving", 0.08, 260.0, 0.55),
    Category("tutoring", 0.12, 45.0, 0.35),
    Category("design", 0.07, 300.0, 0.80),
    Category("delivery", 0.14, 25.0, 0.50),
    Category("pet_care", 0.10, 35.0, 0.40),
    Category("gardening", 0.08, 90.0, 0.50),
    Category("photography", 0.05, 220.0, 0.60),
)

COUNTRIES: tuple[Country, ...] = (
    Country("US", "USD", 0.32, 1.00, -5.0, "+1"),
    Country("GB", "GBP", 0.12, 0.80, 0.0, "+44"),
    Country("DE", "EUR", 0.09, 0.90, 1.0, "+49"),
    Country("FR", "EUR", 0.07, 0.90, 1.0, "+33"),
    Country("ES", "EUR", 0.05, 0.75, 1.0, "+34"),
    Country("NL", "EUR", 0.03, 0.95, 1.0, "+31"),
    Country("CA", "CAD", 0.08, 1.30, -5.0, "+1"),
    Country("AU", "AUD", 0.07, 1.45, 10.0, "+61"),
    Country("IN", "INR", 0.07, 30.0, 5.5, "+91"),
    Country("BR", "BRL", 0.06, 2.50, -3.0, "+55"),
    Country("MX", "MXN", 0.04, 9.00, -6.0, "+52"),
)


@dataclass(frozen=True)
class Catalog:
    """Plans and offers by role, as the seeds define them."""

    plans: tuple[Plan, ...]
    offers: tuple[Offer, ...]

    def paid_plans(self, role: str) -> tuple[Plan, ...]:
        """Plans with a price, cheapest rank first."""
        return tuple(
            sorted(
                (plan for plan in self.plans if plan.role == role and plan.monthly_price_cents > 0),
                key=lambda plan: plan.plan_rank,
            )
        )

    def offers_for(self, role: str) -> tuple[Offer, ...]:
        return tuple(offer for offer in self.offers if offer.role == role)


def _read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def load_catalog(seeds_dir: Path | None = None) -> Catalog:
    """Read plan_catalog.csv and readiness_offers.csv from the dbt seeds directory."""
    seeds_dir = seeds_dir or SEEDS_DIR
    plans = tuple(
        Plan(
            plan_code=row["plan_code"],
            role=row["role"],
            plan_rank=int(row["plan_rank"]),
            monthly_price_cents=round(float(row["monthly_price"]) * 100),
        )
        for row in _read_rows(seeds_dir / "plan_catalog.csv")
    )
    offers = tuple(
        Offer(
            offer_code=row["offer_code"],
            role=row["role"],
            readiness_tier=row["readiness_tier"],
            target_plan_code=row["target_plan_code"],
        )
        for row in _read_rows(seeds_dir / "readiness_offers.csv")
    )
    for role in raw_contract().accepted_values("users", "role"):
        if not any(plan.role == role and plan.monthly_price_cents > 0 for plan in plans):
            raise ValueError(f"plan_catalog.csv in {seeds_dir} has no paid {role} plan")
        if not any(offer.role == role for offer in offers):
            raise ValueError(f"readiness_offers.csv in {seeds_dir} has no {role} offer")
    return Catalog(plans=plans, offers=offers)
