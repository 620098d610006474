"""A terminal wide enough for what a CLI test reads in a table. rich fits a table to $COLUMNS and
folds a cell too long for it over lines; a path under pytest's tmp folder is as long as that
folder (the user's name, the run's number, a pytest-xdist worker's ``popen-gw0/``, --basetemp), so
at a fixed width a name or a sentence the test looks for was cut on some machines and not others."""
from __future__ import annotations


def wide_terminal(*texts: object, spare: int = 200) -> dict[str, str]:
    """A ``CliRunner`` env whose $COLUMNS hold ``texts`` (paths, mostly) side by side on one line
    and ``spare`` columns more for the rest of the table."""
    return {"COLUMNS": str(spare + sum(len(str(text)) for text in texts))}
