"""The rejects file: every refused row with its row number and reason, next to the input.

The notes file beside it has the same shape: rows that were imported with a field dropped.
Cells are written so that a spreadsheet shows them as text: one that starts like a formula
(``=``, ``+``, ``-``, ``@``, tab, carriage return) gets a leading apostrophe (CSV injection).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, TextIO

from crm_sync.imports.parse import CellValue, text

REJECTS_SUFFIX = ".rejects.csv"
NOTES_SUFFIX = ".notes.csv"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def rejects_path(source: Path, suffix: str = REJECTS_SUFFIX) -> Path:
    source = source.absolute()
    return source.with_name(source.name + suffix)


def neutralised(value: str) -> str:
    """A cell a spreadsheet will not run as a formula."""
    return "'" + value if value.startswith(_FORMULA_START) else value


class RejectsWriter:
    """Opens the file on the first reject (UTF-8 with BOM and ``;`` so Excel opens it as is)."""

    def __init__(self, source: Path, suffix: str = REJECTS_SUFFIX) -> None:
        self.path = rejects_path(source, suffix)
        self.count = 0
        self._headers: list[str] = []
        self._file: TextIO | None = None
        self._out: Any = None
        self.path.unlink(missing_ok=True)  # a file from an earlier run is stale

    def set_headers(self, headers: list[str]) -> None:
        self._headers = headers

    def add(self, row: int, reason: str, cells: list[CellValue]) -> None:
        self.count += 1
        if self._out is None:
            self._file = self.path.open("w", encoding="utf-8-sig", newline="")
            self._out = csv.writer(self._file, delimiter=";")
            self._out.writerow(["строка", "причина", *(neutralised(h) for h in self._headers)])
        self._out.writerow([row, neutralised(reason), *(neutralised(text(c)) for c in cells)])

    @property
    def written(self) -> Path | None:
        return self.path if self._file is not None else None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
