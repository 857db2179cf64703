"""Streaming a CSV or XLSX file row by row, whatever its encoding and delimiter.

CSV: UTF-8 (with or without BOM) or cp1251 (detected on a 64 KiB sample: strict UTF-8 first,
then charset-normalizer among Cyrillic code pages); ``;``, ``,``, tab or ``|`` (counted on the
first line, csv.Sniffer when the first line has none). A UTF-8 file whose sample is plain ASCII
and which turns out to hold cp1251 bytes later is still read: stray bytes decode as cp1251.
XLSX: openpyxl in read-only mode, the first sheet, values only. Files that are neither (images,
archives, PDF, old .xls) are refused up front with a message saying what they look like.

A damaged line does not end the file: a quote that is never closed within a sane span (it would
swallow the following rows), a line the csv module cannot read, or a NUL byte comes out as a
``BrokenRow`` (the raw line and the reason) and reading goes on with the next line. An XLSX
formula without a stored result comes out as a ``Formula`` cell, not as an empty one.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack
from datetime import date, time
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, TextIO

from crm_sync.imports.parse import CellValue, Formula
from povtor.errors import InvalidInput

SAMPLE_SIZE = 64 * 1024
# A quoted cell may hold line breaks (addresses, comments); past these bounds an open quote is a
# typo that would swallow the rest of the file into one cell.
MAX_RECORD_LINES = 20
MAX_RECORD_CHARS = 32 * 1024
_FORMULA_TAG = re.compile(rb"<(?:\w+:)?f[\s>/]")
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


class BrokenRow(list[CellValue]):
    """A line that could not be read as a row: its raw text (one cell) and the reason."""

    def __init__(self, raw: str, reason: str) -> None:
        super().__init__([raw.rstrip("\r\n")])
        self.reason = reason


class TableFile(AbstractContextManager["TableFile"]):
    """Rows of a CSV or XLSX file as lists of cell values; row numbers count from 1."""

    format: str = ""
    encoding: str | None = None
    delimiter: str | None = None
    has_formulas: bool = False
    # The header's shape, once known (a row spanning several lines must fit it): columns up to
    # the last named one (the fewest a row may have) and all columns.
    width: int | None = None
    columns: int | None = None

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


def _formula_cell(value: object, formula: object) -> CellValue:
    """A cell's stored value, or the formula when Excel never computed one."""
    if value is None and formula is not None:
        text = formula if isinstance(formula, str) else getattr(formula, "text", None)
        if isinstance(text, str) and text.startswith("="):
            return Formula(text)
    return _cell(value)


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
        self._first_line = sample_text.lstrip("\ufeff").split("\n", 1)[0]
        self._stack = ExitStack()
        self._raw: BinaryIO = self._stack.enter_context(path.open("rb"))

    def rows(self) -> Iterator[tuple[int, list[CellValue]]]:
        errors = _ERRORS if self._utf8 else "replace"
        stream = io.TextIOWrapper(self._raw, encoding=self.encoding, errors=errors, newline="")
        self._stack.callback(stream.detach)
        lines = _Lines(stream)
        delimiter = self.delimiter or ","
        reader = csv.reader(lines.feed(), delimiter=delimiter)
        taken = lines.taken
        number = 0
        while True:
            taken.clear()
            lines.nul = lines.ended = lines.runaway = False
            row: list[CellValue]
            try:
                record = next(reader, None)
            except csv.Error as err:
                if not taken:
                    raise InvalidInput(
                        f"{self.path.name}: CSV broken after row {number}: {err}"
                    ) from err
                row = self._broken(lines, f"строка не читается как CSV: {err}")
            else:
                if lines.runaway:  # the feed stopped the record
                    row = self._broken(lines, "кавычка не закрыта или строка слишком длинная")
                elif record is None:
                    return
                elif len(taken) == 1 and not lines.nul:
                    row = record  # type: ignore[assignment]  # str cells; nearly every row
                else:
                    row = self._checked(lines, record)
            if isinstance(row, BrokenRow) and (lines.runaway or lines.ended):
                # the feed has ended: the lines given back are read by a new one
                reader = csv.reader(lines.feed(), delimiter=delimiter)
            number += 1
            yield number, row

    def _checked(self, lines: _Lines, record: list[str]) -> list[CellValue]:
        if lines.nul:
            return BrokenRow("".join(lines.taken), "в строке нулевой байт (\\0): файл повреждён?")
        if len(lines.taken) > 1 and (lines.ended or not self._fits(record)):
            # an open quote closed by a stray one further down, or never
            return self._broken(lines, "кавычка не закрыта в этой строке")
        return list(record)

    def _fits(self, record: list[str]) -> bool:
        """A record over several lines is one row if it has the header's shape and none of
        its multi-line cells holds a row's worth of delimiters (swallowed rows)."""
        delimiter = self.delimiter or ","
        if self.width is None or self.columns is None:  # looking for the header: its likely shape
            enough = max(self._first_line.count(delimiter), 1)
        elif len(record) < self.width or any(c.strip() for c in record[self.columns :]):
            return False
        else:
            enough = max(self.width - 1, 1)
        return not any(
            ("\n" in cell or "\r" in cell) and cell.count(delimiter) >= enough for cell in record
        )

    @staticmethod
    def _broken(lines: _Lines, reason: str) -> BrokenRow:
        """The record's first line is the bad one; the lines it swallowed are read again."""
        first, rest = lines.taken[0], lines.taken[1:]
        lines.push_back(rest)
        lines.taken.clear()
        return BrokenRow(first, reason)

    def progress(self) -> tuple[int, int | None]:
        return self._raw.tell(), self.size

    def close(self) -> None:
        self._stack.close()


