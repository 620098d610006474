"""What a researcher meets following README's "Training and fine-tuning" (session 41, h203)."""
from __future__ import annotations

import pytest

from trainer.config import InvalidConfig, config_from_dict

TRAIN = {"train": [{"format": "manifest", "path": "m.csv"}]}


@pytest.mark.parametrize("key, meant", [("learning_rate", "optim.lr"), ("lr", "optim.lr"),
                                        ("warmup", "optim.warmup_steps"), ("weight_decay", "optim.weight_decay"),
                                        ("clip_seconds", "data.clip_seconds"), ("num_workers", "data.num_workers")])
def test_a_section_key_written_at_the_top_names_its_section(tmp_path, key, meant):
    """README: an unknown key is named with "the key meant where one is ... another trainer's name,
    `learning_rate`". A flat config, as Hugging Face's TrainingArguments are written, put
    "learning_rate" at the top, and the error named no key meant: lr lives in "optim"."""
    with pytest.raises(InvalidConfig, match=rf"config: unknown key\(s\) {key} \(did you mean {meant}\?\)"):
        config_from_dict({"data": TRAIN, key: 1}, tmp_path)


def test_a_typo_at_the_top_still_names_the_top_key(tmp_path):
    with pytest.raises(InvalidConfig, match=r"unknown key\(s\) batchsize \(did you mean batch_size\?\)"):
        config_from_dict({"data": TRAIN, "batchsize": 4}, tmp_path)


def _clotho_set(tmp_path):
    """A Clotho CSV in tmp_path naming two clips that lie in tmp_path/development, as Clotho ships."""
    import numpy as np
    import soundfile as sf
    audio = tmp_path / "development"
    audio.mkdir()
    for name in ("a.wav", "b.wav"):
        sf.write(str(audio / name), np.sin(np.arange(16000) / 8.0).astype(np.float32) * 0.1, 16000)
    csv_path = tmp_path / "clotho_captions_development.csv"
    csv_path.write_text("file_name,caption_1,caption_2\na.wav,a tone,a hum\nb.wav,a beep,a whistle\n")
    return csv_path, audio


def test_a_clotho_set_whose_audio_is_not_found_names_audio_dir(tmp_path):
    """A Clotho set given without its "audio_dir" (README's example has "audio_dir": "development")
    failed with "(a manifest's relative paths are read from the manifest's folder)": the hint of
    another format, and no word of audio_dir or of the folder looked in."""
    from engine.errors import InvalidDataset
    from trainer.config import DatasetSpec
    from trainer.train import load_items
    csv_path, audio = _clotho_set(tmp_path)
    with pytest.raises(InvalidDataset) as e:
        load_items([DatasetSpec("clotho", str(csv_path))], check_files=True)
    assert f"a Clotho CSV's files are read from its audio_dir, here {tmp_path.resolve()}" in str(e.value)
    assert "the config gives no audio_dir" in str(e.value)
    assert "manifest" not in str(e.value)
    wrong = tmp_path / "evaluation"
    with pytest.raises(InvalidDataset, match=f"read from its audio_dir, here {wrong.resolve()}\\)"):
        load_items([DatasetSpec("clotho", str(csv_path), str(wrong))], check_files=True)
    assert len(load_items([DatasetSpec("clotho", str(csv_path), str(audio))], check_files=True)) == 2


def test_a_manifest_whose_audio_is_not_found_keeps_its_hint(tmp_path):
    from engine.errors import InvalidDataset
    from trainer.config import DatasetSpec
    from trainer.train import load_items
    manifest = tmp_path / "m.csv"
    manifest.write_text("audio,caption\nnowhere/a.wav,a tone\n")
    with pytest.raises(InvalidDataset, match=r"\(a manifest's relative paths are read from the manifest's folder\)$"):
        load_items([DatasetSpec("manifest", str(manifest))], check_files=True)


def _long_folder(tmp_path):
    """A folder whose path is longer than an 80-column console line."""
    folder = tmp_path / ("a_rather_long_folder_name_for_this_run_" * 3) / "model"
    assert len(str(folder)) > 100
    return folder


