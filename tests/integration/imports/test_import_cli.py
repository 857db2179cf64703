"""`povtor import` as a real process: the --json contract and error messages."""

from __future__ import annotations

from pathlib import Path

from tests.integration.imports.conftest import last_json, run_povtor, write_csv


def test_import_clients_json_summary_is_the_last_line(db_url: str, files: Path) -> None:
    path = write_csv(
        files / "clients.csv",
        [["Код клиента", "ФИО", "Телефон"], ["C1", "Иван", "89161234567"], ["C2", "Ы", "xx"]],
    )
    first = run_povtor(db_url, "import", "clients", str(path), "--json", cwd=files)
    again = run_povtor(db_url, "import", "clients", str(path), "--json", cwd=files)

    assert first.returncode == 0, first.stderr
    rejects = str(path.with_name("clients.csv.rejects.csv"))
    assert last_json(first.stdout) == {
        "created": 1,
        "updated": 0,
        "unchanged": 0,
        "rejected": 1,
        "rejects_file": rejects,
    }
    assert last_json(again.stdout)["unchanged"] == 1


def test_rejects_file_is_null_when_every_row_is_good(db_url: str, files: Path) -> None:
    path = write_csv(files / "ok.csv", [["client_id", "name"], ["C1", "Иван"]])
    result = run_povtor(db_url, "import", "clients", str(path), "--json", cwd=files)
    assert last_json(result.stdout)["rejects_file"] is None


def test_empty_file_is_a_clear_error(db_url: str, files: Path) -> None:
    path = files / "empty.csv"
    path.write_bytes(b"")
    result = run_povtor(db_url, "import", "clients", str(path), "--json", cwd=files)
    assert result.returncode == 1
    assert "empty.csv is empty" in result.stderr
    assert "Traceback" not in result.stderr
