"""The cell texts of spreadsheet workbooks: Excel's ``.xlsx``/``.xlsm`` and OpenDocument ``.ods``.

Sound libraries ship their metadata sheets as Excel workbooks more often than as CSV, sometimes
with a "Read me" worksheet first and one worksheet per category. :func:`workbook_tables` gives
each worksheet's non-empty rows as lists of strings, as a user sees the cells: text as written,
whole numbers without ".0", dates as ISO dates, formulas by their last computed value. ``.xlsx``
is read by openpyxl (read-only, streamed); ``.ods`` from its ``content.xml``, streamed with the
standard library (the displayed text of each cell, repeated cells and rows expanded).
"""
from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path
from typing import Any, Iterator

from engine.errors import InvalidQuery

#: suffixes :func:`workbook_tables` reads
WORKBOOK_SUFFIXES = (".xlsx", ".xlsm", ".ods")
#: spreadsheet files it cannot read, and what to save them as
UNREADABLE_WORKBOOKS = {".xls": "an Excel 97–2003 workbook", ".numbers": "an Apple Numbers document",
                        ".xlsb": "an Excel binary workbook"}
#: most copies made of one repeated row or cell (an ODS file repeats an empty row to the sheet's
#: end, a million times; a non-empty one this many times at most)
MAX_REPEAT = 10_000
#: most columns kept of a row (a metadata sheet has tens; a repeated or formatted cell could claim thousands)
MAX_COLUMNS = 1024
#: largest uncompressed ``content.xml`` read (a zip bomb is not a metadata sheet)
MAX_CONTENT_BYTES = 1 << 30

#: what a spreadsheet takes a typed or imported cell to be a formula by when it starts with it
#: (Excel, LibreOffice, Google Sheets): a description "=HYPERLINK(…)" or "-6 dB hit" from a file
#: or a sheet must stay text
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: what marks such a text as text in a CSV (a leading apostrophe, as Excel shows a text cell typed so)
TEXT_MARK = "'"

_TABLE = "{urn:oasis:names:tc:opendocument:xmlns:table:1.0}"
_TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"

Table = list[list[str]]


def workbook_tables(path: str | Path) -> list[tuple[str, Table]]:
    """(worksheet name, its non-empty rows) for each worksheet of the workbook at ``path``, in
    the workbook's order. InvalidQuery naming the file when it is not a readable workbook."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in UNREADABLE_WORKBOOKS:
        raise InvalidQuery(f"{path}: {UNREADABLE_WORKBOOKS[suffix]}; save it as .xlsx, .ods or CSV and import that")
    if suffix == ".ods":
        return _ods_tables(path)
    if suffix in (".xlsx", ".xlsm"):
        return _xlsx_tables(path)
    raise InvalidQuery(f"{path}: not a workbook ({', '.join(WORKBOOK_SUFFIXES)})")


def _xlsx_tables(path: Path) -> list[tuple[str, Table]]:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException
    try:
        book = load_workbook(path, read_only=True, data_only=True)
        try:                                    # read-only sheets parse as they are iterated
            return [(sheet.title, _xlsx_rows(sheet)) for sheet in book.worksheets]
        finally:
            book.close()
    except (zipfile.BadZipFile, InvalidFileException, KeyError, ValueError, TypeError, ET.ParseError) as e:
        raise InvalidQuery(f"{path}: not a readable Excel workbook ({type(e).__name__}: {e})") from e


def _xlsx_rows(sheet: Any) -> Table:
    """A read-only worksheet's non-empty rows, at most :data:`MAX_COLUMNS` cells each (a sheet
    whose stated width is larger is read no wider; one that states none is cut after reading)."""
    width = {"max_col": min(sheet.max_column, MAX_COLUMNS)} if sheet.max_column else {}
    rows = ([cell_text(v) for v in row[:MAX_COLUMNS]] for row in sheet.iter_rows(values_only=True, **width))
    return [cells for cells in rows if any(c.strip() for c in cells)]


def as_csv_text(text: str) -> str:
    """``text`` for a CSV or tab-separated cell that a spreadsheet must not run as a formula:
    with :data:`TEXT_MARK` before it when it starts with one of :data:`FORMULA_STARTS`
    (:func:`from_csv_text` takes it off again)."""
    return TEXT_MARK + text if text.startswith(FORMULA_STARTS) else text


def from_csv_text(text: str) -> str:
    """A CSV cell's text as :func:`as_csv_text` was given it: without the :data:`TEXT_MARK` it
    put before a formula's first character."""
    if text.startswith(TEXT_MARK) and text[len(TEXT_MARK):].startswith(FORMULA_STARTS):
        return text[len(TEXT_MARK):]
    return text


