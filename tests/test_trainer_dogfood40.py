"""A researcher fine-tuning on their own library, following README's training sections (session 40):
a --resume of a finished run, a resume with another model, what a fine-tuned folder says of its
training, and who can read the weights it writes."""
from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from engine.errors import InvalidConfig
from tests.test_train_loop import TinyClap, datasets, kinds_items, make_cfg
from trainer.config import config_from_dict
from trainer.loop import fit

torch.set_num_threads(1)

#: what soundsift-base's config.json says of its own training (cached_train writes it)
BASE_RECORD = {"seed": 0, "steps": 600, "validation_clips_trained_on": True, "variant": "both",
               "validation_without_them": {"t2a_R@1": 0.4681, "zs_top1": 0.426}}


class RecordedClap(TinyClap):
    """A TinyClap whose config carries ``extra`` and is written whole to config.json, as
    SoundsiftClap.save_pretrained writes its config (``extra`` included)."""

    def __init__(self, window_seconds: float = 0.5, extra: dict | None = None) -> None:
        super().__init__()
        self.config = SimpleNamespace(window_seconds=window_seconds, onnx_threads=0,
                                      extra=dict(extra if extra is not None else {"trained": BASE_RECORD}))
        self.config.to_dict = lambda: {"model_type": "tiny-test", "window_seconds": self.config.window_seconds,
                                       "onnx_threads": 0, "extra": self.config.extra}

    def save_pretrained(self, folder) -> None:
        super().save_pretrained(folder)
        (Path(folder) / "config.json").write_text(json.dumps(self.config.to_dict()))


@pytest.fixture(scope="module")
def items(tmp_path_factory):
    return kinds_items(tmp_path_factory.mktemp("sounds"), 2)


# --------------------------------------------------------------------------- --resume of a finished run

def test_a_resume_of_a_finished_run_keeps_its_model_and_summary(tmp_path, items):
    """`soundsift train finetune.json --resume` after the run had finished printed "nothing left
    to train", then rewrote summary.json with "validation": null, "last_loss": null and
    "seconds": 0.016 (the run's figures lost) and wrote the model folder again."""
    train, val = datasets(items)
    cfg = make_cfg(tmp_path, steps=2, checkpoint_every=1)
    first = fit(TinyClap(), train, cfg, val_set=val)
    out = Path(cfg.out_dir)
    summary = (out / "summary.json").read_text()
    weights = out / "model" / "model.safetensors"
    written = weights.stat().st_mtime_ns

    again = fit(TinyClap(), train, cfg, val_set=val, resume=True)
    assert (out / "summary.json").read_text() == summary
    assert json.loads(summary)["validation"] is not None
    assert weights.stat().st_mtime_ns == written
    assert (again.steps, again.resumed_at) == (2, 2)
    assert again.validation == first.validation and again.validated_at == 2


def test_a_resume_of_a_finished_run_does_not_read_its_data_again(tmp_path, items):
    """It probed every file of the manifests (10 s for 210 clips here, far longer for a real
    library) to train nothing; a manifest moved away since made it fail."""
    from trainer.train import run_training
    manifest = tmp_path / "train.jsonl"
    manifest.write_text("".join(json.dumps({"audio": it.audio, "caption": it.captions[0]}) + "\n" for it in items))
    cfg = {"data": {"train": [{"format": "manifest", "path": "train.jsonl"}], "num_workers": 0},
           "steps": 2, "batch_size": 4, "progress": False, "out_dir": str(tmp_path / "run")}
    run_training(config_from_dict(cfg, tmp_path), model=TinyClap())
    manifest.unlink()
    result = run_training(config_from_dict(cfg, tmp_path), model=TinyClap(), resume=True)
    assert (result.steps, result.resumed_at) == (2, 2) and result.model_dir.is_dir()


