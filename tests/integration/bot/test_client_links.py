"""`povtor client links --out DIR`: a CSV of every client's deep link and a QR code per client,
read back as a phone would (the QR images decoded with zxing-cpp)."""

from __future__ import annotations

import csv
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from bot.tokens import read_link_token
from crm_sync.history.store import SqlHistoryStore
from tests.integration.bot.conftest import make_client
from tests.integration.bot.test_cli import povtor

pytestmark = pytest.mark.telegram
LINK_RE = re.compile(r"https://t\.me/shop_bot\?start=([A-Za-z0-9_-]{1,64})")


def _rows(folder: Path) -> list[dict[str, str]]:
    with (folder / "links.csv").open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def _decoded(png: Path) -> list[str]:
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(png) as image:
        return [r.text for r in zxingcpp.read_barcodes(image)]


async def test_links_csv_and_qr_codes_open_each_clients_own_link(
    db_url: str, tmp_path: Path, store: SqlHistoryStore
) -> None:
    anna = await make_client(store, "CRM-1", name="Анна", phone="+79161234561")
    odd = await make_client(store, "1С/00;7", name="Пётр, ИП", phone="+79161234562", order=False)
    out = tmp_path / "export"
    code, stdout, err = await povtor(db_url, tmp_path, "client", "links", "--out", str(out))
    assert code == 0, err
    assert "2" in stdout
    rows = {row["external_id"]: row for row in _rows(out)}
    assert set(rows) == {"CRM-1", "1С/00;7"}
    assert rows["1С/00;7"]["name"] == "Пётр, ИП"
    for external_id, client in (("CRM-1", anna), ("1С/00;7", odd)):
        row = rows[external_id]
        match = LINK_RE.fullmatch(row["link"])
        assert match is not None, row
        claim = read_link_token("cli-secret", match.group(1), ttl=timedelta(days=1))
        assert claim is not None
        assert claim.client_id == client.id
        png = out / row["qr_file"]
        assert png.parent == out / "qr"
        assert _decoded(png) == [row["link"]]
        assert row["telegram_linked"] == "no"
    assert len(list((out / "qr").iterdir())) == 2


async def test_links_of_one_segment_and_a_json_summary(
    db_url: str, tmp_path: Path, store: SqlHistoryStore
) -> None:
    await make_client(store, "CRM-1", phone="+79161234561")  # one order long ago: lost
    await make_client(store, "CRM-2", phone="+79161234562", order=False)  # never ordered
    out = tmp_path / "export"
    args = ("client", "links", "--out", str(out), "--segment", "none", "--json")
    code, stdout, err = await povtor(db_url, tmp_path, *args)
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["clients"] == 1
    assert Path(summary["csv"]) == out / "links.csv"
    assert [row["external_id"] for row in _rows(out)] == ["CRM-2"]


async def test_links_refuse_an_unknown_segment(db_url: str, tmp_path: Path) -> None:
    args = ("client", "links", "--out", str(tmp_path / "x"), "--segment", "vip")
    code, _, err = await povtor(db_url, tmp_path, *args)
    assert code == 2
    assert "vip" in err
    assert not (tmp_path / "x").exists()
