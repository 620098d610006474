"""`soundsift caption --out` names the audio under the manifest's folder relative to it, as the
trainer reads relative paths (against the manifest's folder), so a folder holding the manifest and
its sounds can move; audio elsewhere keeps its absolute path. Until session 40 every path was
absolute, and a manifest moved with its sounds pointed at the old place."""
from __future__ import annotations

import json
import os
import shutil

from tests.conftest import tone, write
from trainer.caption_loop import CaptionedFile, manifest_path, write_manifest
from trainer.datasets import read_manifest

SR = 16_000


def test_a_captioned_folder_moved_whole_still_trains(tmp_path):
    project = tmp_path / "project"
    inside = write(project / "sounds" / "beep one.wav", tone(1000, 1.0, SR), SR)
    outside = write(tmp_path / "elsewhere" / "hum.wav", tone(100, 1.0, SR), SR)
    rows = [CaptionedFile(str(inside), captions=["a beep"]), CaptionedFile(str(outside), captions=["a hum"])]
    assert write_manifest(rows, project / "captions.jsonl") == 2
    written = [json.loads(line)["audio"] for line in (project / "captions.jsonl").read_text().splitlines()]
    assert written == ["sounds/beep one.wav", str(outside)]

    moved = shutil.move(str(project), str(tmp_path / "moved"))
    items = read_manifest(f"{moved}/captions.jsonl")
    assert [str(i.audio) for i in items] == [f"{moved}/sounds/beep one.wav", str(outside)]
    assert all(os.path.isfile(i.audio) for i in items)


def test_manifest_path_never_climbs_out_of_the_folder(tmp_path):
    assert manifest_path(tmp_path / "a" / "b.wav", tmp_path) == "a/b.wav"
    assert manifest_path(tmp_path / "a" / "b.wav", tmp_path / "c") == str(tmp_path / "a" / "b.wav")