def test_a_resume_with_more_steps_still_trains_on(tmp_path, items):
    train, _ = datasets(items)
    fit(TinyClap(), train, make_cfg(tmp_path, steps=2))
    result = fit(TinyClap(), train, make_cfg(tmp_path, steps=3), resume=True)
    assert (result.resumed_at, result.steps, len(result.losses)) == (2, 3, 1)
    assert json.loads((Path(result.out_dir) / "summary.json").read_text())["steps"] == 3


# --------------------------------------------------------------------------- resuming with another model

def test_another_model_is_named_by_its_setting_not_by_its_training_record(tmp_path, items):
    """A resume with "init": "soundsift-fast" instead of soundsift-base opened with a 600-character
    dump of both models' training figures (config.json's ``extra``), the setting that differs
    (use_aisfx True → False) at its very end."""
    train, _ = datasets(items)
    cfg = make_cfg(tmp_path, steps=4, checkpoint_every=2)
    fit(RecordedClap(), train, cfg, max_steps=2)
    other = {"trained": {**BASE_RECORD, "variant": "yamnet", "validation_without_them": {"zs_top1": 0.3991}}}
    with pytest.raises(InvalidConfig, match=r"step-0000002: the checkpoint was made with another model config "
                                            r"\(window_seconds 0\.5 → 1\.0\); resume with"):
        fit(RecordedClap(window_seconds=1.0, extra=other), train, cfg, resume=True)
    # the same model retrained since (another record, the same settings) resumes
    assert fit(RecordedClap(extra=other), train, cfg, resume=True).steps == 4


# --------------------------------------------------------------------------- what the model folder says

def test_a_fine_tuned_model_records_its_own_training(tmp_path, items):
    """runs/mine/model/config.json said "trained": {"steps": 600, "validation_without_them": …}:
    soundsift-base's record, as if the fine-tune had those figures."""
    train, _ = datasets(items)
    cfg = make_cfg(tmp_path, steps=3, checkpoint_every=2, model={"init": "soundsift-base"})
    fit(RecordedClap(), train, cfg, max_steps=2)
    fit(RecordedClap(), train, cfg, resume=True)          # the resumed run starts from the init's record again
    out = Path(cfg.out_dir)
    for folder, steps in ((out / "model", 3), (out / "checkpoints" / "step-0000002", 2)):
        trained = json.loads((folder / "config.json").read_text())["extra"]["trained"]
        assert trained == {"trainer": "loop", "init": "soundsift-base", "steps": steps, "seed": 1, "batch_size": 8,
                           "train_items": len(items), "validation_clips_trained_on": True,
                           "started_from": BASE_RECORD, "data": make_cfg_data(tmp_path)}


def test_a_model_without_a_training_record_gets_one_without_a_start(tmp_path, items):
    train, _ = datasets(items)
    cfg = make_cfg(tmp_path, steps=1)
    fit(RecordedClap(extra={}), train, cfg)
    trained = json.loads((Path(cfg.out_dir) / "model" / "config.json").read_text())["extra"]["trained"]
    assert trained == {"trainer": "loop", "init": None, "steps": 1, "seed": 1, "batch_size": 8,
                       "train_items": len(items), "data": make_cfg_data(tmp_path)}


def make_cfg_data(tmp_path: Path) -> list[dict]:
    """The training data make_cfg's config names, as extra.trained records it (the loop's tests
    pass their datasets to fit, so the file is not there: no fingerprint)."""
    path = tmp_path / "unused.jsonl"
    return [{"format": "manifest", "path": str(path), "resolved": str(path.resolve()), "fingerprint": None}]


# --------------------------------------------------------------------------- who can read the weights

