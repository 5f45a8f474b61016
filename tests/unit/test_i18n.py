"""English and German: the language chosen from Accept-Language, every error code raised in the packages
has a German message, and the pages' word tables (`/assets/apps/i18n.js`) have the same keys in both
languages and every key the pages use."""

from __future__ import annotations

import json
import re
from pathlib import Path

import msgspec
import pytest

from fooddispatch import i18n
from fooddispatch.errors import _HTTP_CODES, UNAVAILABLE
from fooddispatch.messages_de import ERRORS_DE
from orders.model import Status

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ["catalog", "dispatch", "geo", "kernel", "memberships", "orders", "payments", "tracking", "fooddispatch"]
STATIC = ROOT / "fooddispatch" / "apps" / "static"
# `code = "x"`, `code: ClassVar[str] = "x"`, `code="x"` and `error_response(404, "x", ...)`
CODE_PATTERNS = [re.compile(r'\bcode\s*(?::\s*ClassVar\[str\])?\s*=\s*"([a-z][a-z0-9_]*)"'),
                 re.compile(r'error_response\(\s*\d+,\s*"([a-z][a-z0-9_]*)"')]


@pytest.mark.parametrize(("header", "language"), [
    (None, "en"), ("", "en"), ("de", "de"), ("de-DE,de;q=0.9,en;q=0.8", "de"), ("en-US,en;q=0.9,de;q=0.8", "en"),
    ("fr-FR,de;q=0.5", "de"), ("fr,it", "en"), ("*", "en"), ("de;q=0", "en"), ("en;q=0.2,de;q=0.7", "de"),
    ("de;q=abc", "en"), ("DE-at", "de"), (";;;,,,", "en"), ("de;q=2", "en"),
])
def test_the_language_is_the_most_preferred_one_we_speak(header: str | None, language: str) -> None:
    assert i18n.negotiate(header) == language


def raised_codes() -> set[str]:
    codes = {code for code, _, _ in UNAVAILABLE.values()} | set(_HTTP_CODES.values())
    for package in PACKAGES:
        for source in (ROOT / package).rglob("*.py"):
            text = source.read_text()
            for pattern in CODE_PATTERNS:
                codes.update(pattern.findall(text))
    return codes


def test_every_error_code_raised_in_the_packages_has_a_german_message() -> None:
    codes = raised_codes()
    assert len(codes) > 60  # the scan finds the codes (it would pass vacuously if the patterns broke)
    assert sorted(codes - ERRORS_DE.keys()) == []


def test_a_german_error_keeps_its_code_param_and_extras_and_only_the_message_changes() -> None:
    body = msgspec.json.encode({"error": {"code": "quote_expired", "message": "quote q_1 expired at 12:00",
                                          "param": "quote_id", "request_id": "req_1"}})
    translated = json.loads(i18n.translate_error_body(body, 409, "de") or b"null")
    assert translated == {"error": {"code": "quote_expired", "message": ERRORS_DE["quote_expired"],
                                    "param": "quote_id", "request_id": "req_1"}}
    assert i18n.translate_error_body(body, 409, "en") is None  # English: the raised message as it was


def test_a_code_without_a_translation_gets_its_status_message_and_other_bodies_are_left_alone() -> None:
    body = msgspec.json.encode({"error": {"code": "brand_new_code", "message": "new", "param": None}})
    assert json.loads(i18n.translate_error_body(body, 404, "de") or b"null")["error"]["message"] == "Nicht gefunden."
    assert json.loads(i18n.translate_error_body(body, 418, "de") or b"null")["error"]["message"] == (
        "Die Anfrage ist ungültig.")
    for other in (b"not json", b'{"items": []}', b'{"error": "text"}', b'{"error": {"message": "no code"}}'):
        assert i18n.translate_error_body(other, 400, "de") is None


def word_tables() -> dict[str, set[str]]:
    """The keys of each language's table in i18n.js (one `'key': ...` per entry, two per line at most)."""
    source = (STATIC / "apps" / "i18n.js").read_text()
    tables: dict[str, set[str]] = {}
    for language, body in re.findall(r"\n    (\w+): \{\n(.*?)\n    \},", source, re.S):
        tables[language] = set(re.findall(r"'([a-z_]+\.[a-z_.]+)':", body))
    return tables


def test_both_languages_have_the_same_words() -> None:
    tables = word_tables()
    assert set(tables) == {"en", "de"}
    assert len(tables["en"]) > 100
    assert sorted(tables["en"] ^ tables["de"]) == []


def used_keys() -> set[str]:
    keys: set[str] = set()
    for page in ("track", "tablet", "courier"):
        for source in (STATIC / page).glob("*.*"):
            text = source.read_text(errors="ignore")
            keys.update(re.findall(r"\bt\('([a-z_]+\.[a-z_.]+)'", text))
            for pair in re.findall(r"\bt\([^()]*\? '([a-z_]+\.[a-z_.]+)' : '([a-z_]+\.[a-z_.]+)'", text):
                keys.update(pair)  # t(cond ? 'a.b' : 'a.c')
            keys.update(re.findall(r'data-t(?:-placeholder)?="([a-z_.]+)"', text))
    return keys


def test_every_word_a_page_uses_is_in_the_tables() -> None:
    used = used_keys()
    assert len(used) > 80
    assert sorted(used - word_tables()["en"]) == []


def test_every_order_status_has_a_headline_and_the_steps_have_labels() -> None:
    """track.js builds `headline.<status>` and `step.<status>` from the order's status."""
    words = word_tables()["en"]
    assert sorted(f"headline.{s}" for s in Status if f"headline.{s}" not in words) == []
    track = (STATIC / "track" / "track.js").read_text()
    steps = re.search(r"const STEPS = \[(.*?)\];", track, re.S)
    assert steps is not None
    assert sorted(f"step.{s}" for s in re.findall(r"'(\w+)'", steps.group(1)) if f"step.{s}" not in words) == []
