"""Fine-tuning on a sound designer's own messy data, audited (helper-161, session 38): rows and shard
samples that cannot be used cost themselves in one counted warning, spreadsheets saved with ';',
paths written from another folder, a corrupt validation member, a resume with another model
config whose tensors keep their shapes, a validation set that measures nothing."""
from __future__ import annotations

import io
import json
import logging
import tarfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from engine.errors import InvalidConfig, InvalidDataset
from tests.conftest import noise, tone, write
from tests.test_train_loop import SR, TinyClap, datasets, kinds_items, make_cfg
from trainer.config import DatasetSpec, config_from_dict
from trainer.datasets import AudioTextDataset, check_batch_size, read_manifest, read_webdataset
from trainer.loop import fit

torch.set_num_threads(1)


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.fixture()
def sounds(tmp_path) -> Path:
    """``tmp_path/lib/sounds/{0,1,2}.wav``: three short generated clips."""
    for i in range(3):
        write(tmp_path / "lib" / "sounds" / f"{i}.wav", tone(300 + 200 * i, 0.3, SR), SR)
    return tmp_path / "lib"


# --------------------------------------------------------------------------- manifests

def test_rows_without_captions_or_audio_are_left_out_in_one_warning(sounds, caplog):
    """A spreadsheet with a few undescribed rows trains on the others; the rows left out are
    counted in one warning naming the first, not the end of the run."""
    m = sounds / "mine.csv"
    m.write_text("audio,caption,tags\nsounds/0.wav,a low tone,tone\nsounds/1.wav,,\n"
                 ",a tone without a file,tone\nsounds/2.wav,,\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        items = read_manifest(m)
    assert [Path(i.audio).name for i in items] == ["0.wav"]
    [warning] = _warnings(caplog)
    assert "3 of 4 rows left out" in warning and "mine.csv:3: sounds/1.wav has neither captions nor tags" in warning


def test_a_manifest_of_unusable_rows_only_is_refused(sounds):
    m = sounds / "mine.csv"
    m.write_text("audio,desc\nsounds/0.wav,a low tone\nsounds/1.wav,a high tone\n", encoding="utf-8")
    with pytest.raises(InvalidDataset, match=r"mine\.csv: none of its 2 rows can be used, e\.g\. .*mine\.csv:2: "
                                             r".*neither captions nor tags.*'desc' is not read"):
        read_manifest(m)


@pytest.mark.parametrize("sep", [";", "\t"])
def test_a_csv_saved_with_semicolons_or_tabs_is_read(sounds, sep, caplog):
    """A spreadsheet in a European locale saves "CSV" with ';' between cells: its header was read
    as one column named 'audio;caption;tags', and every row said to have no audio path."""
    m = sounds / "mine.csv"
    m.write_text("\ufeff" + "\n".join(sep.join(r) for r in (
        ("audio", "caption", "tags"), ("sounds/0.wav", "a low tone", '"tone; low"'),
        ("sounds/1.wav", "a hum, soft", "hum"))) + "\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        items = read_manifest(m)
    assert [(Path(i.audio).name, i.captions, i.tags) for i in items] == [
        ("0.wav", ["a low tone"], ["tone", "low"]), ("1.wav", ["a hum, soft"], ["hum"])]
    assert not _warnings(caplog)


def test_paths_written_from_the_current_folder_are_named_once(sounds, monkeypatch, caplog):
    """Paths written relative to where the user runs (lib/sounds/0.wav) rather than to the
    manifest's folder are said as such, not only as files 'deleted or renamed'."""
    monkeypatch.chdir(sounds.parent)
    m = sounds / "mine.csv"
    m.write_text("audio,caption\nsounds/0.wav,a tone\nlib/sounds/1.wav,another\nlib/sounds/2.wav,a third\n",
                 encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        read_manifest(m)
    [warning] = _warnings(caplog)
    assert "2 audio paths are relative to the current folder" in warning
    assert "line 3: lib/sounds/1.wav" in warning and str(Path("lib/lib/sounds/1.wav")) in warning


# --------------------------------------------------------------------------- WebDataset shards

def _shard(path: Path, members: list[tuple[str, bytes]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _wav_bytes(tmp_path: Path, seed: int) -> bytes:
    return write(tmp_path / f"clip{seed}.wav", noise(0.3, SR, seed=seed), SR).read_bytes()


def test_shard_samples_left_out_are_counted_in_one_warning(tmp_path, caplog):
    """Twenty samples without a .json or a "text" were twenty warnings; one .json that is not JSON
    ended the whole run."""
    good = [(f"g{i}.{ext}", data) for i in range(3)
            for ext, data in (("wav", _wav_bytes(tmp_path, i)), ("json", b'{"text": "hiss"}'))]
    no_json = [(f"n{i}.wav", _wav_bytes(tmp_path, 9)) for i in range(10)]
    no_text = [(f"t{i}.{ext}", data) for i in range(10)
               for ext, data in (("wav", _wav_bytes(tmp_path, 9)), ("json", b'{"title": "x"}'))]
    bad_json = [("b.wav", _wav_bytes(tmp_path, 9)), ("b.json", b"{not json")]
    listed = [("l.wav", _wav_bytes(tmp_path, 9)), ("l.json", b'["hiss"]')]
    shard = _shard(tmp_path / "shards" / "a.tar", good + no_json + no_text + bad_json + listed)
    with caplog.at_level(logging.WARNING):
        items = read_webdataset(shard)
    assert len(items) == 3
    [warning] = _warnings(caplog)
    assert "22 of 25 samples skipped" in warning
    assert f"10 without a .json (e.g. {shard}:n0)" in warning
    assert f'10 whose .json has no "text" or "tags" (e.g. {shard}:t0)' in warning
    assert f"1 whose .json is not valid JSON (e.g. {shard}:b)" in warning
    assert f"1 whose .json is not a JSON object (e.g. {shard}:l)" in warning


def test_a_corrupt_validation_member_costs_its_clip_not_every_validation(tmp_path, caplog):
    """A member that is not audio was only met at validation time, and then skipped every
    validation of the run; it is now left out, named, before training."""
    from trainer.train import load_items
    members = [(f"g{i}.{ext}", data) for i in range(3)
               for ext, data in (("wav", _wav_bytes(tmp_path, i)), ("json", b'{"text": "hiss"}'))]
    members += [("bad.wav", b"RIFF" + b"garbage" * 20), ("bad.json", b'{"text": "broken"}')]
    shard = _shard(tmp_path / "val" / "v.tar", members)
    with caplog.at_level(logging.WARNING):
        items = load_items([DatasetSpec("webdataset", str(shard))], True, "validation")
    assert sorted(i.audio.name for i in items) == ["g0.wav", "g1.wav", "g2.wav"]
    [warning] = _warnings(caplog)
    assert f"1 of 4 validation files unusable and left out, e.g. {shard}:bad.wav: not readable as audio" in warning
    assert "BytesIO" not in warning


def test_a_corrupt_training_member_is_said_once_with_its_name(tmp_path, caplog):
    members = [("g.wav", _wav_bytes(tmp_path, 0)), ("g.json", b'{"text": "hiss"}'),
               ("bad.wav", b"RIFF" + b"garbage" * 20), ("bad.json", b'{"text": "broken"}')]
    items = read_webdataset(_shard(tmp_path / "a.tar", members))
    train = AudioTextDataset(items, SR, 0.2, train=True)
    bad = next(i for i, item in enumerate(items) if item.audio.name == "bad.wav")
    with caplog.at_level(logging.WARNING):
        for epoch in range(3):
            assert train[(epoch, bad)]["text"] == "hiss"          # the next item in its place
    [warning] = _warnings(caplog)
    assert "a.tar:bad.wav: could not be decoded for training" in warning and "BytesIO" not in warning


# --------------------------------------------------------------------------- resume and configs

class ConfiguredClap(TinyClap):
    """A TinyClap with a model config, written to config.json as soundsift's model writes it."""

    def __init__(self, window_seconds: float = 0.5) -> None:
        super().__init__()
        settings = {"model_type": "tiny-test", "window_seconds": window_seconds, "onnx_threads": 0}
        self.config = SimpleNamespace(window_seconds=window_seconds, to_dict=lambda: dict(settings))

    def save_pretrained(self, folder) -> None:
        super().save_pretrained(folder)
        (Path(folder) / "config.json").write_text(json.dumps(self.config.to_dict()))


def test_resume_with_another_model_config_of_the_same_shapes_is_refused(tmp_path):
    """window_seconds changes no tensor: the run continued silently into a model that is
    neither the checkpoint's nor the config's."""
    items = kinds_items(tmp_path / "sounds", 2)
    train, _ = datasets(items)
    cfg = make_cfg(tmp_path, steps=4, checkpoint_every=2)
    fit(ConfiguredClap(), train, cfg, max_steps=2)
    with pytest.raises(InvalidConfig, match=r"step-0000002: the checkpoint was made with another model config "
                                            r"\(window_seconds 0\.5 → 1\.0\); resume with the config it was made "
                                            r"with, or give another --out"):
        fit(ConfiguredClap(window_seconds=1.0), train, cfg, resume=True)
    assert fit(ConfiguredClap(), train, cfg, resume=True).steps == 4      # the same config resumes


def test_a_model_config_value_the_model_refuses_is_said_before_any_data(tmp_path):
    from trainer.train import check_model_spec
    cfg = config_from_dict({"model": {"config": {"space": "learned"}},
                            "data": {"train": [{"format": "manifest", "path": "never-read.csv"}]}}, tmp_path)
    with pytest.raises(InvalidConfig, match=r"model\.config: config space 'learned' is not one of"):
        check_model_spec(cfg)


def test_a_validation_set_that_measures_nothing_is_said(tmp_path, caplog):
    """One validation clip gives R@1 1.000 to any model: `soundsift eval` refuses such a set,
    and training said nothing of it."""
    from trainer.train import run_training
    items = kinds_items(tmp_path / "sounds", 2)
    lines = [json.dumps({"audio": str(i.audio), "caption": i.captions[0]}) for i in items]
    (tmp_path / "train.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "val.jsonl").write_text(lines[0] + "\n")
    cfg = config_from_dict({"data": {"train": [{"format": "manifest", "path": "train.jsonl"}],
                                     "val": [{"format": "manifest", "path": "val.jsonl"}], "num_workers": 0},
                            "steps": 1, "batch_size": 4, "progress": False, "out_dir": str(tmp_path / "run")},
                           tmp_path)
    with caplog.at_level(logging.WARNING):
        run_training(cfg, model=TinyClap())
    said = [w for w in _warnings(caplog) if "validation set's figures will say nothing" in w]
    assert len(said) == 1 and "it holds one clip" in said[0] and Path(items[0].audio).name in said[0]


def test_a_batch_larger_than_one_clip_says_item_not_items():
    with pytest.raises(InvalidDataset, match=r"larger than the training set \(1 item\)"):
        check_batch_size(1, 2)


def test_eval_reads_a_csv_saved_with_semicolons(sounds):
    """`soundsift eval zeroshot` said "unrecognised header ['audio;label']" for it."""
    from trainer.evaluation.datasets import load_classification
    (sounds / "labels.csv").write_text("audio;label\nsounds/0.wav;low tone\nsounds/1.wav;hum\n", encoding="utf-8")
    found = load_classification(sounds / "labels.csv")
    assert [p.name for p in found.audio_paths] == ["0.wav", "1.wav"]
    assert [found.labels[t] for t in found.targets] == ["low tone", "hum"]


def test_a_clotho_csv_saved_with_semicolons_counts_its_uncaptioned_rows(sounds, caplog):
    """Rows with every caption empty were dropped without a word; a ';' CSV was 'not a Clotho CSV'."""
    from trainer.datasets import read_clotho
    (sounds / "clotho.csv").write_text(
        "file_name;caption_1;caption_2\n0.wav;a low tone;a hum\n1.wav;;\n2.wav;a high tone;\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        items = read_clotho(sounds / "clotho.csv", sounds / "sounds")
    assert [(Path(i.audio).name, i.captions) for i in items] == [("0.wav", ["a low tone", "a hum"]),
                                                                ("2.wav", ["a high tone"])]
    [warning] = _warnings(caplog)
    assert "clotho.csv: 1 row without captions left out (e.g. line 3: 1.wav)" in warning


def test_a_checkpoint_written_before_a_model_key_existed_still_resumes(tmp_path):
    """A key the checkpoint's config.json lacks is its default, not a changed setting; a setting
    that differs is named."""
    from engine.models.soundsift_clap import SoundsiftClapConfig
    from trainer.loop import _refuse_another_model_config
    config = SoundsiftClapConfig.from_dict({"window_seconds": 1.0, "use_yamnet_embedding": True})
    older = config.to_dict()
    del older["yamnet_trim_silence"]
    (tmp_path / "config.json").write_text(json.dumps(older))
    _refuse_another_model_config(tmp_path, SimpleNamespace(config=config))
    (tmp_path / "config.json").write_text(json.dumps({**older, "window_seconds": 2.0}))
    with pytest.raises(InvalidConfig, match=r"another model config \(window_seconds 2\.0 → 1\.0\)"):
        _refuse_another_model_config(tmp_path, SimpleNamespace(config=config))


def test_a_folder_given_as_the_config_is_said_to_be_a_folder(tmp_path):
    from trainer.config import load_config
    with pytest.raises(InvalidConfig, match=r"is a folder; give the training config file"):
        load_config(tmp_path)


def test_eval_reads_a_manifest_as_training_does_leaving_out_uncaptioned_rows(sounds, caplog):
    """A manifest `soundsift train` fine-tuned on (one row without a caption left out) was refused
    by `soundsift eval retrieval`, which reads "as soundsift train reads it"."""
    from trainer.evaluation.datasets import load_retrieval
    (sounds / "mine.csv").write_text("audio,caption\nsounds/0.wav,a low tone\nsounds/1.wav,\n"
                                     "sounds/2.wav,a high tone\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        found = load_retrieval(sounds / "mine.csv")
    assert sorted(Path(p).name for p in found.audio_paths) == ["0.wav", "2.wav"]
    assert any("1 of 3 rows left out" in w for w in _warnings(caplog))


def test_a_shard_json_that_is_a_list_costs_its_sample_not_a_traceback(tmp_path, caplog):
    members = [("g.wav", _wav_bytes(tmp_path, 0)), ("g.json", b'{"text": "hiss"}'),
               ("l.wav", _wav_bytes(tmp_path, 1)), ("l.json", b'["hiss"]')]
    shard = _shard(tmp_path / "a.tar", members)
    with caplog.at_level(logging.WARNING):
        [item] = read_webdataset(shard)           # was AttributeError: 'list' object has no attribute 'get'
    assert item.audio.name == "g.wav"
    assert f"1 whose .json is not a JSON object (e.g. {shard}:l)" in _warnings(caplog)[0]
