"""Every personalisation template renders, with python-liquid and strict undefined, against the
attributes and event properties the emulator received in a real sync run - so a template that
quotes a field the sync does not send fails here, not in a customer's inbox.

Rendering harness (documented in templates/README.md): Braze's `{{custom_attribute.${name}}}` /
`{{event_properties.${name}}}` become `custom_attribute.name` / `event_properties.name`, and a
`{{...}}` inside a `{% %}` tag (Braze's way of testing an attribute) loses its braces. Iterable's
Handlebars `{{#if x}}...{{else}}...{{/if}}` becomes Liquid `{% if %}`, comments `{{!-- --}}` go,
and the context is the event's dataFields over the profile's dataFields. A field that some users
have and this one lacks renders as nil, as on the platforms; a field nobody was sent is an error.
"""

from __future__ import annotations

import csv
import re
from typing import Any

import psycopg
import pytest
from liquid import Environment, StrictUndefined
from liquid.exceptions import UndefinedError

from tests.test_sync import BRAZE_KEY, ITERABLE_KEY, build_marketplace, sync
from upshift.dbt import DBT_PROJECT_DIR
from upshift.emulator import EmulatorSettings, serve_in_thread
from upshift.warehouse import REPO_ROOT, WarehouseSettings

pytestmark = pytest.mark.slow

TEMPLATES = REPO_ROOT / "templates"
SUFFIX = {"braze": ".liquid", "iterable": ".hbs"}
# Merge fields the platforms provide themselves (not sent by the sync).
PLATFORM_FIELDS = {
    "braze": {"set_user_to_unsubscribed_url": "https://example.test/unsubscribe"},
    "iterable": {"unsubscribeUrl": "https://example.test/unsubscribe"},
}
LIQUID = Environment(undefined=StrictUndefined)


def _seed(name: str) -> list[dict[str, str]]:
    with (DBT_PROJECT_DIR / "seeds" / f"{name}.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


OFFER_ROLES = {row["offer_code"]: row["role"] for row in _seed("readiness_offers")}
ROLE_CHANNELS = {
    role: sorted({row["channel"] for row in _seed("touchpoint_sequence") if row["role"] == role})
    for role in OFFER_ROLES.values()
}
EXPECTED = [
    (destination, offer, channel)
    for destination in SUFFIX
    for offer, role in sorted(OFFER_ROLES.items())
    for channel in ROLE_CHANNELS[role]
]


def as_liquid(destination: str, source: str) -> str:
    """The template in plain Liquid that python-liquid renders (see the module docstring)."""
    if destination == "braze":
        source = re.sub(r"\{%.*?%\}", lambda tag: re.sub(r"\{\{\s*(.*?)\s*\}\}", r"\1", tag[0]), source, flags=re.S)
        return re.sub(r"\$\{(\w+)\}", r"\1", source)
    source = re.sub(r"\{\{!--.*?--\}\}", "", source, flags=re.S)
    source = re.sub(r"\{\{#if\s+(\w+)\s*\}\}", r"{% if \1 %}", source)
    return source.replace("{{else}}", "{% else %}").replace("{{/if}}", "{% endif %}")


def render(destination: str, source: str, profile: dict[str, Any], event: dict[str, Any]) -> str:
    template = LIQUID.from_string(as_liquid(destination, source))
    platform = PLATFORM_FIELDS[destination]
    if destination == "braze":
        return template.render(custom_attribute=profile, event_properties=event, **platform)
    return template.render(**{**profile, **event, **platform})


@pytest.fixture(scope="module")
def received(warehouse: WarehouseSettings, pg_conn: psycopg.Connection) -> dict[str, Any]:
    """What each destination holds after a sync: profiles and touchpoint events, by role."""
    build_marketplace(warehouse, pg_conn)
    settings = EmulatorSettings(braze_api_key=BRAZE_KEY, iterable_api_key=ITERABLE_KEY)
    with serve_in_thread(settings) as emulator:
        sync(warehouse, emulator, "templates")
        state = emulator.emulator.state()
    braze_profiles = {user["external_id"]: user["custom_attributes"] for user in state["braze"]["users"]}
    iterable_profiles = {user["userId"]: user["dataFields"] for user in state["iterable"]["users"]}
    return {
        "braze": (braze_profiles, [(e["external_id"], e["properties"]) for e in state["braze"]["events"]]),
        "iterable": (iterable_profiles, [(e["userId"], e["dataFields"]) for e in state["iterable"]["events"]]),
    }


def samples(
    received: dict[str, Any], destination: str, offer: str, channel: str
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(profile, touchpoint properties) pairs of the offer's role, the offer's own first, with every
    field some user of the role was sent present (nil where this user has none)."""
    profiles, events = received[destination]
    role = OFFER_ROLES[offer]
    people = {user: fields for user, fields in profiles.items() if fields.get("upshift_role") == role}
    touches = [(user, props) for user, props in events if user in people and "channel" in props]
    profile_keys = {key for fields in people.values() for key in fields}
    event_keys = {key for _, props in touches for key in props}
    touches.sort(key=lambda pair: (pair[1].get("offer_code") != offer, pair[1].get("channel") != channel))
    return [
        (
            {key: people[user].get(key) for key in profile_keys},
            {key: props.get(key) for key in event_keys},
        )
        for user, props in touches[:5]
    ]


def test_every_offer_and_channel_has_a_template_for_each_destination() -> None:
    found = sorted(
        (path.parent.parent.name, path.parent.name, path.stem)
        for destination, suffix in SUFFIX.items()
        for path in (TEMPLATES / destination).glob(f"*/*{suffix}")
    )

    assert found == sorted(EXPECTED)


@pytest.mark.parametrize(("destination", "offer", "channel"), EXPECTED, ids=["/".join(case) for case in EXPECTED])
def test_the_template_renders_with_only_fields_the_sync_sends(
    received: dict[str, Any], destination: str, offer: str, channel: str
) -> None:
    source = (TEMPLATES / destination / offer / f"{channel}{SUFFIX[destination]}").read_text(encoding="utf-8")
    pairs = samples(received, destination, offer, channel)

    rendered = [render(destination, source, profile, event) for profile, event in pairs]

    assert pairs, f"the sync sent no {OFFER_ROLES[offer]} touchpoints to {destination}"
    assert all("{{" not in text and "{%" not in text and "${" not in text for text in rendered)
    assert all(re.search(r"\d", text) for text in rendered)  # the personal numbers made it in


def test_a_template_quoting_a_field_the_sync_does_not_send_fails(received: dict[str, Any]) -> None:
    profile, event = samples(received, "braze", "worker_boost_trial", "in_app")[0]

    with pytest.raises(UndefinedError, match="upshift_lifetime_value"):
        render("braze", "You are worth {{custom_attribute.${upshift_lifetime_value}}}", profile, event)
    with pytest.raises(UndefinedError, match="views_last_year"):
        render("iterable", "{{#if views_last_year}}{{views_last_year}}{{/if}}", profile, event)


def test_templates_read_attributes_and_event_properties_in_each_platforms_syntax() -> None:
    braze = " ".join(path.read_text(encoding="utf-8") for path in (TEMPLATES / "braze").rglob("*.liquid"))
    iterable = " ".join(path.read_text(encoding="utf-8") for path in (TEMPLATES / "iterable").rglob("*.hbs"))

    assert "{{event_properties.${" in braze
    assert "{{custom_attribute.${upshift_" in braze
    assert "${" not in iterable
    assert "{{upshift_" in iterable
