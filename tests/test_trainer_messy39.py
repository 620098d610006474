"""Training on a user's messy data, second round (session 39): lines that are no rows, UTF-16
tables, file:// paths, NaN cells, number captions, very short clips, permission denied."""
from __future__ import annotations

import builtins
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from engine.errors import InvalidDataset
from tests.conftest import noise, tone, write
from trainer.datasets import Item, drop_missing, load_clip, read_clotho, read_manifest

SR = 16000
torch.set_num_threads(1)


@pytest.fixture
def sounds(tmp_path) -> Path:
    for i in range(4):
        write(tmp_path / f"s{i}.wav", tone(300 + 100 * i, 0.3, SR), SR)
    return tmp_path


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


# --------------------------------------------------------------------------- lines that are no rows

def test_an_overfull_csv_row_costs_that_row_with_one_warning(sounds, caplog):
    """One caption with an unquoted comma among 100k rows stopped the run; now that row is left
    out, said once with the file and line, and the run goes on."""
    m = sounds / "m.csv"
    m.write_text("audio,caption\ns0.wav,a beep\ns1.wav,a dog, barking\ns2.wav,rain\ns3.wav,a bell, ringing\n")
    items = read_manifest(m)
    assert [Path(i.audio).name for i in items] == ["s0.wav", "s2.wav"]
    [said] = _warnings(caplog)
    assert f"{m}: 2 of 4 rows left out, e.g. {m}:3: 3 fields where the header has 2; quote cells" in said


def test_a_manifest_mostly_of_bad_lines_is_refused(sounds):
    """Leaving most of a file out would not mend it: a CSV whose captions mostly hold commas, a
    file that is not a JSON Lines manifest at all."""
    m = sounds / "m.csv"
    m.write_text("audio,caption\ns0.wav,a beep\ns1.wav,a dog, barking\ns2.wav,rain, heavy\n")
    with pytest.raises(InvalidDataset, match=r"m\.csv: 2 of its 3 rows have more cells than the header, e\.g\. "
                                             r".*m\.csv:3: 3 fields"):
        read_manifest(m)
    j = sounds / "m.jsonl"
    j.write_text("audio,caption\ns0.wav,a beep\ns1.wav,a dog\n")        # a CSV named .jsonl
    with pytest.raises(InvalidDataset, match=r"m\.jsonl: 3 of its 3 rows are not JSON objects, e\.g\. .*m\.jsonl:1: "
                                             r"not valid JSON.*is it a JSON Lines manifest\?"):
        read_manifest(j)


def test_an_unclosed_quote_is_said_not_swallowing_rows_silently(sounds, caplog):
    """A quote left unclosed made one caption of the rows below it ('a dog barking\\ns2.wav,rain…'),
    without a word; past 128 kB of them the whole file failed without a line number."""
    m = sounds / "m.csv"
    m.write_text('audio,caption\ns0.wav,"a ""loud"" beep"\ns3.wav,"wind,\nthen rain"\n'
                 's1.wav,"a dog barking\ns2.wav,rain\ns3.wav,wind\n')
    items = read_manifest(m)
    assert [(Path(i.audio).name, i.captions) for i in items] == [
        ("s0.wav", ['a "loud" beep']), ("s3.wav", ["wind,\nthen rain"])]      # a caption over 2 lines is one
    assert f"{m}:5: a quoted cell runs on to line 7, taking in what look like 2 more rows (a quote left " \
           "unclosed?)" in _warnings(caplog)[0]
    m.write_text('audio,caption\ns0.wav,a beep\ns1.wav,"a dog barking\n'
                 + "".join(f"s{i % 4}.wav,sound {i}\n" for i in range(15000)))
    with pytest.raises(InvalidDataset, match=r"m\.csv: malformed CSV from line 3 \(field larger than field limit "
                                             r"\(131072\)\); a quote left unclosed there runs on"):
        read_manifest(m)


def test_a_clotho_row_with_an_unquoted_comma_costs_that_row(tmp_path, caplog):
    (tmp_path / "c.csv").write_text("file_name,caption_1\na.wav,a cat\nb.wav,a cat, meowing\nc.wav,rain\n")
    items = read_clotho(tmp_path / "c.csv")
    assert [Path(i.audio).name for i in items] == ["a.wav", "c.wav"]
    assert any("1 row with more cells than the header left out, e.g. " in w and "c.csv:3" in w
               for w in _warnings(caplog))


# --------------------------------------------------------------------------- encodings, paths, cells

