"""The weekly growth review: every section and chart from a generated marketplace scored on two
dates a week apart, CSV extracts that match the marts, no contact details, honest "no data yet"
pages, hand-checked headline numbers, and a render in headless Chromium with a screenshot."""

from __future__ import annotations

import csv
import datetime as dt
import json
import shutil
import struct
import subprocess
import tempfile
import zlib
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.planted import PLANTED_DIR
from upshift.report import ReportResult, build_growth_review
from upshift.report.__main__ import main as report_main
from upshift.report.marts import MARTS, READY_LIST_LENGTH, read_marts
from upshift.warehouse import WarehouseSettings

AS_OF = dt.date(2026, 3, 1)
WEEK_BEFORE = AS_OF - dt.timedelta(days=7)
MARKETPLACE = {"clients": 300, "workers": 150, "days": 150, "seed": 11}
FIXTURES = Path(__file__).parent / "fixtures" / "report"
SECTIONS = (
    "headlines",
    "tier-mix",
    "expansion-mrr",
    "time-to-upgrade",
    "retention",
    "conversion",
    "addressable-gap",
    "signal-backtest",
)
CHARTS = (
    "tier-mix-client",
    "tier-mix-worker",
    "expansion-mrr",
    "expansion-share",
    "time-to-upgrade",
    "retention",
    "conversion",
)
EMPTY_PHRASES = ("no data yet", "no backtest yet", "no clients in the gap")
CHROMIUM_INSTALL = "apt-get update && apt-get install -y chromium"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

pytestmark = pytest.mark.slow


