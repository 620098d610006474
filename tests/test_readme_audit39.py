"""What the README audit of session 37 found wrong in the code it describes (README's "null when
it has nothing to say": a command's summary key with no value is null, not a made-up value)."""
from __future__ import annotations

import json
from pathlib import Path

from indexer import build_index
from tests.conftest import tone, write
from tests.index_fakes import FakeModel

SR = 16000


def test_index_json_previous_model_is_null_on_a_run_that_rebuilds_nothing(tmp_path: Path) -> None:
    """`index --json` said `"previous_model": ""` and `"previous_model_fingerprint": ""` on every
    run that is no `--rebuild`: an empty string where README promises null."""
    lib = tmp_path / "lib"
    write(lib / "tone.wav", tone(440, 1.0, SR), SR)
    summary = build_index([lib], tmp_path / "idx", FakeModel(), workers=0, progress=False)
    report = json.loads(json.dumps(summary.to_dict()))
    assert report["rebuild"] is False
    assert report["previous_model"] is None, report["previous_model"]
    assert report["previous_model_fingerprint"] is None, report["previous_model_fingerprint"]


def test_the_shared_host_warning_is_one_line_on_a_narrow_stderr(monkeypatch):
    """`soundsift ui/serve --host 0.0.0.0` with stderr in a log file (80 columns, no terminal): the
    warning is one line, so a grep or a log reader gets it whole (it was broken at column 80)."""
    import io

    from rich.console import Console

    from ui.cli import common
    out = io.StringIO()
    monkeypatch.setattr(common, "err_console", Console(file=out, width=80, markup=False))
    common.warn_if_shared("0.0.0.0", "search and play your library")
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].endswith("search and play your library"), lines