@pytest.mark.parametrize("name,encoding,sep", [
    ("excel.txt", "utf-16", "\t"),         # Excel's "Unicode Text": UTF-16 LE with BOM, tabs, .txt
    ("m.tsv", "utf-16-be", "\t"),
    ("m.csv", "utf-16-le", ","),
])
def test_utf16_tables_are_read(sounds, name, encoding, sep):
    text = sep.join(["audio", "caption"]) + "\n" + sep.join(["s0.wav", "un café bruyant"]) + "\n"
    data = text.encode(encoding)
    if encoding != "utf-16":            # the -le/-be codecs write no byte-order mark
        data = ("\ufeff" + text).encode(encoding)
    (sounds / name).write_bytes(data)
    [item] = read_manifest(sounds / name)
    assert item.captions == ["un café bruyant"] and item.audio == str(sounds / "s0.wav")


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_without_its_byte_order_mark_is_read(sounds, encoding):
    """Read as UTF-8 it was a header of NUL-riddled names: 'no audio path' on every row."""
    (sounds / "m.csv").write_bytes("audio,caption\ns2.wav,une fenêtre\n".encode(encoding))
    [item] = read_manifest(sounds / "m.csv")
    assert item.captions == ["une fenêtre"] and item.audio == str(sounds / "s2.wav")


def test_a_utf16_jsonl_manifest_is_read(sounds):
    """Windows PowerShell's `>` writes UTF-16 LE with a byte-order mark."""
    (sounds / "m.jsonl").write_text(json.dumps({"audio": "s1.wav", "caption": "a door"}) + "\n", encoding="utf-16")
    [item] = read_manifest(sounds / "m.jsonl")
    assert item.captions == ["a door"] and item.audio == str(sounds / "s1.wav")


