"""Session 41: a text search from the CLI without importing torch.

``soundsift search`` (and ``tag --index``) load a soundsift-clap model with ``text_only``: its
frozen MiniLM tower and text head run in numpy (engine.towers.minilm_numpy,
engine.models.soundsift_text), from the same files, giving the torch model's vectors within
1e-5 and the same ranking; a model whose text tower was trained is the torch model.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from engine.models.factory import BUNDLED, load_model
from engine.models.soundsift_clap import SoundsiftClap, SoundsiftClapConfig, SoundsiftClapModel
from engine.models.soundsift_text import SoundsiftTextModel
from engine.towers.bert import BertEncoder
from engine.towers.bert_numpy import NumpyBert
from tests.conftest import noise, tone, write
from ui.cli import app

pytestmark = pytest.mark.usefixtures("private_cache", "minilm_memo")

REPO = Path(__file__).resolve().parents[1]
WORDS = ("dog barking rain thunder distant glass breaking car engine door creak footsteps Tür knarrt "
         "汉字 émoji 🙂 ocean waves whoosh this is a sound of the recording UPPER").split()


#: texts cut at MiniLM's 256 tokens: embedded as a batch of their own (a batch pads to its longest)
LONG = ["rain " * 400, " ".join(WORDS) * 12]


def _queries(count: int, seed: int = 0) -> list[str]:
    """Varied query texts: carrier phrases, non-ASCII, empty-ish, up to 40 words."""
    rng = random.Random(seed)
    fixed = ["", " ", "!!!", "a", "This is a sound of dog.", "the sound of",
             "Tür knarrt, 汉字 and an émoji 🙂", "  leading and trailing spaces  "]
    return fixed + [" ".join(rng.choices(WORDS, k=rng.randint(1, 40))) for _ in range(count)]


@pytest.mark.parametrize("name", ["soundsift-fast", "soundsift-base"])
def test_the_numpy_text_path_gives_the_torch_models_vectors(name):
    texts = _queries(50, seed=len(name))
    numpy_model = load_model(name, text_only=True)
    torch_model = SoundsiftClapModel.load(BUNDLED[name], name=name)
    assert isinstance(numpy_model, SoundsiftTextModel)
    assert (numpy_model.fingerprint, numpy_model.dim, numpy_model.sample_rate, numpy_model.window_seconds,
            numpy_model.logit_scale) == (torch_model.fingerprint, torch_model.dim, torch_model.sample_rate,
                                         torch_model.window_seconds, torch_model.logit_scale)
    for batch in (texts, LONG):
        got, want = numpy_model.embed_text(batch), torch_model.embed_text(batch)
        assert got.dtype == np.float32 and got.shape == want.shape
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-6)
        assert np.abs(got - want).max() <= 1e-5
    np.testing.assert_array_equal(numpy_model.embed_text([]), torch_model.embed_text([]))


def test_a_random_bert_folder_gives_the_same_hidden_states_in_numpy(tmp_path):
    from safetensors.torch import save_file

    config = {"model_type": "bert", "vocab_size": 61, "hidden_size": 24, "num_hidden_layers": 2,
              "num_attention_heads": 3, "intermediate_size": 40, "max_position_embeddings": 30,
              "type_vocab_size": 2, "layer_norm_eps": 1e-12, "pad_token_id": 0}
    torch.manual_seed(1)
    reference = BertEncoder(config).eval()
    with torch.no_grad():                   # LayerNorms and biases away from their 1 / 0 start
        for p in reference.parameters():
            p.add_(0.1 * torch.randn_like(p))
    (tmp_path / "config.json").write_text(json.dumps(config))
    save_file({"bert." + k: v.contiguous() for k, v in reference.state_dict().items()},
              str(tmp_path / "model.safetensors"))
    ids = torch.randint(1, 61, (3, 9))
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    mask[2, 1:] = 0
    with torch.no_grad():
        want = reference(ids, mask).numpy()
    got = NumpyBert.from_folder(tmp_path)(ids.numpy(), mask.numpy())
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_a_minilm_space_model_with_a_trained_text_adapter_has_the_same_vectors(tmp_path):
    module = SoundsiftClap(SoundsiftClapConfig()).init_baseline()          # "minilm" space, text adapter
    torch.manual_seed(2)
    with torch.no_grad():
        module.text_adapter.weight.copy_(0.05 * torch.randn_like(module.text_adapter.weight))
        module.text_adapter.bias.copy_(0.05 * torch.randn_like(module.text_adapter.bias))
        module.logit_scale.fill_(3.1)
    folder = module.save_pretrained(tmp_path / "model")
    numpy_model = load_model(str(folder), text_only=True)
    torch_model = load_model(str(folder))
    assert isinstance(numpy_model, SoundsiftTextModel) and isinstance(torch_model, SoundsiftClapModel)
    assert numpy_model.logit_scale == torch_model.logit_scale
    texts = _queries(20, seed=3)
    assert np.abs(numpy_model.embed_text(texts) - torch_model.embed_text(texts)).max() <= 1e-5
    clip = [tone(440, 1.0, numpy_model.sample_rate)]                         # audio: the torch model's
    np.testing.assert_array_equal(numpy_model.embed_audio(clip), torch_model.embed_audio(clip))


def test_a_model_whose_text_tower_was_trained_is_loaded_with_torch(tmp_path):
    folder = SoundsiftClap(SoundsiftClapConfig(text_trainable=True)).save_pretrained(tmp_path / "tuned")
    assert isinstance(load_model(str(folder), text_only=True), SoundsiftClapModel)
    # text-tower weights in the file, whatever the flag says: the torch model reads them, so it is the one
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "text_trainable": False}))
    assert isinstance(load_model(str(folder), text_only=True), SoundsiftClapModel)


#: runs the CLI from this tree and writes, as it exits, which of the modules named in argv[2]
#: (comma-separated) were imported, as a JSON list
_CLI_NOTING_IMPORTS = ("import atexit, json, runpy, sys\n"
                       "note, watched = sys.argv[1], sys.argv[2].split(',')\n"
                       "atexit.register(lambda: open(note, 'w').write(json.dumps([m for m in watched "
                       "if m in sys.modules])))\n"
                       "sys.argv = ['soundsift', *sys.argv[3:]]\n"
                       "runpy.run_module('ui.cli', run_name='__main__')\n")


def cli_noting_imports(tmp_path: Path, modules: list[str], *args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    """``soundsift ARGS`` run in a fresh process from this tree (it must succeed), and which of
    ``modules`` it had imported when it exited."""
    note = tmp_path / "imported.json"
    done = subprocess.run([sys.executable, "-c", _CLI_NOTING_IMPORTS, str(note), ",".join(modules), *args],
                          cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    return done, set(json.loads(note.read_text()))


def _cli_noting_torch(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, bool]:
    done, imported = cli_noting_imports(tmp_path, ["torch"], *args)
    return done, "torch" in imported


def test_a_cli_text_search_never_imports_torch_and_ranks_as_the_torch_model_does(tmp_path):
    lib = tmp_path / "lib"
    write(lib / "hum.wav", tone(440, 2.0, 16000, amp=0.3), 16000)
    write(lib / "hiss.wav", noise(2.0, 16000, seed=3, amp=0.3), 16000)
    index = str(tmp_path / "idx")
    built = CliRunner().invoke(app, ["index", str(lib), "--index", index, "--model", "soundsift-fast",
                                     "--workers", "0", "--json"])
    assert built.exit_code == 0, built.output
    done, torch_imported = _cli_noting_torch(tmp_path, "search", "white noise", "--index", index, "--json")
    assert not torch_imported
    hits = json.loads(done.stdout)
    assert [Path(h["path"]).name for h in hits] == ["hiss.wav", "hum.wav"]
    from engine.query import SoundIndex
    with SoundIndex.open(index) as torch_index:                              # the torch model's ranking
        want = torch_index.search_text("white noise")
    assert [h.path for h in want] == [h["path"] for h in hits]
    np.testing.assert_allclose([h["score"] for h in hits], [h.score for h in want], atol=1e-5)
    # tag --index: a file the index holds from its stored vectors, without torch; another one
    # is embedded by the torch model, loaded then
    done, torch_imported = _cli_noting_torch(tmp_path, "tag", str(lib / "hiss.wav"), "--index", index,
                                             "--labels", "white noise,sine tone", "--json")
    assert not torch_imported and "white noise" in done.stdout
    write(tmp_path / "outside.wav", noise(2.0, 16000, seed=4, amp=0.3), 16000)
    done, torch_imported = _cli_noting_torch(tmp_path, "tag", str(tmp_path / "outside.wav"), "--index", index,
                                             "--labels", "white noise,sine tone", "--json")
    assert torch_imported and "white noise" in done.stdout