class ReviewPage(HTMLParser):
    """The review as the tests see it: each section's text and each chart's bars."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.sections: dict[str, str] = {}
        self.charts: dict[str, dict[str, int]] = {}
        self.scripts = 0
        self._section: str | None = None
        self._chart: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "section":
            self._section = attributes["id"]
            self.sections[self._section] = ""
        elif tag == "svg" and "data-chart" in attributes:
            self._chart = attributes["data-chart"]
            self.charts[self._chart] = {"declared": int(attributes["data-marks"] or 0), "bars": 0}
        elif tag == "rect" and self._chart and attributes.get("class") == "mark" and "data-value" in attributes:
            self.charts[self._chart]["bars"] += 1
        elif tag == "script" or (tag == "link" and attributes.get("href")) or attributes.get("src"):
            self.scripts += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self._section = None
        elif tag == "svg":
            self._chart = None

    def handle_data(self, data: str) -> None:
        if self._section:
            self.sections[self._section] += data


def _build(settings: WarehouseSettings, as_of: dt.date) -> None:
    from upshift.dbt import run_dbt

    run_dbt(
        ["build", "--exclude-resource-type", "unit_test", "--vars", json.dumps({"as_of_date": as_of.isoformat()})],
        settings,
    )


@pytest.fixture(scope="module")
def built(warehouse: WarehouseSettings, pg_conn: psycopg.Connection) -> WarehouseSettings:
    """A generated marketplace plus the planted users, scored a week before AS_OF and on AS_OF."""
    from upshift.generator import GenerationOptions, generate_marketplace, load_planted

    generate_marketplace(
        pg_conn, GenerationOptions(schema=warehouse.raw_schema, as_of=AS_OF, progress=False, **MARKETPLACE)
    )
    load_planted(pg_conn, PLANTED_DIR, as_of=AS_OF, schema=warehouse.raw_schema)
    for as_of in (WEEK_BEFORE, AS_OF):
        _build(warehouse, as_of)
    return warehouse


@pytest.fixture(scope="module")
def review(built: WarehouseSettings, tmp_path_factory: pytest.TempPathFactory) -> ReportResult:
    return build_growth_review(built, AS_OF, tmp_path_factory.mktemp("growth_review") / AS_OF.isoformat())


@pytest.fixture(scope="module")
def page(review: ReportResult) -> ReviewPage:
    return ReviewPage(review.html_path.read_text(encoding="utf-8"))


def _copy_of_marts(conn: psycopg.Connection, built: WarehouseSettings, schema: str) -> WarehouseSettings:
    """Empty tables shaped like the real marts in `<schema>_marts`; settings that read them."""
    copy = replace(built, schema=schema)
    conn.execute(sql.SQL("create schema {}").format(sql.Identifier(copy.layer_schema("marts"))))
    for mart in MARTS:
        conn.execute(
            sql.SQL("create table {} (like {})").format(copy.relation("marts", mart), built.relation("marts", mart))
        )
    return copy


def _load_fixture_marts(conn: psycopg.Connection, settings: WarehouseSettings, directory: Path = FIXTURES) -> None:
    for path in sorted(directory.glob("*.csv")):
        if path.stem not in MARTS:
            continue
        with path.open(encoding="utf-8") as handle:
            header = next(csv.reader(handle))
        columns = sql.SQL(", ").join(sql.Identifier(column) for column in header)
        query = sql.SQL("copy {} ({}) from stdin with (format csv, header true)").format(
            settings.relation("marts", path.stem), columns
        )
        with conn.cursor().copy(query) as copy:
            copy.write(path.read_bytes())


def _marts_from_fixtures(conn: psycopg.Connection, built: WarehouseSettings, folder: str) -> WarehouseSettings:
    """Marts of their own schema `<folder>_marts` holding the rows of tests/fixtures/report/<folder>/."""
    settings = _copy_of_marts(conn, built, folder)
    _load_fixture_marts(conn, settings, FIXTURES / folder)
    return settings


def _csv_rows(path: Path) -> int:
    with path.open(newline="", encoding="utf-8") as handle:
        return sum(1 for _ in csv.reader(handle)) - 1


def test_review_shows_every_section_with_non_empty_charts(page: ReviewPage) -> None:
    assert tuple(page.sections) == SECTIONS
    assert set(CHARTS) <= set(page.charts)
    for chart, bars in page.charts.items():
        assert bars["bars"] > 0, f"chart {chart} has no bars"
        assert bars["bars"] == bars["declared"], chart
    assert page.scripts == 0, "the review must be readable offline: no scripts or external assets"


def test_sections_without_enough_history_say_so_plainly(page: ReviewPage) -> None:
    for section in ("headlines", "tier-mix", "expansion-mrr", "retention", "conversion", "addressable-gap"):
        assert "no data yet" not in page.sections[section].lower(), section

    assert "needs 30 days of scoring history" in page.sections["signal-backtest"]
    assert "Nobody has sat at Ready or above for 30+ days" in page.sections["time-to-upgrade"]


def test_headlines_are_this_weeks_row_flagged_and_compared_with_last_week(
    review: ReportResult, built: WarehouseSettings, pg_conn: psycopg.Connection, page: ReviewPage
) -> None:
    row = pg_conn.execute(
        sql.SQL(
            "select expansion_share_of_new_mrr_pct, expansion_share_flag, addressable_clients from {} "
            "where as_of_date = %s"
        ).format(built.relation("marts", "growth_headlines")),
        (AS_OF,),
    ).fetchone()
    headlines = {headline.key: headline for headline in review.headlines}

    assert headlines["expansion_share"].value == pytest.approx(float(row[0]))
    assert headlines["expansion_share"].flag == row[1]
    assert headlines["addressable_gap"].value == row[2]
    for headline in review.headlines:
        assert headline.flag in {"green", "amber", "red", "grey", None}
        if headline.value is not None:
            assert "22 Feb 2026" in headline.change_display, headline
            assert headline.display in page.sections["headlines"]


def test_csv_extracts_hold_every_row_of_every_mart(
    review: ReportResult, built: WarehouseSettings, pg_conn: psycopg.Connection
) -> None:
    assert set(review.csv_paths) == set(MARTS)
    for mart, (_, dated) in MARTS.items():
        query = sql.SQL("select count(*) from {}" + (" where as_of_date <= %s" if dated else "")).format(
            built.relation("marts", mart)
        )
        expected = pg_conn.execute(query, (AS_OF,) if dated else ()).fetchone()[0]

        assert _csv_rows(review.csv_paths[mart]) == expected, mart
        assert review.csv_paths[mart].parent == review.html_path.parent


def test_review_never_shows_contact_details(
    review: ReportResult, built: WarehouseSettings, pg_conn: psycopg.Connection
) -> None:
    contacts = {
        value
        for (email, phone) in pg_conn.execute(
            sql.SQL("select email, phone from {}").format(sql.Identifier(built.raw_schema, "users"))
        )
        for value in (email, phone)
        if value and len(value) >= 6
    }
    written = [review.html_path, *review.csv_paths.values()]

    leaked = [path.name for path in written for value in contacts if value in path.read_text(encoding="utf-8")]

    assert contacts, "the generated users should have contact details to look for"
    assert leaked == []


def test_command_line_prints_headlines_and_the_report_path(
    built: WarehouseSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in built.env().items():
        monkeypatch.setenv(name, value)

    exit_code = report_main(["--as-of", AS_OF.isoformat(), "--out", str(tmp_path)])

    printed = capsys.readouterr().out
    assert exit_code == 0
    assert "Expansion share of new MRR" in printed
    assert "since 22 Feb 2026" in printed
    assert f"Report: {tmp_path / 'growth_review_2026-03-01.html'}" in printed
    assert (tmp_path / "growth_review_2026-03-01.html").is_file()
    assert "@" not in printed


def test_empty_marts_render_no_data_messages(
    built: WarehouseSettings, pg_conn: psycopg.Connection, tmp_path: Path
) -> None:
    empty = _copy_of_marts(pg_conn, built, "empty")

    result = build_growth_review(empty, AS_OF, tmp_path)

    page = ReviewPage(result.html_path.read_text(encoding="utf-8"))
    assert tuple(page.sections) == SECTIONS
    assert page.charts == {}
    for section in SECTIONS:
        text = page.sections[section].lower()
        assert any(phrase in text for phrase in EMPTY_PHRASES), section
    assert all(headline.value is None for headline in result.headlines)
    assert {name: _csv_rows(path) for name, path in result.csv_paths.items()} == dict.fromkeys(MARTS, 0)


def test_review_before_the_first_dbt_run_says_what_to_run(built: WarehouseSettings, tmp_path: Path) -> None:
    never_built = replace(built, schema="not_built_yet")

    result = build_growth_review(never_built, AS_OF, tmp_path)

    page = ReviewPage(result.html_path.read_text(encoding="utf-8"))
    for section in SECTIONS:
        assert "not in not_built_yet_marts" in page.sections[section], section
    assert result.csv_paths == {}


def test_hand_made_marts_show_the_expected_numbers_changes_and_lists(
    built: WarehouseSettings, pg_conn: psycopg.Connection, tmp_path: Path
) -> None:
    fixture = _copy_of_marts(pg_conn, built, "fixture")
    _load_fixture_marts(pg_conn, fixture)
    with (FIXTURES / "expected_headlines.csv").open(newline="", encoding="utf-8") as handle:
        expected = {row["key"]: row for row in csv.DictReader(handle)}

    result = build_growth_review(fixture, AS_OF, tmp_path / "this_week")
    first_week = build_growth_review(fixture, WEEK_BEFORE, tmp_path / "first_week")

    actual = {
        headline.key: {
            "key": headline.key,
            "display": headline.display,
            "flag": headline.flag or "",
            "change_display": headline.change_display,
        }
        for headline in result.headlines
    }
    assert actual == expected
    page = ReviewPage(result.html_path.read_text(encoding="utf-8"))
    stuck = page.sections["time-to-upgrade"]
    assert "3 users (2 clients, 1 worker)" in stuck
    assert stuck.index("c_fixture_stuck_longest") < stuck.index("w_fixture_stuck"), "longest streak first"
    assert "Repeat hire" in page.sections["signal-backtest"]
    assert "Tier Ready" in page.sections["signal-backtest"]
    assert "+12.0 pts" in page.sections["signal-backtest"]
    assert {headline.change_display for headline in first_week.headlines if headline.value is not None} == {
        "no review for 15 Feb 2026"
    }
    assert "measured as of 1 Mar 2026, not 22 Feb 2026" in first_week.html_path.read_text(encoding="utf-8")


def test_marts_with_a_row_per_user_are_read_as_what_the_page_shows(
    built: WarehouseSettings, pg_conn: psycopg.Connection, tmp_path: Path
) -> None:
    """A Ready 30+ list longer than the page's, and the built gap and upgrades: the review holds
    the top of the list, counts per plan and per duration, yet states the whole marts' numbers."""
    lists = _copy_of_marts(pg_conn, built, "long_lists")
    _load_fixture_marts(pg_conn, lists)
    for mart in ("addressable_gap", "time_to_upgrade"):
        pg_conn.execute(
            sql.SQL("insert into {} select * from {}").format(
                lists.relation("marts", mart), built.relation("marts", mart)
            )
        )
    ready = lists.relation("marts", "ready_without_conversion")
    pg_conn.execute(
        sql.SQL(
            "insert into {} select date '2026-03-01', 'w_long_' || i, 'worker', 'Ready', 55, date '2026-01-25', 35 "
            "from generate_series(1, 40) as i"
        ).format(ready)
    )

    def scalar(query: str, mart: str) -> int:
        return pg_conn.execute(sql.SQL(query).format(lists.relation("marts", mart))).fetchone()[0]

    marts = read_marts(lists, AS_OF)
    result = build_growth_review(lists, AS_OF, tmp_path)

    assert len(marts["ready_without_conversion"].rows) == READY_LIST_LENGTH
    plans = scalar("select count(distinct coalesce(current_plan_code, 'none')) from {}", "addressable_gap")
    assert len(marts["addressable_gap"].rows) == plans > 0
    durations = scalar("select count(distinct (days_to_upgrade, is_within_target)) from {}", "time_to_upgrade")
    assert len(marts["time_to_upgrade"].rows) == durations > 0
    page = ReviewPage(result.html_path.read_text(encoding="utf-8"))
    stuck = page.sections["time-to-upgrade"]
    listed = scalar("select count(*) from {}", "ready_without_conversion")
    workers = scalar("select count(*) from {} where role = 'worker'", "ready_without_conversion")
    assert f"{listed} users ({listed - workers} clients, {workers} workers)" in stuck
    assert f"{listed - READY_LIST_LENGTH} more in ready_without_conversion.csv" in stuck
    assert stuck.count("w_long_") == READY_LIST_LENGTH - 2, "the fixture's two longer streaks first"
    upgrades = scalar("select count(*) from {}", "time_to_upgrade")
    assert f"({upgrades:,} upgrades)" in stuck
    clients = scalar("select count(*) from {}", "addressable_gap")
    assert f"{clients:,}" in page.sections["addressable-gap"]
    assert _csv_rows(result.csv_paths["ready_without_conversion"]) == listed