def test_the_cached_trainers_report_path_is_one_line(tmp_path, monkeypatch):
    """`soundsift train soundsift_fast.json --out DEEP/FOLDER` ended with "… all in \\nDEEP/FOLDER/
    training_report.json)": stderr broken at 80 columns, inside the path (piped, to a log file)."""
    from types import SimpleNamespace

    import trainer.cached_train as cached_train
    from typer.testing import CliRunner
    from ui.cli import app
    config = tmp_path / "cached.json"
    config.write_text('{"trainer": "cached-features"}')
    model_dir = _long_folder(tmp_path)
    figures = {"zs_top1": 0.5}
    monkeypatch.setattr(cached_train.CachedTrainConfig, "from_file",
                        classmethod(lambda cls, path: SimpleNamespace(steps=3, out="x", seed=0, final_with_val=False)))
    monkeypatch.setattr(cached_train, "run", lambda cfg, out: {
        "seconds": {"total": 1.0}, "final_trained_on_validation": False, "baseline": figures, "start": figures,
        "final": figures, "seeds": {}})
    result = CliRunner().invoke(app, ["train", str(config), "--out", str(model_dir)])
    assert result.exit_code == 0, result.output
    assert f"all in {model_dir / 'training_report.json'})" in result.stderr.splitlines()[-1]


def test_evals_report_path_is_one_line(tmp_path, capsys):
    """`soundsift eval … --report DEEP/FOLDER` said "report written to" with the path broken at 80
    columns."""
    from ui.cli.cmd_eval import _show
    report = _long_folder(tmp_path)
    _show({}, False, lambda result: None, report)
    assert capsys.readouterr().err.splitlines() == [f"report written to {report / 'report.md'}"]


@pytest.mark.usefixtures("minilm_memo")
def test_a_cached_features_model_records_the_manifests_it_trained_on(tmp_path):
    """README: eval warns when the CSV is one the model trained on, from the training sets
    `soundsift train` records in extra.trained. A cached-features config (soundsift_base.json,
    soundsift_fast.json) recorded none: `eval retrieval corpus/val.jsonl` on the model of
    "final_with_val": true, which trained on those clips, gave fit figures with no warning."""
    from typer.testing import CliRunner

    from engine.models.soundsift_clap import SoundsiftClap
    from tests.test_train_cached_cli import _config, _manifest
    from trainer.trained_on import trained_on_this
    from ui.cli import app
    _manifest(tmp_path / "train.jsonl", "train")
    _manifest(tmp_path / "val.jsonl", "val")
    config = _config(tmp_path, space="audioset", final_with_val=True)      # steps 0: the start saved
    out = tmp_path / "model"
    result = CliRunner().invoke(app, ["train", str(config), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    final, held_out = SoundsiftClap.from_pretrained(out), SoundsiftClap.from_pretrained(out / "held-out")
    for manifest in ("train.jsonl", "val.jsonl"):
        found = trained_on_this(final, tmp_path / manifest, str(out))
        assert found is not None and found.generation == 0 and found.matched_by == "fingerprint", manifest
        assert found.message == f"{out} trained on {tmp_path / manifest}: these figures are fit, not validation"
    assert trained_on_this(held_out, tmp_path / "train.jsonl", "held-out") is not None
    assert trained_on_this(held_out, tmp_path / "val.jsonl", "held-out") is None     # what it is judged on


def test_the_toy_set_has_no_clip_the_trainer_warns_is_looped(tmp_path, caplog):
    """README's first training command (`soundsift train trainer/configs/toy.json`) warned that 25
    of its 56 generated clips (and 9 of 14 validation clips) were shorter than one patch of the
    audio tower, telling the user to leave them out of a manifest they never wrote."""
    import json
    import logging

    import soundfile as sf

    from trainer.datasets import SHORT_CLIP_SECONDS, drop_missing, read_manifest, say_short_clips
    from trainer.toy_data import write_toy_set
    train, val = write_toy_set(tmp_path, per_class=8, val_per_class=2, seconds=1.0, sample_rate=16000, seed=0)
    rows = [json.loads(line) for path in (train, val) for line in path.read_text().splitlines()]
    assert len(rows) == 70
    lengths = [sf.info(str(tmp_path / r["audio"])).duration for r in rows]
    assert min(lengths) >= SHORT_CLIP_SECONDS and max(lengths) > 1.2      # still of varied length
    with caplog.at_level(logging.WARNING, logger="trainer.datasets"):
        say_short_clips(drop_missing(read_manifest(train)), 1.0)
    assert "shorter than" not in caplog.text
