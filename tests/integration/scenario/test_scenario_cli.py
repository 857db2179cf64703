"""`povtor scenario check|render|try` run as a manager runs them, against a real database."""

from __future__ import annotations

import asyncio
import os
import sys
import wave
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from app import cli
from crm_sync.history.store import ClientInput, OrderInput, SqlHistoryStore
from povtor.domain import OrderItem
from voice.scenario import SHIPPED


async def povtor(tmp_path: Path, *args: str, stdin: str = "", **env: str) -> tuple[int, str]:
    environment = {
        **os.environ,
        "POVTOR_DATA_DIR": str(tmp_path / "data"),
        "POVTOR_CALL_TTS_ENGINE": "espeak",
        "POVTOR_CALL_COMPANY_NAME": "Кофейня «Зерно»",
        **env,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app", "scenario", *args, env=environment, cwd=tmp_path,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await process.communicate(stdin.encode())
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_render_writes_every_prompt_as_a_wav_with_the_clients_values(
    tmp_path: Path, db_url: str, store: SqlHistoryStore
) -> None:
    client = await store.create_client(ClientInput(external_id="C1", name="Анна Смирнова"))
    await store.add_order(
        OrderInput(
            external_id="O1",
            client_external_id="C1",
            placed_at=datetime.now(UTC) - timedelta(days=30),
            amount=Decimal("1500"),
            items=(OrderItem(name="кофе в зёрнах", category="coffee"),),
        )
    )
    out = tmp_path / "prompts"
    code, text = await povtor(
        tmp_path, "render", str(SHIPPED / "reorder.yaml"), "--client", str(client.id),
        "--out", str(out), POVTOR_DATABASE_URL=db_url,
    )  # fmt: skip
    assert code == 0, text
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        f"{n}.wav"
        for n in (
            "disclosure", "optout_say", "later_say", "remind", "remind.retry",
            "agreed", "declined", "later", "unclear",
            "transfer_failed_say", "handover", "handover_callback",
        )
    )  # fmt: skip
    for path in out.iterdir():
        with wave.open(str(path), "rb") as wav:
            assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
            assert wav.getnframes() > 8000  # at least a second of speech
    assert "голосовой робот службы заботы о клиентах кофейни «Зерно»" in text
    assert "вы заказывали у нас кофе в зёрнах" in text
    assert "{{" not in text


async def test_render_of_an_unknown_client_says_so(
    tmp_path: Path, db_url: str, store: SqlHistoryStore
) -> None:
    code, text = await povtor(
        tmp_path, "render", str(SHIPPED / "nps.yaml"), "--client", "999",
        "--out", str(tmp_path / "out"), POVTOR_DATABASE_URL=db_url,
    )  # fmt: skip
    assert code == 1, text
    assert "error:" in text
    assert not (tmp_path / "out").exists()


def run_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *args: str, stdin: str = ""
) -> Result:
    """In this process (no database, no asyncio loop running): quicker than a subprocess."""
    monkeypatch.setenv("POVTOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("POVTOR_CALL_COMPANY_NAME", "Кофейня «Зерно»")
    return CliRunner().invoke(cli.app, ["scenario", *args], input=stdin)


def test_try_walks_a_branch_with_typed_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_cli(
        tmp_path, monkeypatch, "try", str(SHIPPED / "nps.yaml"), stdin="9\nбыстрая доставка\n"
    )
    text = result.output
    assert result.exit_code == 0, text
    assert "робот [disclosure]: Здравствуйте! Вам звонит голосовой робот" in text
    assert "робот [ask_high]: Спасибо! Что позволило нам получить такую высокую оценку?" in text
    assert "finished: end" in text
    assert "'score': 9" in text


def test_check_fails_on_errors_and_warns_without_failing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_cli(tmp_path, monkeypatch, "check", *(str(p) for p in SHIPPED.glob("*.yaml")))
    assert result.exit_code == 0, result.output
    assert result.output.count(": ok") == 3
    broken = tmp_path / "nps.yaml"
    shipped = (SHIPPED / "nps.yaml").read_text(encoding="utf-8")
    broken.write_text(shipped.replace("next: thanks", "next: thank_you", 1), encoding="utf-8")
    result = run_cli(tmp_path, monkeypatch, "check", str(broken))
    assert result.exit_code == 1
    assert f"{broken}:" in result.output
    assert "error: step 'ask_high': `next` names no step 'thank_you'" in result.output
    silent = tmp_path / "winback.yaml"
    shipped = (SHIPPED / "winback.yaml").read_text(encoding="utf-8")
    start, end = shipped.index("disclosure:"), shipped.index("steps:")
    silent.write_text(shipped[:start] + 'disclosure: ""\n' + shipped[end:], encoding="utf-8")
    result = run_cli(tmp_path, monkeypatch, "check", str(silent))
    assert result.exit_code == 0, result.output
    assert "warning: `disclosure` is empty" in result.output
    assert run_cli(tmp_path, monkeypatch, "check", "--strict", str(silent)).exit_code == 1
