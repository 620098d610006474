"""Fine-tuning on one's own sounds, audited (helper-65): Ctrl-C, half-written and foreign
checkpoints, manifests written elsewhere (Windows paths, repeated rows), missing files."""
from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

import pytest
import torch

from engine.errors import InvalidConfig
from tests.conftest import write
from tests.test_train_loop import SR, TinyClap, datasets, kinds_items, make_cfg
from trainer.datasets import Item
from trainer.loop import STATE_FILE, TRAINABLE_FILE, checkpoint_dirs, fit, latest_checkpoint

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def items(tmp_path_factory) -> list[Item]:
    return kinds_items(tmp_path_factory.mktemp("sounds"), 3)


class CtrlCAt(TinyClap):
    """A TinyClap that gets a Ctrl-C (SIGINT) during its ``at``-th audio forward pass."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.calls, self.at = 0, at

    def encode_audio(self, audio):
        self.calls += 1
        if self.calls == self.at:
            os.kill(os.getpid(), signal.SIGINT)
        return super().encode_audio(audio)


def _fit_catching_ctrl_c(model, train, cfg, **kw):
    try:
        return fit(model, train, cfg, **kw)
    except KeyboardInterrupt:       # as the code before the fix did: the run is simply lost
        return None


def test_ctrl_c_finishes_the_step_checkpoints_it_and_resume_is_exact(tmp_path, items):
    train, _ = datasets(items)
    torch.manual_seed(0)
    straight = fit(TinyClap(), train, make_cfg(tmp_path / "a", steps=6, checkpoint_every=0))
    torch.manual_seed(0)
    cfg = make_cfg(tmp_path / "b", steps=6, checkpoint_every=0)     # no periodic checkpoints at all
    stopped = _fit_catching_ctrl_c(CtrlCAt(3), train, cfg)
    assert stopped is not None, "Ctrl-C lost the run: no result, no checkpoint"
    assert stopped.interrupted and stopped.steps == 3
    assert latest_checkpoint(cfg.out_dir).name == "step-0000003"
    assert not (Path(cfg.out_dir) / "model").exists()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler    # Python's own again
    torch.manual_seed(5)
    resumed = fit(TinyClap(), train, cfg, resume=True)
    assert stopped.losses + resumed.losses == straight.losses


def test_cli_ctrl_c_exits_130_and_says_how_to_continue(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import trainer.train as train_module
    from ui.cli import app
    real_fit = train_module.fit

    def fit_with_ctrl_c(model, *a, **kw):
        return real_fit(_ctrl_c_on_second_batch(model), *a, **kw)
    monkeypatch.setattr(train_module, "fit", fit_with_ctrl_c)
    toy = Path(__file__).resolve().parents[1] / "trainer" / "configs" / "toy.json"
    out = tmp_path / "toy"
    try:
        result = CliRunner().invoke(app, ["train", str(toy), "--out", str(out), "--steps", "5", "--no-progress"])
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped the command")
    said = " ".join(result.stderr.split())
    assert result.exit_code == 130, said
    assert "stopped at step 2; continue with: soundsift train" in said and "--resume" in said
    assert latest_checkpoint(out).name == "step-0000002"


def _ctrl_c_on_second_batch(model):
    real = model.encode_audio
    calls = []

    def encode_audio(audio):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return real(audio)
    model.encode_audio = encode_audio
    return model


def test_a_checkpoint_write_that_fails_leaves_no_half_written_folder(tmp_path, items, monkeypatch):
    """A full disk while checkpointing: the error goes up, the earlier checkpoint stays the one
    --resume takes, and the files written so far are removed (not left to fill the disk)."""
    import trainer.loop as loop
    train, _ = datasets(items)
    cfg = make_cfg(tmp_path, steps=4, checkpoint_every=2)
    real_save = torch.save

    def full_disk(obj, f, *a, **kw):
        if "step-0000004" in str(f):
            Path(f).write_bytes(b"\0" * 10)
            raise OSError(28, "No space left on device", str(f))
        return real_save(obj, f, *a, **kw)
    monkeypatch.setattr(loop.torch, "save", full_disk)
    with pytest.raises(OSError, match="No space left"):
        fit(TinyClap(), train, cfg)
    monkeypatch.undo()
    assert [p.name for p in checkpoint_dirs(cfg.out_dir)] == ["step-0000002"]
    assert [p.name for p in (Path(cfg.out_dir) / "checkpoints").iterdir()] == ["step-0000002"]
    assert fit(TinyClap(), train, cfg, resume=True).steps == 4


def test_an_unreadable_newest_checkpoint_is_named_with_the_one_to_fall_back_to(tmp_path, items):
    """A checkpoint cut short (a power cut before its data reached the disk) is one message
    naming it and the checkpoint before it, not a safetensors traceback."""
    train, _ = datasets(items)
    cfg = make_cfg(tmp_path, steps=6, checkpoint_every=2, keep_checkpoints=3)
    fit(TinyClap(), train, cfg, max_steps=4)
    newest = latest_checkpoint(cfg.out_dir)
    state = (newest / STATE_FILE).read_bytes()
    for name, cut in ((TRAINABLE_FILE, b""), (STATE_FILE, state[: len(state) // 2]), (STATE_FILE, b"")):
        good = (newest / name).read_bytes()
        (newest / name).write_bytes(cut)
        with pytest.raises(InvalidConfig, match=r"step-0000004: checkpoint cannot be read .*remove it to resume "
                                                r"from step-0000002"):
            fit(TinyClap(), train, cfg, resume=True)
        (newest / name).write_bytes(good)
    assert fit(TinyClap(), train, cfg, resume=True).steps == 6


def test_resume_with_another_model_config_is_one_message(tmp_path, items):
    train, _ = datasets(items)
    cfg = make_cfg(tmp_path, steps=4, checkpoint_every=2)
    fit(TinyClap(), train, cfg, max_steps=2)
    with pytest.raises(InvalidConfig, match=r"step-0000002: checkpoint tensor audio_proj.2.weight has shape "
                                            r"\(16, 32\) and this config's model \(24, 32\)"):
        fit(TinyClap(dim=24), train, cfg, resume=True)


# --------------------------------------------------------------------------- manifests and configs

def _clip(path: Path, seed: int = 0) -> Path:
    from tests.conftest import noise
    return write(path, noise(0.6, SR, seed=seed), SR)


def test_a_manifest_written_on_windows_finds_its_files(tmp_path):
    from trainer.datasets import read_manifest
    _clip(tmp_path / "Foley Doors" / "Tür zu.wav")
    (tmp_path / "mine.csv").write_text('audio,caption\n"Foley Doors\\Tür zu.wav","a door shuts, hard"\n',
                                       encoding="utf-8")
    [item] = read_manifest(tmp_path / "mine.csv")
    assert item.audio == str(tmp_path / "Foley Doors" / "Tür zu.wav") and Path(item.audio).is_file()
    assert item.captions == ["a door shuts, hard"]


def test_rows_naming_one_file_are_one_item_with_all_their_captions(tmp_path):
    """One row per caption (the AudioCaps layout), or a manifest listed twice: one item per
    file, so that a clip never meets a copy of itself in a batch as a negative."""
    from trainer.config import DatasetSpec
    from trainer.train import load_items
    for name in ("a", "b"):
        _clip(tmp_path / f"{name}.wav")
    (tmp_path / "m.csv").write_text("audio,caption,tags\na.wav,a dog barks,dog\n./a.wav,a dog barks twice,pet\n"
                                    "b.wav,rain on a roof,\n")
    spec = DatasetSpec("manifest", str(tmp_path / "m.csv"))
    items = load_items([spec, spec], check_files=True)
    assert [(Path(i.audio).name, i.captions, i.tags) for i in items] == [
        ("a.wav", ["a dog barks", "a dog barks twice"], ["dog", "pet"]), ("b.wav", ["rain on a roof"], [])]


def _run_config(tmp_path: Path, **data) -> dict:
    return {"data": {"train": [{"format": "manifest", "path": "train.csv"}], **data},
            "steps": 2, "batch_size": 4, "progress": False, "device": "cpu", "out_dir": str(tmp_path / "run")}


def _write_train_manifest(tmp_path: Path, n: int = 6) -> None:
    rows = [f"t{i}.wav,sound number {i}" for i in range(n)]
    for i in range(n):
        _clip(tmp_path / f"t{i}.wav", seed=i)
    (tmp_path / "train.csv").write_text("audio,caption\n" + "\n".join(rows) + "\n")


def test_a_validation_set_with_no_readable_file_is_named_as_such(tmp_path):
    from engine.errors import InvalidDataset
    from trainer.config import config_from_dict
    from trainer.train import run_training
    _write_train_manifest(tmp_path)
    (tmp_path / "val.csv").write_text("audio,caption\nsounds/v0.wav,a thing\n")
    cfg = config_from_dict(_run_config(tmp_path, val=[{"format": "manifest", "path": "val.csv"}]), tmp_path)
    with pytest.raises(InvalidDataset, match=r"none of the 1 validation audio files could be read, e\.g\. "
                                             r".*v0\.wav.*relative paths are read from the manifest's folder"):
        run_training(cfg, model=TinyClap())


def test_validation_files_that_are_training_files_are_said(tmp_path, caplog):
    from trainer.config import config_from_dict
    from trainer.train import run_training
    _write_train_manifest(tmp_path)
    (tmp_path / "val.csv").write_text("audio,caption\nt1.wav,sound number 1\nt2.wav,sound number 2\n")
    cfg = config_from_dict(_run_config(tmp_path, val=[{"format": "manifest", "path": "val.csv"}]), tmp_path)
    caplog.set_level(logging.WARNING)
    assert run_training(cfg, model=TinyClap()).steps == 2
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("2 of 2 validation files are in the training data too" in m for m in said), said


@pytest.mark.parametrize("change, needle", [
    ({"val_batch_size": 0}, "config.val_batch_size is 0; it must be at least 1"),
    ({"data": {"clip_seconds": -1.0}}, "config.data.clip_seconds is -1.0"),
    ({"data": {"num_workers": -2}}, "config.data.num_workers is -2"),
    ({"data": {"val": [{"format": "manfest", "path": "v.csv"}]}},
     "config.data.val[0].format 'manfest': use one of manifest, folders, clotho, webdataset"),
])
def test_values_a_run_would_meet_only_late_are_refused_at_once(tmp_path, change, needle):
    from trainer.config import config_from_dict
    data = _run_config(tmp_path)
    for key, value in change.items():
        if isinstance(value, dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    with pytest.raises(InvalidConfig) as e:
        config_from_dict(data, tmp_path)
    assert needle in str(e.value)


def test_a_clotho_csv_saved_by_a_spreadsheet_is_read(tmp_path):
    """A byte-order mark (Excel's "CSV UTF-8") before file_name; a caption with an unquoted
    comma, or a file not in UTF-8, is one message naming the file."""
    from engine.errors import InvalidDataset
    from trainer.datasets import read_clotho
    (tmp_path / "captions.csv").write_text('\ufefffile_name,caption_1,caption_2\n'
                                           '"cat 1.wav","a cat, meowing","a ""loud"" cat"\n', encoding="utf-8")
    [item] = read_clotho(tmp_path / "captions.csv", tmp_path / "development")
    assert item.audio == str(tmp_path / "development" / "cat 1.wav")
    assert item.captions == ["a cat, meowing", 'a "loud" cat']
    (tmp_path / "bad.csv").write_text("file_name,caption_1\ncat.wav,a cat, meowing\n")
    with pytest.raises(InvalidDataset, match=r"bad\.csv:2: more fields than the header"):
        read_clotho(tmp_path / "bad.csv")
    (tmp_path / "latin.csv").write_bytes("file_name,caption_1\ncat.wav,un chat affam\xe9\n".encode("latin-1"))
    with pytest.raises(InvalidDataset, match=r"latin\.csv: not UTF-8 text"):
        read_clotho(tmp_path / "latin.csv")


def test_resume_with_other_batches_or_schedule_is_told(tmp_path, items, caplog):
    """README: --resume continues "exactly where it stopped"; with another batch_size, seed,
    steps or data it cannot, and a changed optim.lr is not used at all: each is said."""
    train, _ = datasets(items)
    cfg = make_cfg(tmp_path, steps=4, checkpoint_every=2, batch_size=4)
    fit(TinyClap(), train, cfg, max_steps=2)
    caplog.set_level(logging.WARNING, logger="trainer.loop")
    assert fit(TinyClap(), train, cfg, resume=True, max_steps=3).steps == 3
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]       # the same run: nothing
    other = make_cfg(tmp_path, steps=8, checkpoint_every=2, batch_size=6)
    other.optim.lr = 0.01
    assert fit(TinyClap(), train, other, resume=True, max_steps=4).steps == 4
    said = " ".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
    assert "written by a run with other settings (batch_size 4 → 6, steps 4 → 8)" in said, said
    assert "optim.lr 0.01 is not used; a resumed run keeps the rate of its checkpoint (0.05)" in said, said


def test_a_model_folder_already_in_out_is_never_replaced_by_a_new_run(tmp_path, items):
    """--out naming a project folder that has a 'model' folder of its own: the finished run used
    to delete it (rmtree) to put its model there. It is refused first, before any step."""
    train, _ = datasets(items)
    cfg = make_cfg(tmp_path, steps=2)
    mine = Path(cfg.out_dir) / "model"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("my own notes")
    with pytest.raises(InvalidConfig, match=r"holds a folder 'model' \(1 entry, e\.g\. notes\.txt\), which "
                                            r"this run would replace"):
        fit(TinyClap(), train, cfg)
    assert (mine / "notes.txt").read_text() == "my own notes"
    assert not (Path(cfg.out_dir) / "log.jsonl").exists()


def test_a_jsonl_manifest_with_a_byte_order_mark_or_not_in_utf8(tmp_path):
    from engine.errors import InvalidDataset
    from trainer.datasets import read_manifest
    (tmp_path / "bom.jsonl").write_bytes(b'\xef\xbb\xbf{"audio": "a.wav", "caption": "a door"}\n')
    [item] = read_manifest(tmp_path / "bom.jsonl")
    assert item.captions == ["a door"]
    (tmp_path / "latin.jsonl").write_bytes('{"audio": "a.wav", "caption": "caf\xe9"}\n'.encode("latin-1"))
    with pytest.raises(InvalidDataset, match=r"latin\.jsonl: not UTF-8 text .*save the manifest as UTF-8"):
        read_manifest(tmp_path / "latin.jsonl")


def test_a_file_that_fails_mid_run_does_not_end_the_run(tmp_path, items, caplog):
    """A file read fine when the run began (or a WebDataset member, never probed) and fails to
    decode at step N — a removed file, a drive gone to sleep, a truncated shard — used to end
    the run there, losing every step since the last checkpoint (with the default
    checkpoint_every of 0: all of them). Now the next item stands in for it, said once."""
    import shutil
    mine = [Item(str(shutil.copy(it.audio, tmp_path / f"{i}.wav")), it.captions, it.tags)
            for i, it in enumerate(items)]
    train, _ = datasets(mine)
    Path(mine[5].audio).unlink()
    caplog.set_level(logging.WARNING)
    result = fit(TinyClap(), train, make_cfg(tmp_path, steps=6, batch_size=6))
    assert result.steps == 6 and (Path(result.out_dir) / "model" / "model.safetensors").is_file()
    said = [r.getMessage() for r in caplog.records if "used in its place" in r.getMessage()]
    assert len(said) == 1 and "5.wav" in said[0], said


def test_a_validation_file_that_fails_mid_run_skips_that_validation_only(tmp_path, items, caplog):
    """The last validation runs before the model is written: a validation file gone by then used
    to end the run with no model and no last checkpoint."""
    import json
    import shutil

    from trainer.datasets import AudioTextDataset
    val_items = [Item(str(shutil.copy(it.audio, tmp_path / f"v{i}.wav")), it.captions, it.tags)
                 for i, it in enumerate(items[:4])]
    train, _ = datasets(items)
    val = AudioTextDataset(val_items, SR, 0.5, train=False)
    Path(val_items[2].audio).unlink()
    caplog.set_level(logging.WARNING)
    cfg = make_cfg(tmp_path, steps=3)
    result = fit(TinyClap(), train, cfg, val_set=val)
    assert result.steps == 3 and result.validation is None
    assert (Path(cfg.out_dir) / "model" / "model.safetensors").is_file()
    assert latest_checkpoint(cfg.out_dir).name == "step-0000003"
    assert any("step 3: validation skipped" in r.getMessage() and "v2.wav" in r.getMessage()
               for r in caplog.records)
    events = [json.loads(line)["event"] for line in (Path(cfg.out_dir) / "log.jsonl").read_text().splitlines()]
    assert "validation_skipped" in events


def test_every_file_left_out_is_listed_with_verbose(tmp_path, caplog):
    from trainer.datasets import drop_missing
    good = Item(str(_clip(tmp_path / "ok.wav")), ["fine"])
    gone = [Item(str(tmp_path / f"gone {i}.wav"), ["x"]) for i in range(3)]
    caplog.set_level(logging.DEBUG, logger="trainer.datasets")
    assert drop_missing([good, *gone]) == [good]
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "3 of 4 training files unusable and left out" in said and "--verbose lists them all" in said
    assert all(f"gone {i}.wav" in said for i in range(3)), said


def test_an_out_dir_under_home_is_not_a_folder_named_tilde(tmp_path, monkeypatch):
    from trainer.config import config_from_dict
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    cfg = config_from_dict({**_run_config(tmp_path), "out_dir": "~/runs/mine"}, tmp_path)
    assert cfg.out_dir == str(tmp_path / "home" / "runs" / "mine")


def test_a_run_after_one_that_kept_nothing_logs_only_its_own_events(tmp_path, items):
    """A run that died before its first checkpoint left log.jsonl; the next run (it starts at
    step 0: nothing to resume) appended to it, two runs' events in one log. The old log is set
    aside as log.abandoned.jsonl."""
    import json
    train, _ = datasets(items)
    cfg = make_cfg(tmp_path, steps=2, checkpoint_every=0)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True)
    (out / "log.jsonl").write_text(json.dumps({"event": "start", "config": {"seed": 99}}) + "\n")
    fit(TinyClap(), train, cfg)
    events = [json.loads(line)["event"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert events.count("start") == 1 and events.count("step") == 2
    assert json.loads((out / "log.abandoned.jsonl").read_text())["config"] == {"seed": 99}


def test_the_toy_set_is_written_again_when_its_settings_change(tmp_path):
    """An existing toy-data/ was reused whatever data.toy asked for now (other clips per class,
    another seed): the run trained on the old set without a word."""
    import json

    from trainer.config import config_from_dict
    from trainer.train import prepare_data

    def toy_rows(per_class: int) -> int:
        cfg = config_from_dict({"data": {"toy": {"per_class": per_class, "val_per_class": 1}},
                                "out_dir": str(tmp_path / "out")})
        prepare_data(cfg, tmp_path / "out")
        return len((tmp_path / "out" / "toy-data" / "train.jsonl").read_text().splitlines())
    two, three = toy_rows(2), toy_rows(3)
    assert three == two * 3 // 2 and toy_rows(3) == three
    assert json.loads((tmp_path / "out" / "toy-data" / "settings.json").read_text())["per_class"] == 3
