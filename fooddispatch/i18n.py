"""The language of what people read: error messages and the apps' pages, in English or German, chosen by
`Accept-Language` (RFC 9110 §12.5.4: language ranges with q-values; `*` and unknown ones fall back to
English). Codes never change with the language, only the human `message`: clients branch on `code`.

A German message says what went wrong in general terms for its code; the English one may name the exact
item or field, and `param` still does in both."""

from __future__ import annotations

import msgspec

from fooddispatch.messages_de import ERRORS_DE, STATUS_DE

ENGLISH = "en"
GERMAN = "de"
SUPPORTED = (ENGLISH, GERMAN)
_json = msgspec.json.Decoder()
_encode = msgspec.json.Encoder().encode


def negotiate(accept_language: str | None) -> str:
    """The supported language the client prefers most (`de-AT;q=0.8` counts as `de`); English when the
    header is missing, malformed, or names nothing we speak. Ties keep the client's order."""
    if not accept_language:
        return ENGLISH
    best, best_q = ENGLISH, 0.0
    for part in accept_language.split(",")[:20]:  # a long header is someone's mistake, not a preference
        tag, _, params = part.strip().partition(";")
        language = tag.strip().lower().split("-")[0]
        q = _quality(params)
        if language in SUPPORTED and q > best_q:
            best, best_q = language, q
    return best


def _quality(params: str) -> float:
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                q = float(value)
            except ValueError:
                return 0.0
            return q if 0.0 <= q <= 1.0 else 0.0
    return 1.0


def error_message(code: str, status: int, language: str) -> str | None:
    """The message for `code` in `language`; None for English (the raised message stays as it is)."""
    if language != GERMAN:
        return None
    return ERRORS_DE.get(code) or STATUS_DE.get(status) or STATUS_DE[500 if status >= 500 else 400]


def translate_error_body(body: bytes, status: int, language: str) -> bytes | None:
    """An error response's JSON with its message in `language`, or None when there is nothing to change
    (English, or not our error shape)."""
    if language == ENGLISH:
        return None
    try:
        document = _json.decode(body)
    except msgspec.DecodeError:
        return None
    error = document.get("error") if isinstance(document, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("code"), str):
        return None
    message = error_message(error["code"], status, language)
    if message is None:
        return None
    error["message"] = message
    return _encode(document)
