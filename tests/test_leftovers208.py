"""Leftovers found by h203/h204: a toy-data/ folder an older generator wrote (clips shorter than one
patch) was reused; an unknown corpus source was named in a raw Python list with no guess;
benchmarks/similarity.py printed nan rows and numpy warnings for a one-source split; `sheet
export` of an index whose embedded metadata an older soundsift read wrote its empty cells
without a word."""
from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from engine.catalog import Meta, set_meta
from engine.errors import CorpusError
from indexer import build_index
from tests.conftest import catalog_session, tone, write
from tests.index_fakes import FakeModel
from ui.cli import app

ROOT = Path(__file__).resolve().parents[1]


# 1. toy-data/ written by an older generator ------------------------------------------------------

def _toy_config(out: Path):
    from trainer.config import config_from_dict
    return config_from_dict({"data": {"toy": {"per_class": 1, "val_per_class": 1}}, "out_dir": str(out)})


def test_a_toy_set_an_older_generator_wrote_is_written_again_once(tmp_path):
    from trainer.datasets import SHORT_CLIP_SECONDS
    from trainer.train import prepare_data
    out = tmp_path / "out"
    prepare_data(_toy_config(out), out)
    folder = out / "toy-data"
    stamp = json.loads((folder / "settings.json").read_text())
    old = {k: v for k, v in stamp.items() if k != "generator"}    # as soundsift before f0a9183 wrote it
    (folder / "settings.json").write_text(json.dumps(old))
    clip = next((folder / "audio").rglob("*.wav"))
    sf.write(str(clip), np.zeros(4000, np.float32), 16000)          # a 0.25 s clip, as the old generator made
    prepare_data(_toy_config(out), out)
    assert sf.info(str(clip)).duration >= SHORT_CLIP_SECONDS        # written again
    assert json.loads((folder / "settings.json").read_text()) == stamp

    sf.write(str(clip), np.zeros(4000, np.float32), 16000)          # the same generator: reused as it is
    prepare_data(_toy_config(out), out)
    assert sf.info(str(clip)).frames == 4000


# 2. an unknown corpus source ---------------------------------------------------------------------

def test_an_unknown_corpus_source_is_named_with_its_nearest_known_one():
    from trainer.corpus.runner import all_sources, check_source_names
    with pytest.raises(CorpusError) as e:
        check_source_names(["tones", "tuxpant"])
    message = str(e.value)
    assert "\n" not in message and "[" not in message
    assert message.startswith("unknown corpus source tuxpant (did you mean tuxpaint?); known: ")
    assert message.endswith("; known: " + ", ".join(all_sources()))
    with pytest.raises(CorpusError, match=r"^unknown corpus sources zzz, spech \(did you mean speech\?\); known: "):
        check_source_names(["zzz"], ["spech"])


def test_corpus_build_says_the_nearest_source_on_one_line(tmp_path):
    r = CliRunner().invoke(app, ["corpus", "build", "--sources", "tuxpant", "--out", str(tmp_path / "c")])
    assert r.exit_code == 1
    assert "unknown corpus source tuxpant (did you mean tuxpaint?); known: fillets, " in " ".join(r.stderr.split())
    assert not (tmp_path / "c").exists()


# 3. benchmarks/similarity.py on a one-source split -----------------------------------------------

def _similarity_bench():
    spec = importlib.util.spec_from_file_location("similarity_bench", ROOT / "benchmarks" / "similarity.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_similarity_skips_the_by_source_table_of_a_one_source_split_without_warnings(capsys):
    bench = _similarity_bench()
    rng = np.random.default_rng(0)
    vectors, labels = rng.standard_normal((12, 4)), np.array(["a", "b", "c"] * 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert bench.retrieval(vectors, labels, np.array(["s"] * 12), other_sources=True)[2] == 0
        bench.print_tables({"model vectors": vectors}, labels, np.array(["s"] * 12))
    text = capsys.readouterr().out
    assert "nan" not in text
    assert "candidates from other sources only: skipped, a by-source figure needs two sources" in text
    assert "model vectors | " in text                               # the all-candidates table stays

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bench.print_tables({"model vectors": vectors}, labels, np.array(["s"] * 6 + ["t"] * 6))
    two = capsys.readouterr().out
    assert "skipped" not in two and two.count("model vectors | ") == 2


# 4. sheet export of metadata an older soundsift read ---------------------------------------------

def _index(tmp_path: Path) -> Path:
    lib = tmp_path / "lib"
    write(lib / "tone.wav", tone(440, 1.0, 16000), 16000)
    write(lib / "low.wav", tone(110, 1.5, 16000), 16000)
    idx = tmp_path / "idx"
    build_index([lib], idx, FakeModel(), workers=0, progress=False)
    return idx


def test_sheet_export_notes_the_files_whose_metadata_an_older_soundsift_read(tmp_path):
    idx = _index(tmp_path)
    runner = CliRunner()
    fresh = runner.invoke(app, ["sheet", "export", str(tmp_path / "a.csv"), "--index", str(idx)])
    assert fresh.exit_code == 0 and "older soundsift" not in fresh.stderr
    with catalog_session(idx, write=True) as s:            # the meta an older soundsift left
        s.query(Meta).filter(Meta.key == "metadata_reader").delete()
        set_meta(s, metadata_reader=6)
    old = runner.invoke(app, ["sheet", "export", str(tmp_path / "b.csv"), "--index", str(idx), "--json"])
    assert old.exit_code == 0 and json.loads(old.stdout)["files"] == 2
    note = " ".join(old.stderr.split())
    assert note.count("note:") == 1
    assert "2 files" in note and "older soundsift" in note and "`soundsift index` of their folders" in note
