"""`soundsift train` on a cached-feature config ("trainer": "cached-features"), beside the loop.

A tiny corpus of generated clips, the real frozen towers (YAMNet ONNX, MiniLM), two views and a
few steps: the CLI dispatches on the config's ``trainer`` key, applies --steps and --out, and
writes a model folder that load_model reads.
"""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from engine.errors import InvalidConfig
from tests.conftest import chirp, noise, tone, write
from trainer.cached_train import CachedTrainConfig
from trainer.config import load_config, trainer_of
from ui.cli import app

REPO = Path(__file__).resolve().parents[1]
SR = 16000

# each run builds its modules with init_baseline, which encodes the 521 AudioSet class names
pytestmark = pytest.mark.usefixtures("minilm_memo")
CLIPS = {"beep": lambda: tone(880, 1.5, SR), "hiss": lambda: noise(1.5, SR, seed=3),
         "sweep": lambda: chirp(300, 3000, 1.5, SR), "hum": lambda: tone(60, 1.5, SR, amp=0.3)}


def _manifest(path: Path, folder: str) -> None:
    rows = []
    for label, make in CLIPS.items():
        audio = write(path.parent / folder / f"{label}.wav", make(), SR)
        rows.append({"audio": audio.relative_to(path.parent).as_posix(), "tags": [label],
                     "captions": [label, f"the sound of {label}"]})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _config(tmp_path: Path, **overrides) -> Path:
    data = {"trainer": "cached-features", "train_manifest": "train.jsonl", "val_manifest": "val.jsonl",
            "cache_dir": str(tmp_path / "cache"), "views": 2, "augment": {"codec": 0.0}, "variant": "yamnet",
            "steps": 0, "batch_size": 4, "lr": 0.01, "warmup_steps": 2, "seeds": [0], "val_every": 3,
            "out": str(tmp_path / "config-out"), **overrides}
    path = tmp_path / "cached.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cached-corpus")
    _manifest(root / "train.jsonl", "train")
    _manifest(root / "val.jsonl", "val")
    return root


