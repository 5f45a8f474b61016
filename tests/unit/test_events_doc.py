"""docs/EVENTS.md's table of durable events is generated from the payload Structs (fooddispatch/eventdocs.py):
the committed document must be what the code says, so a changed event type without a regenerated doc (or a
hand edit of the table) fails here."""

from __future__ import annotations

from pathlib import Path

import msgspec.inspect as mi
import pytest

from fooddispatch import eventdocs
from fooddispatch.eventdocs import BEGIN, DOC, END, PRODUCERS, all_events, field_text, rewrite, table


def test_the_committed_table_is_what_the_event_types_say() -> None:
    doc = DOC.read_text()
    assert rewrite(doc) == doc, "docs/EVENTS.md is stale: run python -m fooddispatch.eventdocs"


def test_every_event_type_has_one_row_with_its_fields_and_meaning() -> None:
    rows = {line.split(" | ")[0].removeprefix("| ").strip("`"): line for line in table().splitlines()[2:]}
    assert set(rows) == set(all_events())
    for event_type, kind in all_events().items():
        info = mi.type_info(kind)
        assert isinstance(info, mi.StructType)
        for field in info.fields:
            assert field_text(field).replace("|", "\\|") in rows[event_type], (event_type, field.name)
        assert (kind.__doc__ or "").split()[0] in rows[event_type]
    assert sum(len(kinds) for kinds in PRODUCERS.values()) == len(rows)


def test_the_check_fails_on_a_doc_that_differs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = tmp_path / "EVENTS.md"
    current = rewrite(DOC.read_text())
    monkeypatch.setattr(eventdocs, "DOC", doc)
    doc.write_text(current)
    assert eventdocs.main(["--check"]) == 0
    stale = current.replace("offer_id: str, courier_id: str", "offer_id: str", 1)
    assert stale != current
    doc.write_text(stale)
    assert eventdocs.main(["--check"]) == 1
    assert eventdocs.main([]) == 0 and doc.read_text() == current  # regenerating restores it
    doc.write_text(current.replace(BEGIN, "").replace(END, ""))
    with pytest.raises(ValueError, match="no generated table"):
        eventdocs.main(["--check"])
