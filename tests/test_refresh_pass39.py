"""indexer.refresh_pass.each_file, which the indexer's passes over older files share (silence,
loudness): results in order, in this process or in decoder processes, and a decoder process that
dies ends the pass with one warning counting the files left for the next run."""
from __future__ import annotations

import logging
import os

from indexer.refresh_pass import each_file


def _length(path: str, times: int) -> int:
    return len(path) * times


def _dies_on_c(path: str) -> str:
    if path == "c":
        os._exit(3)     # a decoder crashing its process: no Python error to catch
    return path


def test_results_come_in_order_in_this_process_and_in_workers():
    paths = ["a", "bb", "ccc", "dddd", "eeeee"]
    for workers in (0, 2):
        with each_file(_length, paths, [2] * len(paths), workers=workers, desc="test", doing="testing") as got:
            assert list(got) == [2, 4, 6, 8, 10]


def test_a_dying_decoder_process_ends_the_pass_with_one_warning(caplog):
    paths = ["a", "b", "c", "d", "e", "f", "g", "h"]
    with caplog.at_level(logging.WARNING, logger="indexer.refresh_pass"):
        with each_file(_dies_on_c, paths, workers=2, desc="test", doing="testing") as got:
            done = list(got)
    assert "c" not in done and len(done) < len(paths) and done == paths[:len(done)]
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and said[0].startswith("a decoder process died while testing; ")
    assert f"{len(paths) - len(done)} files are left for the next run" in said[0]