def test_cached_config_trains_through_the_cli_into_a_loadable_model(corpus, tmp_path):
    config = _config(corpus, cache_dir=str(tmp_path / "cache"), out=str(tmp_path / "config-out"))
    out = tmp_path / "model"
    result = CliRunner().invoke(app, ["train", str(config), "--steps", "6", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output

    def strict(name):
        raise AssertionError(f"--json printed {name}, which is not JSON")
    summary = json.loads(result.stdout, parse_constant=strict)
    assert summary["trainer"] == "cached-features" and summary["steps"] == 6
    assert summary["out_dir"] == summary["model_dir"] == str(out)
    assert isinstance(summary["seconds"], float)
    for name in ("baseline", "start", "final"):
        for key in ("zs_top1", "zs_top5", "t2a_R@1", "t2a_R@5", "a2t_R@1"):
            assert 0.0 <= summary[name][key] <= 1.0, (name, key)
    assert summary["final"]["step"] == 6                    # --steps overrode the config's 0
    assert summary["final"]["zs_top1_unseen"] is None       # every validation label was seen: no NaN
    assert not (tmp_path / "config-out").exists()           # --out overrode the config's out
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [
        "text_minilm.npz", "train_yamnet_v2_s0.npz", "val_yamnet.npz"]

    report = json.loads((out / "training_report.json").read_text())
    assert report["config"]["steps"] == 6 and report["config"]["trainer"] == "cached-features"
    assert [h["step"] for h in report["history"]] == [0, 3, 6]

    from engine.models import load_model
    model = load_model(out)
    a = model.embed_audio([tone(880, 1.5, model.sample_rate), noise(1.5, model.sample_rate, seed=3)])
    t = model.embed_text(["beep", "hiss"])
    assert a.shape == t.shape == (2, model.dim)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-5)


def test_final_with_val_trains_the_saved_model_on_the_validation_clips_too(corpus, tmp_path, capsys):
    config = _config(corpus, cache_dir=str(tmp_path / "cache"), space="audioset", final_with_val=True)   # steps 0
    out = tmp_path / "model"
    result = CliRunner().invoke(app, ["train", str(config), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    report = json.loads((out / "training_report.json").read_text())
    assert summary["final_trained_on_validation"] is True and report["final_trained_on_validation"] is True
    held_out = report["seeds"]["0"]                                 # the seed trained without them
    assert summary["held_out"]["zs_top1"] == held_out["zs_top1"] and summary["held_out"]["zs_top1_unseen"] is None
    # the validation clips joined the training views: 4 clips × 2 views, drawn after the 4 training clips
    from trainer.precompute import FeatureCache
    extra = FeatureCache.load(tmp_path / "cache" / "valtrain_yamnet_v2_s0_at4.npz")
    train = FeatureCache.load(tmp_path / "cache" / "train_yamnet_v2_s0.npz")
    assert len(extra) == 8 and extra.meta["first_index"] == 4
    # ... and the saved start's class prior is the mean clean view over both manifests
    from safetensors.numpy import load_file
    prior = np.concatenate([train.posteriors[train.view == 0], extra.posteriors[extra.view == 0]]).mean(0)
    saved = np.diag(load_file(out / "model.safetensors")["class_proj.weight"])
    np.testing.assert_allclose(saved, (prior + 1e-3) ** -0.5, rtol=1e-5)
    trained = json.loads((out / "config.json").read_text())["extra"]["trained"]
    assert trained["validation_clips_trained_on"] is True and "validation" not in trained
    assert trained["validation_without_them"]["t2a_R@1"] == round(held_out["t2a_R@1"], 4)
    # the held-out seed is saved beside it: the train-only prior, its validation figures
    kept = json.loads((out / "held-out" / "config.json").read_text())["extra"]["trained"]
    assert kept["validation"]["t2a_R@1"] == round(held_out["t2a_R@1"], 4)
    train_prior = train.posteriors[train.view == 0].mean(0)
    np.testing.assert_allclose(np.diag(load_file(out / "held-out" / "model.safetensors")["class_proj.weight"]),
                               (train_prior + 1e-3) ** -0.5, rtol=1e-5)
    # benchmarks on the validation split say which of the two they were given
    from engine.models.soundsift_clap import SoundsiftClap
    from trainer.cached_train import note_if_trained_on_validation
    capsys.readouterr()
    assert note_if_trained_on_validation(SoundsiftClap.from_pretrained(out), out)
    assert "fit, not validation" in capsys.readouterr().err
    assert not note_if_trained_on_validation(SoundsiftClap.from_pretrained(out / "held-out"), out / "held-out")
    assert capsys.readouterr().err == ""
    # without --json the figures are labelled for what they are
    plain = CliRunner().invoke(app, ["train", str(config), "--out", str(tmp_path / "m2")])
    assert plain.exit_code == 0, plain.output
    text = " ".join(plain.output.split())
    assert "validation (seed 0, trained without the validation clips): zs_top1" in text
    assert "on the validation clips, which the saved model also trained on: zs_top1" in text


@pytest.mark.parametrize("flags,named", [
    (["--resume"], "--resume"),
    (["--max-steps", "3"], "--max-steps"),
    (["--device", "cpu", "--resume"], "--resume, --device"),
])
def test_loop_only_options_are_refused_for_a_cached_config(tmp_path, flags, named):
    config = _config(tmp_path)
    result = CliRunner().invoke(app, ["train", str(config), *flags])
    assert result.exit_code == 1
    message = " ".join(result.output.split())
    assert f"{config}: {named} cannot be used with a cached-features config" in message
    assert not (tmp_path / "cache").exists() and not (tmp_path / "config-out").exists()


def test_a_cached_config_is_refused_under_torchrun(tmp_path, monkeypatch):
    """Every torchrun process would train the same model into the same folder."""
    config = _config(tmp_path)
    monkeypatch.setenv("WORLD_SIZE", "2")
    result = CliRunner().invoke(app, ["train", str(config)])
    assert result.exit_code == 1
    assert "trains in one process on the CPU; run it without torchrun" in " ".join(result.output.split())
    assert not (tmp_path / "cache").exists() and not (tmp_path / "config-out").exists()


def test_an_unknown_trainer_is_reported(tmp_path):
    config = _config(tmp_path, trainer="cached")
    result = CliRunner().invoke(app, ["train", str(config)])
    assert result.exit_code == 1
    assert "trainer 'cached' is not one of 'loop', 'cached-features'" in " ".join(result.output.split())


def test_the_trainer_key_selects_the_config_class(tmp_path):
    for name in ("soundsift_base.json", "soundsift_base_ablation.json", "soundsift_fast.json"):
        path = REPO / "trainer" / "configs" / name
        assert trainer_of(path) == "cached-features"
        assert CachedTrainConfig.from_file(path).trainer == "cached-features"
    toy = REPO / "trainer" / "configs" / "toy.json"
    assert trainer_of(toy) == "loop"
    explicit = tmp_path / "loop.toml"          # an explicit "loop", in TOML, is the default loop config
    explicit.write_text('trainer = "loop"\nsteps = 3\n[data.toy]\nper_class = 2\n')
    assert trainer_of(explicit) == "loop" and load_config(explicit).steps == 3
    with pytest.raises(InvalidConfig, match="a 'cached-features' config, not a loop config"):
        load_config(REPO / "trainer" / "configs" / "soundsift_base.json")
    cached_toml = tmp_path / "cached.toml"     # cached configs read TOML too, through the same reader
    cached_toml.write_text('trainer = "cached-features"\nsteps = 5\nvariant = "yamnet"\n')
    assert CachedTrainConfig.from_file(cached_toml).steps == 5
    cached_toml.write_text('trainer = "loop"\nvariant = "yamnet"\n')
    with pytest.raises(InvalidConfig, match="trainer 'loop' is not 'cached-features'"):
        CachedTrainConfig.from_file(cached_toml)


@pytest.mark.parametrize("settings, message", [
    ({"minilm_mix": 0.2}, "config minilm_mix needs space 'audioset'"),
    ({"space": "audioset", "minilm_mix": 1.0}, r"config minilm_mix must be in \[0, 1\), not 1.0"),
    ({"space": "audioset", "text_temperature": 0}, "config text_temperature must be > 0, not 0"),
    ({"class_text_template": "{label}"}, "config class_text_template '{label}' may only use"),
])
def test_a_config_the_model_would_refuse_is_refused_when_read(tmp_path, settings, message):
    """The model config's own check runs when a cached config is read, so a bad setting stops the
    run before any feature is computed, with the config file's name in front."""
    path = _config(tmp_path, **settings)
    with pytest.raises(InvalidConfig, match=f"^{re.escape(str(path))}: {message}"):
        CachedTrainConfig.from_file(path)


def test_soundsift_fast_is_the_base_recipe_without_the_aisfx_branch():
    """The two bundled models' configs differ only where the README says they do."""
    configs = REPO / "trainer" / "configs"
    base = CachedTrainConfig.from_file(configs / "soundsift_base.json")
    fast = CachedTrainConfig.from_file(configs / "soundsift_fast.json")
    differ = {f.name for f in dataclasses.fields(CachedTrainConfig) if getattr(base, f.name) != getattr(fast, f.name)}
    assert differ == {"aisfx_weights", "variant", "cache_dir", "out"}
    assert (fast.variant, fast.aisfx_weights, base.variant) == ("yamnet", None, "both")


def test_a_config_extends_another_with_its_paths_read_where_each_is_written(tmp_path):
    base = _config(tmp_path, aisfx_weights="w/aisfx.safetensors", steps=7)    # tmp_path/cached.json
    (tmp_path / "sub").mkdir()
    child = tmp_path / "sub" / "fast.json"
    child.write_text(json.dumps({"trainer": "cached-features", "extends": "../cached.json",
                                 "aisfx_weights": None, "val_manifest": "mine.jsonl", "steps": 3}))
    parent_cfg, cfg = CachedTrainConfig.from_file(base), CachedTrainConfig.from_file(child)
    assert (parent_cfg.steps, parent_cfg.aisfx_weights) == (7, str(tmp_path / "w/aisfx.safetensors"))
    assert (cfg.steps, cfg.aisfx_weights, cfg.batch_size) == (3, None, 4)          # own keys win, others inherited
    assert Path(cfg.train_manifest) == tmp_path / "sub" / ".." / "train.jsonl"     # the base's, from its folder
    assert Path(cfg.val_manifest) == tmp_path / "sub" / "mine.jsonl"               # its own, from its folder
    loop = tmp_path / "loop.json"
    loop.write_text(json.dumps({"trainer": "cached-features", "extends": "loop.json"}))
    with pytest.raises(InvalidConfig, match="leads back to loop.json"):
        CachedTrainConfig.from_file(loop)


def test_the_module_entry_point_takes_steps_and_out_too(corpus, tmp_path, capsys):
    """`python -m trainer.cached_train CONFIG --steps N --out DIR`, as the README says."""
    from trainer.cached_train import main
    config = _config(corpus, cache_dir=str(tmp_path / "cache"), out=str(tmp_path / "config-out"))
    main([str(config), "--steps", "3", "--out", str(tmp_path / "model")])
    printed = json.loads(capsys.readouterr().out)
    assert printed["final"]["step"] == 3
    assert json.loads((tmp_path / "model" / "training_report.json").read_text())["config"]["steps"] == 3
    assert not (tmp_path / "config-out").exists()
    with pytest.raises(SystemExit):
        main([str(config), "--steps", "0"])


def test_rows_naming_one_file_are_one_item_for_the_cached_trainer_too(tmp_path, monkeypatch):
    """A manifest with a row per caption (AudioCaps' layout) gave the cached trainer one item per
    row: copies of a clip met in a batch as each other's negatives. Now one item per file, with
    every caption, as the loop's trainer reads it."""
    import trainer.cached_train as cached
    _manifest(tmp_path / "train.jsonl", "train")
    _manifest(tmp_path / "val.jsonl", "val")
    rows = (tmp_path / "train.jsonl").read_text().splitlines()
    extra = dict(json.loads(rows[0]), captions=["a high beep"], tags=[])
    (tmp_path / "train.jsonl").write_text("\n".join([*rows, json.dumps(extra)]) + "\n")
    class Read(Exception):
        """Raised by build_cache once it has the items: what follows needs real caches."""

    def read(items, *args, **kwargs):
        raise Read(items)
    monkeypatch.setattr(cached, "build_cache", read)
    with pytest.raises(Read) as got:
        cached.load_splits(CachedTrainConfig.from_file(_config(tmp_path)))
    train = got.value.args[0]
    assert len(train) == len(CLIPS) and train[0].captions == ["beep", "the sound of beep", "a high beep"]