#: how an .xlsx file writes a character XML cannot hold, or a carriage return ("_x000D_"; a
#: literal "_x" is written "_x005F_x"), which openpyxl leaves as it is
_OOXML_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")


def cell_text(value: Any) -> str:
    """A cell's value as its text: "" for an empty cell, 12 for 12.0, a date without a zero
    time, Excel's escaped characters ("Door_x000D_" for a line's carriage return) as themselves."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, str) and "_x" in value:
        return _OOXML_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), value)
    return str(value)


def _ods_tables(path: Path) -> list[tuple[str, Table]]:
    try:
        with zipfile.ZipFile(path) as z:
            if z.getinfo("content.xml").file_size > MAX_CONTENT_BYTES:
                raise InvalidQuery(f"{path}: its content is larger than {MAX_CONTENT_BYTES >> 20} MB unpacked; "
                                   "not a metadata sheet")
            with z.open("content.xml") as f:
                return list(_ods_content(f))
    except (zipfile.BadZipFile, KeyError, ValueError, ET.ParseError, OSError) as e:     # ValueError: a bad repeat count
        raise InvalidQuery(f"{path}: not a readable OpenDocument spreadsheet ({type(e).__name__}: {e})") from e


def _ods_content(f: Any) -> Iterator[tuple[str, Table]]:
    """The tables of an ODS ``content.xml``, streamed row by row."""
    name, rows, depth = "", [], 0
    for event, el in ET.iterparse(f, events=("start", "end")):
        if el.tag == _TABLE + "table":
            if event == "start":
                depth += 1
                if depth == 1:
                    name, rows = el.get(_TABLE + "name", ""), []
            else:
                depth -= 1
                if depth == 0:
                    yield name, rows
                    el.clear()
        elif event == "end" and el.tag == _TABLE + "table-row" and depth == 1:
            cells = _ods_row(el)
            if cells:
                repeat = int(el.get(_TABLE + "number-rows-repeated", "1"))
                rows.extend(list(cells) for _ in range(min(repeat, MAX_REPEAT)))
            el.clear()


def _ods_row(row: ET.Element) -> list[str]:
    """A row's cell texts, repeated cells expanded, trailing empty cells dropped ([] when empty)."""
    cells: list[str] = []
    empty = 0                                   # empty cells seen since the last one with text
    for cell in row:
        if cell.tag not in (_TABLE + "table-cell", _TABLE + "covered-table-cell"):
            continue
        repeat = int(cell.get(_TABLE + "number-columns-repeated", "1"))
        text = " ".join(_paragraph_text(p) for p in cell if p.tag == _TEXT + "p").strip()
        if not text:
            empty += repeat
            continue
        cells.extend([""] * min(empty, MAX_COLUMNS))
        cells.extend([text] * min(repeat, MAX_COLUMNS))
        empty = 0
        if len(cells) >= MAX_COLUMNS:
            break
    return cells[:MAX_COLUMNS]


def _paragraph_text(el: ET.Element) -> str:
    """The text of an ODF paragraph: spans read through, ``text:s`` as its spaces, tabs and line
    breaks as spaces."""
    parts = [el.text or ""]
    for child in el:
        if child.tag == _TEXT + "s":
            parts.append(" " * int(child.get(_TEXT + "c", "1")))
        elif child.tag in (_TEXT + "tab", _TEXT + "line-break"):
            parts.append(" ")
        else:
            parts.append(_paragraph_text(child))
        parts.append(child.tail or "")
    return "".join(parts)