@pytest.fixture
def umask_022():
    before = os.umask(0o022)
    yield
    os.umask(before)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_trained_weights_are_as_readable_as_their_config(tmp_path, items, umask_022):
    """safetensors 0.8 writes 0600 whatever the umask: runs/mine/model held a config.json of
    0644 and a model.safetensors of 0600, which `soundsift serve` under another account, or a
    colleague's `--model`, cannot read."""
    train, _ = datasets(items)
    cfg = make_cfg(tmp_path, steps=1)
    fit(TinyClap(), train, cfg)
    out = Path(cfg.out_dir)
    for folder in (out / "model", out / "checkpoints" / "step-0000001"):
        files = sorted(folder.glob("*.safetensors"))
        assert files and {f.stat().st_mode & 0o777 for f in files} == {0o644}, folder


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_cached_features_models_are_readable_too(tmp_path, umask_022):
    from trainer.cached_train import _save
    module = RecordedClap(extra={})
    _save(module, tmp_path / "model", {"steps": 1})
    assert (tmp_path / "model" / "model.safetensors").stat().st_mode & 0o777 == 0o644


# --------------------------------------------------------------------------- relative paths

def test_a_dot_relative_init_is_read_from_the_current_folder_as_a_plain_one(tmp_path, monkeypatch):
    """README's retrain.json starts from "runs/mine/model", the model an earlier run's out_dir put
    under the current folder; written "./runs/mine/model" it was looked for beside the config only:
    "model.init 'cfgs/runs/mine/model': no model folder with config.json there"."""
    (tmp_path / "runs" / "mine" / "model").mkdir(parents=True)
    (tmp_path / "cfgs").mkdir()
    monkeypatch.chdir(tmp_path)
    data = {"model": {"init": "./runs/mine/model"}, "data": {"train": [{"format": "manifest", "path": "m.csv"}]}}
    assert Path(config_from_dict(data, "cfgs").model.init).resolve() == (tmp_path / "runs/mine/model").resolve()
    (tmp_path / "cfgs" / "runs" / "mine" / "model").mkdir(parents=True)     # beside the config comes first
    assert Path(config_from_dict(data, "cfgs").model.init).resolve() == (tmp_path / "cfgs/runs/mine/model").resolve()
    assert config_from_dict({**data, "model": {"init": "soundsift-base"}}, "cfgs").model.init == "soundsift-base"


def test_an_init_folder_found_nowhere_says_where_it_was_looked_for(tmp_path, monkeypatch):
    from trainer.train import check_model_spec
    monkeypatch.chdir(tmp_path)
    cfg = config_from_dict({"model": {"init": "./runs/nope/model"},
                            "data": {"train": [{"format": "manifest", "path": "m.csv"}]}}, "cfgs")
    with pytest.raises(InvalidConfig, match=r"model\.init '\./runs/nope/model': no model folder with config\.json "
                                            r"there \(looked for beside the config file, then in "):
        check_model_spec(cfg)


# --------------------------------------------------------------------------- wrong column names

def test_a_table_whose_audio_column_has_another_name_says_its_columns_are_not_read(tmp_path):
    """"wav,desc,cat" said "no audio path (expected a column/key named 'audio', …)" and not, as
    a table with only its caption column misnamed did, which of its own columns went unread."""
    from engine.errors import InvalidDataset
    from trainer.datasets import read_manifest
    (tmp_path / "mine.csv").write_text("wav,desc,cat\nsounds/a.wav,a door slam,door\n")
    with pytest.raises(InvalidDataset, match=r"mine\.csv:2: no audio path \(expected a column/key named 'audio', "
                                             r".*\); its 'wav', 'desc', 'cat' are not read"):
        read_manifest(tmp_path / "mine.csv")


# --------------------------------------------------------------------------- eval plots

