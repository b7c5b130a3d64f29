"""Upshift: upgrade-readiness scoring and activation for two-sided gig marketplaces."""

__version__ = "0.1.0"
