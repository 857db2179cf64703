"""The rejects file: every refused row with its row number and reason, next to the input."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, TextIO

from crm_sync.imports.parse import CellValue, text


def rejects_path(source: Path) -> Path:
    source = source.absolute()
    return source.with_name(source.name + ".rejects.csv")


class RejectsWriter:
    """Opens the file on the first reject (UTF-8 with BOM and ``;`` so Excel opens it as is)."""

    def __init__(self, source: Path) -> None:
        self.path = rejects_path(source)
        self.count = 0
        self._headers: list[str] = []
        self._file: TextIO | None = None
        self._out: Any = None
        self.path.unlink(missing_ok=True)  # a rejects file from an earlier run is stale

    def set_headers(self, headers: list[str]) -> None:
        self._headers = headers

    def add(self, row: int, reason: str, cells: list[CellValue]) -> None:
        self.count += 1
        if self._out is None:
            self._file = self.path.open("w", encoding="utf-8-sig", newline="")
            self._out = csv.writer(self._file, delimiter=";")
            self._out.writerow(["строка", "причина", *self._headers])
        self._out.writerow([row, reason, *(text(c) for c in cells)])

    @property
    def written(self) -> Path | None:
        return self.path if self._file is not None else None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