def test_file_uris_name_the_local_file(sounds):
    (sounds / "a b.wav").write_bytes((sounds / "s0.wav").read_bytes())
    rows = [{"audio": (sounds / "a b.wav").as_uri(), "caption": "one"},
            {"audio": f"file://localhost{sounds / 's1.wav'}", "caption": "two"}]
    (sounds / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    items = read_manifest(sounds / "m.jsonl")
    assert [i.audio for i in items] == [str(sounds / "a b.wav"), str(sounds / "s1.wav")]
    assert len(drop_missing(items)) == 2


def test_windows_drive_paths_are_said_once(sounds, caplog):
    """They were read as relative paths (<manifest folder>/C:/Users/…) and said to be missing."""
    (sounds / "m.csv").write_text("audio,caption\nC:\\Users\\me\\a.wav,one\nD:/b.wav,two\ns0.wav,three\n")
    assert len(read_manifest(sounds / "m.csv")) == 3
    [said] = _warnings(caplog)
    assert "m.csv: 2 audio paths start with a Windows drive (e.g. line 2: C:\\Users\\me\\a.wav), which this " \
           "system has not" in said


def test_nan_cells_are_no_captions_or_tags(sounds, caplog):
    """pandas' missing values, as json.dumps (NaN) and to_csv with na_rep writes them, became the
    caption or tag 'nan'."""
    caplog.set_level(logging.INFO, logger="trainer.datasets")
    (sounds / "m.jsonl").write_text('{"audio": "s0.wav", "caption": NaN, "tags": ["dog", NaN]}\n'
                                    '{"audio": "s1.wav", "caption": "rain", "tags": null}\n')
    a, b = read_manifest(sounds / "m.jsonl")
    assert (a.captions, a.tags) == ([], ["dog"]) and (b.captions, b.tags) == (["rain"], [])
    (sounds / "m.csv").write_text("audio,caption,tags\ns0.wav,NaN,dog\ns1.wav,rain,nan\ns2.wav,None,\n")
    a, b = read_manifest(sounds / "m.csv")
    assert (a.captions, a.tags) == ([], ["dog"]) and (b.captions, b.tags) == (["rain"], [])
    said = caplog.text
    assert "m.csv: 3 caption/tag cells hold no value (e.g. caption 'NaN', line 2" in said
    assert "m.csv:4: s2.wav has neither captions nor tags" in said


def test_a_caption_that_is_a_number_is_said(sounds, caplog):
    (sounds / "m.csv").write_text("audio,caption\ns0.wav,42\ns1.wav,3.5\ns2.wav,a bell\n")
    assert [i.captions for i in read_manifest(sounds / "m.csv")] == [["42"], ["3.5"], ["a bell"]]
    [said] = _warnings(caplog)
    assert "the caption '42' (line 2) is only a number (1 more such caption)" in said


# --------------------------------------------------------------------------- short clips

def test_clips_shorter_than_one_patch_are_counted_once(tmp_path, caplog):
    """A 0.05 s click is repeated to fill a crop: the model hears a buzz. Said once, with a count;
    the clips are kept."""
    from trainer.datasets import SHORT_CLIP_SECONDS, say_short_clips
    items = [Item(str(write(tmp_path / f"c{i}.wav", tone(1000, s, SR), SR)), ["x"])
             for i, s in enumerate([0.05, 0.5, 2.0, 0.2])]
    kept = drop_missing(items)
    assert [round(i.seconds, 3) for i in kept] == [0.05, 0.5, 2.0, 0.2]
    say_short_clips(kept, 2.0)
    [said] = _warnings(caplog)
    assert SHORT_CLIP_SECONDS == pytest.approx(0.975)
    assert ("3 of 4 training clips are shorter than 0.975 s (one patch of the audio tower), "
            f"e.g. {tmp_path / 'c0.wav'} (0.05 s): each is repeated to fill its 2 s crop") in said
    caplog.clear()
    say_short_clips(kept, 0.3)          # crops shorter than the patch: only clips shorter than the crop
    assert "2 of 4 training clips" in _warnings(caplog)[0]


def test_a_training_run_says_its_short_clips(tmp_path, caplog):
    from tests.test_train_loop import TinyClap
    from trainer.config import config_from_dict
    from trainer.train import run_training
    rows = []
    for i in range(6):
        seconds = 0.05 if i == 0 else 1.0
        write(tmp_path / f"t{i}.wav", noise(seconds, SR, seed=i), SR)
        rows.append(f"t{i}.wav,sound number {i}")
    (tmp_path / "train.csv").write_text("audio,caption\n" + "\n".join(rows) + "\n")
    cfg = config_from_dict({"data": {"train": [{"format": "manifest", "path": "train.csv"}]}, "steps": 1,
                            "batch_size": 4, "progress": False, "device": "cpu", "out_dir": str(tmp_path / "run")},
                           tmp_path)
    caplog.set_level(logging.WARNING)
    assert run_training(cfg, model=TinyClap()).steps == 1
    assert any("1 of 6 training clips are shorter than" in w and "t0.wav (0.05 s)" in w for w in _warnings(caplog))


# --------------------------------------------------------------------------- permission denied

def _deny(monkeypatch, name: str) -> None:
    """Opening a file called ``name`` fails with EACCES, as for a user without read rights (the
    tests run as root, whom chmod does not stop)."""
    real_open = builtins.open
    real_path_open = Path.open
    real_soundfile = sf.SoundFile

    def refuse(path) -> None:
        if Path(str(path)).name == name:
            raise PermissionError(13, "Permission denied", str(path))

    def open_(file, *a, **kw):
        if isinstance(file, (str, Path)):
            refuse(file)
        return real_open(file, *a, **kw)

    def path_open(self, *a, **kw):
        refuse(self)
        return real_path_open(self, *a, **kw)

    class SoundFile(real_soundfile):
        def __init__(self, file, *a, **kw):
            if isinstance(file, (str, Path)) and Path(str(file)).name == name:
                raise sf.LibsndfileError(2, f"Error opening {str(file)!r}: ")     # "System error."
            super().__init__(file, *a, **kw)

    monkeypatch.setattr(builtins, "open", open_)
    monkeypatch.setattr(Path, "open", path_open)
    monkeypatch.setattr(sf, "SoundFile", SoundFile)


def test_a_manifest_without_read_permission_is_named(sounds, monkeypatch):
    (sounds / "m.csv").write_text("audio,caption\ns0.wav,a beep\n")
    (sounds / "m.jsonl").write_text('{"audio": "s0.wav", "caption": "a beep"}\n')
    _deny(monkeypatch, "m.csv")
    with pytest.raises(InvalidDataset, match=r"m\.csv: permission denied; make the file readable"):
        read_manifest(sounds / "m.csv")
    _deny(monkeypatch, "m.jsonl")
    with pytest.raises(InvalidDataset, match=r"m\.jsonl: permission denied"):
        read_manifest(sounds / "m.jsonl")


def test_audio_without_read_permission_is_named_with_the_reason(sounds, monkeypatch, caplog):
    """Left out before the run (drop_missing), and a file that loses its rights mid-run, each
    named with the reason, not libsndfile's "System error"."""
    _deny(monkeypatch, "s1.wav")
    kept = drop_missing([Item(str(sounds / "s0.wav"), ["a"]), Item(str(sounds / "s1.wav"), ["b"])])
    assert [Path(i.audio).name for i in kept] == ["s0.wav"]
    assert f"{sounds / 's1.wav'}: permission denied" in _warnings(caplog)[0]
    from engine.errors import UnreadableAudio
    with pytest.raises(UnreadableAudio, match=r"s1\.wav: permission denied"):
        load_clip(str(sounds / "s1.wav"), SR, 0.2, np.random.default_rng(0))


def test_caption_names_a_file_without_read_permission(sounds, monkeypatch):
    from trainer.caption_loop import caption_files
    _deny(monkeypatch, "s2.wav")
    rows, errors = caption_files([sounds / "s0.wav", sounds / "s2.wav"], source="metadata")
    assert [Path(r.path).name for r in rows] == ["s0.wav"]
    assert [str(e) for e in errors] == [f"{sounds / 's2.wav'}: permission denied: make the file readable"]
