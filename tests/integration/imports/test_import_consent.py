"""A consent column in a client export: advertising consent with its date and source."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_sync.history.store import SqlHistoryStore
from crm_sync.imports.consent import parse_consent
from crm_sync.imports.headers import Kind
from crm_sync.imports.parse import CellError
from crm_sync.imports.run import import_file
from povtor.domain import ConsentChannel, ContactKind, EventKind
from tests.integration.imports.conftest import read_rejects, write_csv

ADS = ContactKind.ADVERTISING


@pytest.mark.parametrize(
    ("cell", "expected"),
    [("Да", True), ("yes", True), ("1", True), ("+", True), ("Согласен", True), (1, True),
     ("нет", False), ("No", False), ("0", False), ("отказ", False), ("не согласен", False),
     ("", None), (None, None), ("  ", None)],
)  # fmt: skip
def test_consent_cells_in_the_usual_spellings(cell: object, expected: bool | None) -> None:
    assert parse_consent(cell) is expected  # type: ignore[arg-type]


def test_an_unreadable_consent_cell_is_rejected_with_the_reason() -> None:
    with pytest.raises(CellError, match="согласие"):
        parse_consent("может быть")


async def test_consent_column_with_date_and_source_is_recorded_once(
    engine: AsyncEngine, store: SqlHistoryStore, files: Path
) -> None:
    header = ["Код клиента", "ФИО", "Телефон", "Согласие на рассылку", "Дата согласия",
              "Источник согласия"]  # fmt: skip
    path = write_csv(
        files / "clients.csv",
        [
            header,
            ["C1", "Иван", "89161234567", "да", "01.02.2025", "сайт"],
            ["C2", "Мария", "89161234568", "нет", "", ""],
            ["C3", "Пётр", "89161234569", "", "", ""],
            ["C4", "Ольга", "89161234560", "наверное", "", ""],
        ],
    )
    first = await import_file(engine, Kind.CLIENTS, path)
    await import_file(engine, Kind.CLIENTS, path)  # the same file again changes nothing

    assert (first.created, first.rejected) == (3, 1)
    assert first.rejects_file is not None
    assert any("согласие" in cell for cell in read_rejects(first.rejects_file)[0])
    ivan = await store.find_client("C1")
    assert ivan is not None
    for channel in (ConsentChannel.CALL, ConsentChannel.TELEGRAM):
        consent = ivan.consent_for(channel, ADS)
        assert consent is not None
        assert consent.granted is True
        assert consent.source == "import:сайт"
        assert consent.at == datetime(2025, 1, 31, 21, 0, tzinfo=UTC)  # Moscow midnight
    maria = await store.find_client("C2")
    assert maria is not None
    refused = maria.consent_for(ConsentChannel.CALL, ADS)
    assert refused is not None
    assert refused.granted is False
    petr = await store.find_client("C3")
    assert petr is not None
    assert petr.consent_for(ConsentChannel.CALL, ADS) is None
    events = await store.timeline(ivan.id)
    assert [e.kind for e in events].count(EventKind.CONSENT) == 1