def test_eval_plots_name_the_model_and_the_data(tmp_path):
    """recall_at_k.png of soundsift-base and of the fine-tune, opened side by side, were alike
    but for their curves: only report.md named the model."""
    import numpy as np
    from trainer.evaluation import report
    figure = report._recall_figure({"text → audio": np.array([0.8, 1.0])},
                                   report.plot_subject("runs/mine/model", "held/out/test.csv"))
    assert figure.axes[0].get_title() == "Retrieval recall@k\nruns/mine/model on test.csv"
    long = report.plot_subject("/home/someone/" + "x" * 80 + "/runs/mine/model", "test.csv")
    assert len(long) == 60 and long.startswith("…") and long.endswith("/runs/mine/model on test.csv")
    result = {"model": "soundsift-base", "n": 2, "top1": 0.5, "top5": 1.0, "top10": 1.0, "mAP@10": 0.75,
              "per_class": {"dog": 1.0, "$cat$": 0.0}}
    report.write_zeroshot_report(tmp_path, result, np.eye(2), ["dog", "$cat$"], "{label}", source="labels.csv")
    assert (tmp_path / "confusion_matrix.png").stat().st_size > 0
    titles = [f.axes[0].get_title() for f in (report._confusion_figure(np.eye(2), ["dog", "cat"], "m on d.csv"),
                                              report._per_class_figure({"dog": 1.0}, "m on d.csv"))]
    assert all(t.endswith("\nm on d.csv") for t in titles)


# --------------------------------------------------------------------------- config typos

def test_a_config_typo_or_another_trainers_name_says_which_key_was_meant(tmp_path):
    """"batchsize" and Hugging Face's "learning_rate" were refused with the list of every known
    key, which a reader must scan for the one they meant."""
    train = {"train": [{"format": "manifest", "path": "m.csv"}]}
    with pytest.raises(InvalidConfig, match=r"config: unknown key\(s\) batchsize \(did you mean batch_size\?\); "
                                            r"known: accum_steps"):
        config_from_dict({"data": train, "batchsize": 8}, tmp_path)
    with pytest.raises(InvalidConfig, match=r"config\.optim: unknown key\(s\) learning_rate \(did you mean lr\?\)"):
        config_from_dict({"data": train, "optim": {"learning_rate": 1e-4}}, tmp_path)
    with pytest.raises(InvalidConfig, match=r"unknown key\(s\) colour; known"):         # nothing close: no guess
        config_from_dict({"data": train, "colour": "red"}, tmp_path)


def test_a_cached_features_config_typo_says_which_key_was_meant(tmp_path):
    from trainer.cached_train import CachedTrainConfig
    (tmp_path / "c.json").write_text(json.dumps({"trainer": "cached-features", "stepz": 10}))
    with pytest.raises(InvalidConfig, match=r"unknown key\(s\) stepz \(did you mean steps\?\)"):
        CachedTrainConfig.from_file(tmp_path / "c.json")


def test_a_resume_with_other_crops_is_told_it_is_no_longer_exact(tmp_path, items, caplog):
    """data.clip_seconds changed between the stop and the --resume: the run went on with other
    crops, so other batches, without the warning another batch_size gets."""
    import logging
    train, _ = datasets(items)
    fit(TinyClap(), train, make_cfg(tmp_path, steps=3, checkpoint_every=1), max_steps=1)
    cfg = make_cfg(tmp_path, steps=3, checkpoint_every=1, data={
        "train": [{"format": "manifest", "path": "unused.jsonl"}], "num_workers": 0, "clip_seconds": 0.25})
    with caplog.at_level(logging.WARNING):
        fit(TinyClap(), train, cfg, resume=True, max_steps=2)
    assert any("written by a run with other settings (clip_seconds None → 0.25)" in r.getMessage()
               for r in caplog.records)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_the_engines_own_save_gives_weights_their_configs_permissions(tmp_path, umask_022):
    """save_pretrained itself, as `python -m engine.models.soundsift_clap runs/baseline` and any
    script call it outside the trainer, wrote model.safetensors 0600 beside a 0644 config.json."""
    from engine.models.soundsift_clap import CONFIG_FILE, WEIGHTS_FILE, SoundsiftClap, SoundsiftClapConfig
    from engine.towers import yamnet
    folder = SoundsiftClap(SoundsiftClapConfig(space="audioset", dim=yamnet.NUM_CLASSES, text_adapter=False)
                           ).init_baseline().save_pretrained(tmp_path / "m")
    modes = {name: (folder / name).stat().st_mode & 0o777 for name in (CONFIG_FILE, WEIGHTS_FILE)}
    assert modes == {CONFIG_FILE: 0o644, WEIGHTS_FILE: 0o644}
