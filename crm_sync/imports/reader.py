"""Streaming a CSV or XLSX file row by row, whatever its encoding and delimiter.

CSV: UTF-8 (with or without BOM) or cp1251 (detected on a 64 KiB sample: strict UTF-8 first,
then charset-normalizer among Cyrillic code pages); ``;``, ``,``, tab or ``|`` (counted on the
first line, csv.Sniffer when the first line has none). A UTF-8 file whose sample is plain ASCII
and which turns out to hold cp1251 bytes later is still read: stray bytes decode as cp1251.
XLSX: openpyxl in read-only mode, the first sheet, values only. Files that are neither (images,
archives, PDF, old .xls) are refused up front with a message saying what they look like.
"""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack
from datetime import date, time
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from crm_sync.imports.parse import CellValue
from povtor.errors import InvalidInput

SAMPLE_SIZE = 64 * 1024
_ERRORS = "povtor_cp1251_fallback"
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"\xd0\xcf\x11\xe0", "an old Excel .xls (save it as .xlsx or CSV)"),
)


def _cp1251_fallback(err: UnicodeError) -> tuple[str, int]:
    if not isinstance(err, UnicodeDecodeError):
        raise err
    chunk = err.object[err.start : err.end]
    return bytes(chunk).decode("cp1251", errors="replace"), err.end


class TableFile(AbstractContextManager["TableFile"]):
    """Rows of a CSV or XLSX file as lists of cell values; row numbers count from 1."""

    format: str = ""
    encoding: str | None = None
    delimiter: str | None = None

    def rows(self) -> Iterator[tuple[int, list[CellValue]]]:
        raise NotImplementedError

    def progress(self) -> tuple[int, int | None]:
        """(done, total) in bytes for CSV, rows for XLSX."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _cell(value: object) -> CellValue:
    """openpyxl values to plain cell values (rich text, durations and formulas as text)."""
    if value is None or isinstance(value, str | int | float | Decimal | date | time):
        return value
    return str(value)


def open_table(path: Path) -> TableFile:
    """Open a CSV or XLSX file for streaming; InvalidInput says why a file cannot be read."""
    try:
        size = path.stat().st_size
        with path.open("rb") as probe:
            head = probe.read(SAMPLE_SIZE)
    except OSError as err:
        raise InvalidInput(f"cannot read {path}: {err.strerror}") from err
    if size == 0 or not head.strip(b" \t\r\n\xef\xbb\xbf"):
        raise InvalidInput(f"{path.name} is empty: nothing to import")
    if head.startswith(b"PK\x03\x04") or path.suffix.lower() in (".xlsx", ".xlsm"):
        return XlsxTable(path)
    for magic, what in _MAGIC:
        if head.startswith(magic):
            raise InvalidInput(f"{path.name} is {what}, not a CSV or XLSX table")
    if b"\x00" in head:
        raise InvalidInput(f"{path.name} is a binary file, not a CSV or XLSX table")
    return CsvTable(path, head, size)


def detect_encoding(sample: bytes) -> str:
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(sample, final=False)  # a multi-byte char cut by the sample end is fine
    except UnicodeDecodeError:
        pass
    else:
        return "utf-8"
    from charset_normalizer import from_bytes

    best = from_bytes(sample, cp_isolation=["cp1251", "koi8_r", "cp866"]).best()
    return best.encoding if best is not None else "cp1251"


def detect_delimiter(sample_text: str) -> str:
    first_line = sample_text.lstrip("\ufeff").split("\n", 1)[0]
    counts = {d: first_line.count(d) for d in (";", ",", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    if counts[best] > 0:
        return best
    try:
        return csv.Sniffer().sniff(sample_text[:8192], delimiters=";,\t|").delimiter
    except csv.Error:
        return ","  # a single column


class CsvTable(TableFile):
    format = "csv"

    def __init__(self, path: Path, head: bytes, size: int) -> None:
        try:
            codecs.lookup_error(_ERRORS)
        except LookupError:
            codecs.register_error(_ERRORS, _cp1251_fallback)
        self.path = path
        self.size = size
        self.encoding = encoding = detect_encoding(head)
        self._utf8 = encoding.replace("-", "").startswith("utf8")
        sample_text = head.decode(encoding, errors=_ERRORS)
        self.delimiter = detect_delimiter(sample_text)
        self._stack = ExitStack()
        self._raw: BinaryIO = self._stack.enter_context(path.open("rb"))

    def rows(self) -> Iterator[tuple[int, list[CellValue]]]:
        errors = _ERRORS if self._utf8 else "replace"
        stream = io.TextIOWrapper(self._raw, encoding=self.encoding, errors=errors, newline="")
        self._stack.callback(stream.detach)
        reader = csv.reader(stream, delimiter=self.delimiter or ",")
        number = 0
        try:
            for record in reader:
                number += 1
                yield number, list(record)
        except csv.Error as err:
            raise InvalidInput(f"{self.path.name}: CSV broken after row {number}: {err}") from err

    def progress(self) -> tuple[int, int | None]:
        return self._raw.tell(), self.size

    def close(self) -> None:
        self._stack.close()


class XlsxTable(TableFile):
    format = "xlsx"

    def __init__(self, path: Path) -> None:
        from openpyxl import load_workbook

        self.path = path
        self._done = 0
        from openpyxl.utils.exceptions import InvalidFileException

        # A file object, so that openpyxl does not judge the file by its extension.
        self._handle: BinaryIO = path.open("rb")
        try:
            self._book = load_workbook(self._handle, read_only=True, data_only=True)
        except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as err:
            self._handle.close()
            raise InvalidInput(
                f"{path.name} is not a readable XLSX workbook (damaged or truncated?): {err}"
            ) from err
        sheet = self._book.active
        if sheet is None:
            raise InvalidInput(f"{path.name} has no worksheet")
        self._sheet = sheet
        self._total = getattr(sheet, "max_row", None)

    def rows(self) -> Iterator[tuple[int, list[CellValue]]]:
        try:
            for number, values in enumerate(self._sheet.iter_rows(values_only=True), start=1):
                self._done = number
                yield number, [_cell(v) for v in values]
        except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, KeyError) as err:
            raise InvalidInput(
                f"{self.path.name}: the workbook is damaged after row {self._done}: {err}"
            ) from err
        except Exception as err:  # openpyxl/lxml parse errors have no common base
            if type(err).__module__.split(".")[0] not in ("xml", "lxml", "openpyxl"):
                raise
            raise InvalidInput(
                f"{self.path.name}: the workbook is damaged after row {self._done}: {err}"
            ) from err

    def progress(self) -> tuple[int, int | None]:
        return self._done, self._total

    def close(self) -> None:
        self._book.close()
        self._handle.close()