class _Lines:
    """Physical lines fed to csv.reader, kept until the record they make is complete.

    The feed is a generator (cheap per line); when a record grows past MAX_RECORD_LINES or
    MAX_RECORD_CHARS it ends, so the reader returns what it has, and ``runaway`` says why.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._back: list[str] = []  # lines to read again, last first
        self.taken: list[str] = []  # the lines of the record being read
        self.nul = False
        self.ended = False
        self.runaway = False

    def push_back(self, lines: list[str]) -> None:
        self._back.extend(reversed(lines))

    def feed(self) -> Iterator[str]:
        back, taken, readline = self._back, self.taken, self._stream.readline
        while True:
            if back:
                line = back.pop()
            else:
                line = readline()
                if not line:
                    self.ended = True
                    return
            taken.append(line)
            if "\x00" in line:
                self.nul = True
            if len(line) > MAX_RECORD_CHARS or (
                len(taken) > 1
                and (len(taken) > MAX_RECORD_LINES or sum(map(len, taken)) > MAX_RECORD_CHARS)
            ):
                self.runaway = True
                return
            yield line


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
        self._formulas: Any = None
        self.has_formulas = self._sheet_has_formulas(getattr(sheet, "_worksheet_path", None))
        if self.has_formulas:  # a second pass over the same sheet, formulas instead of values
            self._handle_f: BinaryIO = path.open("rb")
            self._formula_book = load_workbook(self._handle_f, read_only=True, data_only=False)
            self._formulas = self._formula_book[sheet.title]

    def _sheet_has_formulas(self, member: str | None) -> bool:
        """Look for formula tags in the sheet's XML (cheap next to parsing it)."""
        if member is None:
            return False
        try:
            with zipfile.ZipFile(self.path) as archive, archive.open(member) as xml:
                tail = b""
                while chunk := xml.read(1 << 20):
                    if _FORMULA_TAG.search(tail + chunk):
                        return True
                    tail = chunk[-16:]
        except (zipfile.BadZipFile, zlib.error, KeyError, EOFError, OSError):
            return False  # reading the rows says what is wrong
        return False

    def rows(self) -> Iterator[tuple[int, list[CellValue]]]:
        try:
            values_rows = self._sheet.iter_rows(values_only=True)
            if self._formulas is None:
                for number, values in enumerate(values_rows, start=1):
                    self._done = number
                    yield number, [_cell(v) for v in values]
                return
            formula_rows = self._formulas.iter_rows(values_only=True)
            for number, values in enumerate(values_rows, start=1):
                self._done = number
                formulas = next(formula_rows, ())
                padded = list(formulas) + [None] * (len(values) - len(formulas))
                yield number, [_formula_cell(v, f) for v, f in zip(values, padded, strict=False)]
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
        if self._formulas is not None:
            self._formula_book.close()
            self._handle_f.close()
