"""Leftovers of the trainer/eval CLI audit: failed runs leave the output folder as they found it,
the batch-size message names the config file, truncated WebDataset shards are called truncated."""
from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest

from engine.errors import InvalidDataset
from tests.test_train_audit import _run_config, _write_train_manifest
from tests.test_train_loop import TinyClap


def _config_file(tmp_path: Path, **changes) -> Path:
    path = tmp_path / "run.json"
    path.write_text(json.dumps({**_run_config(tmp_path), **changes}))
    return path


def test_a_run_on_an_empty_manifest_leaves_no_output_folder(tmp_path):
    from trainer.train import run_training
    (tmp_path / "train.csv").write_text("audio,caption\n")
    with pytest.raises(InvalidDataset, match="manifest is empty"):
        run_training(_config_file(tmp_path), model=TinyClap())
    assert not (tmp_path / "run").exists()


def test_a_batch_larger_than_the_data_names_the_config_and_writes_nothing(tmp_path):
    from trainer.train import run_training
    _write_train_manifest(tmp_path, n=3)
    config = _config_file(tmp_path, batch_size=64)
    with pytest.raises(InvalidDataset) as e:
        run_training(config, model=TinyClap())
    assert str(e.value).startswith(f"{config}: batch size 64 is larger than the training set (3 items)"), e.value
    assert not (tmp_path / "run").exists()


def test_a_failed_run_keeps_a_folder_that_was_there_and_its_files(tmp_path):
    from trainer.train import run_training
    _write_train_manifest(tmp_path, n=3)
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(InvalidDataset, match="larger than the training set"):
        run_training(_config_file(tmp_path, batch_size=64), model=TinyClap())
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_the_cli_names_the_config_file_in_the_batch_size_message(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import trainer.train as train_module
    from ui.cli import app
    _write_train_manifest(tmp_path, n=3)
    config = _config_file(tmp_path, batch_size=64)
    monkeypatch.setattr(train_module, "build_model", lambda cfg: TinyClap())
    result = CliRunner().invoke(app, ["train", str(config)])
    assert result.exit_code == 1, result.output
    assert f"{config}: batch size 64 is larger than the training set" in " ".join(result.output.split())
    assert not (tmp_path / "run").exists()


def _shard(path: Path, n: int = 3) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for i in range(n):
            for name, data in ((f"s{i}.wav", b"x" * 5000), (f"s{i}.json", json.dumps({"text": "a dog"}).encode())):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize("cut", [3000, 6000, 7680])   # in a member's data, in a header, at a block's end
def test_a_truncated_shard_is_said_to_be_truncated(tmp_path, cut):
    from trainer.datasets import read_webdataset
    shard = tmp_path / "part-0.tar"
    shard.write_bytes(_shard(shard)[:cut])
    with pytest.raises(InvalidDataset) as e:
        read_webdataset(shard)
    assert str(e.value).startswith(f"{shard}: the shard is truncated"), e.value
    assert "uncompressed" not in str(e.value)


def test_a_compressed_shard_is_still_said_to_be_compressed(tmp_path):
    from trainer.datasets import read_webdataset
    shard = tmp_path / "part-0.tar"
    shard.write_bytes(gzip.compress(_shard(shard)))
    with pytest.raises(InvalidDataset, match=r"part-0\.tar: a gzip-compressed file; WebDataset shards must be plain"):
        read_webdataset(shard)


def test_a_whole_shard_still_reads(tmp_path):
    from trainer.datasets import read_webdataset
    shard = tmp_path / "part-0.tar"
    shard.write_bytes(_shard(shard))
    assert len(read_webdataset(shard)) == 3


@pytest.mark.parametrize("command", ["retrieval", "zeroshot"])
def test_eval_makes_no_report_folder_for_a_csv_it_refuses(tmp_path, command):
    from typer.testing import CliRunner

    from ui.cli import app
    csv = tmp_path / "set.csv"
    csv.write_text("audio,caption\n" if command == "retrieval" else "audio,label\n")
    result = CliRunner().invoke(app, ["eval", command, str(csv), "--report", str(tmp_path / "reports" / "r")])
    assert result.exit_code == 1, result.output
    assert not (tmp_path / "reports").exists()


def test_a_failed_toy_run_removes_the_toy_data_it_wrote_but_not_the_folder(tmp_path):
    from trainer.train import run_training
    out = tmp_path / "run"
    out.mkdir()
    config = tmp_path / "toy.json"
    config.write_text(json.dumps({"data": {"toy": {"per_class": 1, "val_per_class": 1, "seconds": 0.2}},
                                  "batch_size": 64, "progress": False, "device": "cpu", "out_dir": str(out)}))
    with pytest.raises(InvalidDataset, match=f"{config}: batch size 64 is larger than the training set"):
        run_training(config, model=TinyClap())
    assert out.is_dir() and not any(out.iterdir())