def test_hand_made_marts_with_moved_targets_state_and_draw_the_rows_targets(
    built: WarehouseSettings, pg_conn: psycopg.Connection, tmp_path: Path
) -> None:
    fixture = _marts_from_fixtures(pg_conn, built, "moved_targets")

    result = build_growth_review(fixture, AS_OF, tmp_path)

    headlines = {headline.key: headline for headline in result.headlines}
    page = ReviewPage(result.html_path.read_text(encoding="utf-8"))
    assert {key: headline.flag for key, headline in headlines.items()} == {
        "expansion_share": "amber",
        "time_to_upgrade": "amber",
        "ready_without_conversion": "amber",
        "retention": "green",
        "conversion": "amber",
        "lift": "amber",
        "addressable_gap": None,
    }, "the cards carry the mart's flags, computed against the moved targets (64% retention over a 60% floor)"
    assert "Healthy 30-40%; below 20% the upsell motion is underdeveloped." in headlines["expansion_share"].detail
    assert "Target: within 10 days; amber within 12." in headlines["time_to_upgrade"].detail
    assert "Green under 20% of Ready and Overdue users, amber under 40%:" in (
        headlines["ready_without_conversion"].detail
    )
    assert "Below 60% the offer oversold what the tier delivers." in headlines["retention"].detail
    assert "Green from 15% (signal-triggered offers), amber above 8%" in headlines["conversion"].detail
    assert "above 5 pts, amber when the lift is above 3 pts" in headlines["lift"].detail
    expansion = page.sections["expansion-mrr"]
    for text in ("healthy at 30-40% and underdeveloped below 20%", "30% or more", "20-30%", "Below 20%"):
        assert text in expansion, text
    for band in ("Healthy, 30-40%", "Underdeveloped, below 20%"):
        assert band in expansion, f"the chart's band {band!r}"
    for text in ("within 10 days (target: most)", "Within 10 days", "After 10 days"):
        assert text in page.sections["time-to-upgrade"], text
    for text in ("60% floor", "60% or more", "Below 60%"):
        assert text in page.sections["retention"], text
    for text in ("15%: guide's floor for triggered", "8%: broadcast ceiling"):
        assert text in page.sections["conversion"], text
    everything = "".join(page.sections.values())
    for default in ("25-35%", "below 15%", "70%", "14 days", "12%:", "4%:"):
        assert default not in everything, f"the default target {default!r} leaked into a review with moved targets"


def test_a_headline_row_without_target_columns_says_so_and_draws_no_threshold(
    built: WarehouseSettings, pg_conn: psycopg.Connection, tmp_path: Path
) -> None:
    fixture = _marts_from_fixtures(pg_conn, built, "unrecorded_targets")

    result = build_growth_review(fixture, AS_OF, tmp_path)

    retention = next(headline for headline in result.headlines if headline.key == "retention")
    page = ReviewPage(result.html_path.read_text(encoding="utf-8"))
    assert (retention.display, retention.flag) == ("68.5%", "red")
    assert "Targets not recorded in this headline row" in retention.detail
    assert "not recorded for this date" in page.sections["retention"]
    assert "floor" not in page.sections["retention"]
    assert page.charts["retention"]["bars"] == 2, "the cohorts are still drawn, in series named by their flag"
    assert "On target" in page.sections["retention"]


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail(f"headless Chromium is needed to render the growth review; install it with: {CHROMIUM_INSTALL}")


def _run_chromium(chromium: str, *args: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        return subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=180,
            check=True,
        )


def _png_sample(path: Path, rows: int) -> tuple[int, int, float]:
    """Width, height and the share of non-white pixels in the top `rows` rows of an 8-bit,
    non-interlaced RGB(A) PNG, decoded with zlib alone."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    position, header, compressed = 8, b"", bytearray()
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind, body = data[position + 4 : position + 8], data[position + 8 : position + 8 + length]
        header = body if kind == b"IHDR" else header
        compressed += body if kind == b"IDAT" else b""
        position += 12 + length
    width, height, depth, color_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert (depth, interlace, color_type in (2, 6)) == (8, 0, True), "unexpected PNG format"
    channels = 3 if color_type == 2 else 4
    stride = width * channels
    raw = zlib.decompressobj().decompress(bytes(compressed), (stride + 1) * rows)
    previous, non_white = bytearray(stride), 0
    for row in range(min(rows, height)):
        kind, line = raw[row * (stride + 1)], bytearray(raw[row * (stride + 1) + 1 : (row + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, up_left = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                estimate = left + up - up_left
                distances = (abs(estimate - left), abs(estimate - up), abs(estimate - up_left))
                line[i] = (line[i] + (left, up, up_left)[distances.index(min(distances))]) & 0xFF
        non_white += sum(1 for x in range(0, stride, channels) if min(line[x : x + 3]) < 230)
        previous = line
    return width, height, non_white / (width * min(rows, height))


def test_headless_chromium_renders_every_section_and_keeps_a_screenshot(
    review: ReportResult, tmp_path_factory: pytest.TempPathFactory
) -> None:
    chromium = _chromium()
    screenshot = tmp_path_factory.mktemp("growth_review_screenshot") / f"growth_review_{AS_OF.isoformat()}.png"
    url = review.html_path.resolve().as_uri()

    dom = _run_chromium(chromium, "--dump-dom", url).stdout
    _run_chromium(chromium, f"--screenshot={screenshot}", "--window-size=1280,4000", url)

    rendered = ReviewPage(dom)
    assert tuple(rendered.sections) == SECTIONS
    assert all(rendered.charts[chart]["bars"] > 0 for chart in CHARTS)
    assert screenshot.stat().st_size > 50_000, "the screenshot is suspiciously small for a full report"
    width, height, inked = _png_sample(screenshot, rows=600)
    assert (width, height) == (1280, 4000)
    assert inked > 0.01, "the top of the screenshot is blank"
    print(f"growth review screenshot: {screenshot}")
