"""The offline corpus recipe: labels from names, the .rcc reader, split, balancing, manifests,
synthesis commands. No network, no apt: packages are stood in for by small generated trees."""
from __future__ import annotations

import io
import json
import shutil
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine.errors import CorpusError
from tests.conftest import tone
from trainer.corpus.clips import Candidate
from trainer.corpus.labels import LabelRules, name_tokens
from trainer.corpus.midi import Note, midi_bytes
from trainer.corpus.music import fluidsynth_command, music_candidates
from trainer.corpus.packages import PackageRecipe, load_recipes, package_candidates
from trainer.corpus.rcc import FLAG_COMPRESSED, RccFile, RccFormatError, build_rcc
from trainer.corpus.select import balance, family, split_by_source
from trainer.corpus.speech import espeak_command
from trainer.corpus.tones import sox_command, tone_candidates
from trainer.corpus.writer import SkipClip, manifest_row, write_clip


def wav_bytes(data: np.ndarray, sr: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, data, sr, format="WAV")
    return buf.getvalue()


# --- names → labels ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, tokens", [
    ("dog_bark2.ogg", ["dog", "bark"]),
    ("LRBark_1_LA_cut.ogg", ["lr", "bark", "la", "cut"]),
    ("HiHatClosed-0.wav", ["hi", "hat", "closed"]),
    ("EE_Kick_Hard_2.flac", ["ee", "kick", "hard"]),
    ("Djembe1 Bass.wav", ["djembe", "bass"]),
    ("path/to/wolf-growl-3.ogg", ["wolf", "growl"]),
    ("1C.ogg", []),
])
def test_name_tokens(name, tokens):
    assert name_tokens(name) == tokens


def test_words_mode_keeps_english_names_and_drops_cryptic_ones():
    rules = LabelRules(mode="words")
    assert rules.label("dog_bark2.ogg") == "dog bark"
    assert rules.label("glass-break_01.wav") == "glass break"
    assert rules.label("xqzt_vv3.wav") is None       # no English word: dropped, not guessed
    assert rules.label("sfx_01.wav") is None          # only generic tokens left


def test_rules_tables_drop_map_and_keyword():
    rules = LabelRules.from_dict({"mode": "keyword", "drop": ["ee"], "tokens": {"hh": "hihat", "hat": "hihat"},
                                  "labels": {"hihat": "hi-hat", "kick": "bass drum", "clap": ""}})
    assert rules.label("EE_Kick_Hard_2.flac") == "bass drum"
    assert rules.label("HiHatClosed-0.wav") == "hi-hat"
    assert rules.label("hh_open.wav") == "hi-hat"
    assert rules.label("Clap_1.wav") is None and rules.dropped("Clap_1.wav")
    assert rules.label("Whoosh.wav") is None
    with pytest.raises(ValueError, match="mode"):
        LabelRules.from_dict({"mode": "guess"})


@pytest.mark.parametrize("source, relpath, label", [
    ("gcompris", "memory-sound/gcompris/src/activities/memory-sound/resource/LRBark_1_LA_cut.ogg", "dog barking"),
    ("gcompris", "instruments/gcompris/src/activities/instruments/resource/flute_traversiere.ogg", "flute"),
    ("hydrogen", "Gimme A Hand 1.0/HiHatClosed-0.wav", "hi-hat"),
    ("hydrogen", "GMkit/CrashRide18Bell-0.wav", "crash cymbal"),
    ("hydrogen", "ElectricEmpireKit/EE_Kick_Hard_2.flac", "bass drum"),
    ("sonic-pi", "bd_808.flac", "bass drum"),
    ("sonic-pi", "drum_cymbal_closed.flac", "closed hi-hat"),
    ("wesnoth", "human-female-die-2.ogg", "woman screaming"),
    ("wesnoth", "magic-holy-miss-3.ogg", None),
    ("tuxpaint", "animals/mammals/dogs/dog.ogg", "dog"),
    ("tuxpaint", "animals/mammals/dogs/dog_desc_fr.ogg", None),          # spoken description
    ("hedgewars-voices", "Default/Laugh.ogg", "laughter"),
    ("hedgewars-voices", "Default/Hmm.ogg", None),                       # explicitly dropped
    ("hedgewars-voices", "Default/Hello.ogg", "speech"),
    ("hedgewars-voices", "Robot/Hello.ogg", None),                       # processed voice
    ("fillets", "elk/en/deu-l-neznaju.ogg", "speech"),
    ("fillets", "linux/en/key6.ogg", "computer keyboard"),              # not speech (session 6)
    ("fillets", "bathyscaph/en/bat-t-phone0.ogg", "telephone ringing"),
    ("fillets", "barrel/en/bar-x-kchkch.ogg", None),                     # meaning unknown: no fallback
    ("fillets", "cabin1/en/k1-chob-2.ogg", None),
    ("sonic-pi", "mehackit_robot1.flac", None),                          # mechanisms, not a voice
    ("openarena", "pak0/sound/world/new/moan1.wav", None),               # an ambience, not a person
])
def test_recipe_tables_on_pinned_package_paths(source, relpath, label):
    recipe = load_recipes()[source]
    got = recipe.candidate(relpath, lambda: b"") if recipe.wants(relpath) else None
    assert (got.label if got else None) == label


def test_speech_sources_caption_language_only_when_known():
    recipes = load_recipes()
    fr = recipes["ktuberling"].candidate("fr/chapeau.ogg", lambda: b"")
    assert fr.label == "speech" and "French" in fr.tags
    assert "a person speaking French" in fr.captions
    greek = recipes["tuxpaint-voices"].candidate("math/7_el.ogg", lambda: b"")
    assert "Greek" in greek.tags
    assert "English" in recipes["tuxpaint-voices"].candidate("math/7.ogg", lambda: b"").tags
    hw = recipes["hedgewars-voices"].candidate("Pirate/Hello.ogg", lambda: b"")
    assert hw.label == "speech" and not any("speaking " in c for c in hw.captions)


def test_every_recipe_entry_parses():
    recipes = load_recipes()
    assert len(recipes) >= 15
    assert {r.package for r in recipes.values()} >= {
        "gcompris-qt-data", "tuxpaint-stamps-default", "sonic-pi-samples", "hydrogen-drumkits",
        "hydrogen-drumkits-effects", "wesnoth-1.16-data", "redeclipse-data", "openarena-data",
        "hedgewars-data", "ktuberling-data", "fillets-ng-data", "freeciv-data", "frozen-bubble-data",
        "pingus-data", "xmoto-data"}


# --- Qt .rcc reader -----------------------------------------------------------------------------

@pytest.mark.parametrize("version", [1, 2, 3])
@pytest.mark.parametrize("compress", [False, True])
def test_rcc_reader_round_trip(version, compress):
    files = {"gcompris/src/a/resource/dog.ogg": b"OggS" + bytes(range(200)),
             "gcompris/src/a/resource/sub/cat.wav": b"RIFF" * 50,
             "top.txt": "héllo".encode()}
    rcc = RccFile(build_rcc(files, compress=compress, version=version))
    entries = list(rcc.entries())
    assert sorted(e.path for e in entries) == sorted(files)
    assert {e.path: rcc.read(e) for e in entries} == files
    assert all(bool(e.flags & FLAG_COMPRESSED) == compress for e in entries)


def test_rcc_reader_on_hand_written_bytes():
    """Bytes laid out by hand from the format description, independent of build_rcc."""
    def name(s):
        return struct.pack(">HI", len(s), 0) + s.encode("utf-16-be")
    names = name("snd") + name("a.wav")
    tail = struct.pack(">Q", 0)
    tree = (struct.pack(">IHII", 0, 2, 1, 1) + tail                      # root: 1 child at node 1
            + struct.pack(">IHII", 0, 2, 1, 2) + tail                    # "snd": 1 child at node 2
            + struct.pack(">IHHHI", len(name("snd")), 0, 0, 0, 0) + tail)  # "a.wav" at data 0
    data = struct.pack(">I", 3) + b"abc"
    header = b"qres" + struct.pack(">IIII", 2, 20, 20 + len(tree), 20 + len(tree) + len(data))
    rcc = RccFile(header + tree + data + names)
    [entry] = list(rcc.entries())
    assert entry.path == "snd/a.wav" and rcc.read(entry) == b"abc"


def test_rcc_reader_rejects_other_files(tmp_path):
    with pytest.raises(RccFormatError, match="qres"):
        RccFile(b"RIFF" + bytes(40), "x.rcc")
    with pytest.raises(RccFormatError, match="version 9"):
        RccFile(b"qres" + struct.pack(">IIII", 9, 20, 20, 20), "y.rcc")
    with pytest.raises(CorpusError, match="cannot read"):
        RccFile.open(tmp_path / "missing.rcc")


def test_package_sources_read_rcc_pk3_and_plain_files(tmp_path):
    clip = wav_bytes(tone(440, 0.3, 16000), 16000)
    (tmp_path / "rcc").mkdir()
    (tmp_path / "rcc" / "animals.rcc").write_bytes(
        build_rcc({"res/dog_bark.wav": clip, "res/readme.txt": b"x", "res/zzqx.wav": clip}))
    with zipfile.ZipFile(tmp_path / "pak0.pk3", "w") as z:
        z.writestr("sound/world/rain.wav", clip)
    (tmp_path / "plain" / "birds").mkdir(parents=True)
    (tmp_path / "plain" / "birds" / "owl_hoot.wav").write_bytes(clip)

    rcc = PackageRecipe(name="t-rcc", package="p", root="rcc", container="rcc")
    got, dropped = package_candidates(tmp_path, rcc)
    assert [c.label for c in got] == ["dog bark"] and dropped == 1
    assert got[0].read() == clip and got[0].origin == "p:rcc/animals/res/dog_bark.wav"

    pk3 = PackageRecipe(name="t-pk3", package="p", root="", container="pk3")
    assert [c.label for c in package_candidates(tmp_path, pk3)[0]] == ["rain"]
    plain = PackageRecipe(name="t", package="p", root="plain", label_from="parent")
    assert [c.label for c in package_candidates(tmp_path, plain)[0]] == ["birds"]
    with pytest.raises(CorpusError, match="root"):
        package_candidates(tmp_path, PackageRecipe(name="t", package="p", root="nope"))


# --- split and balance -------------------------------------------------------------------------

def cand(source: str, label: str, i: int, package: str | None = None) -> Candidate:
    return Candidate(source, f"{package or source}:{label}/{i}", label, (label,))


def test_split_holds_out_whole_sources():
    cands = ([cand("game", "dog", i) for i in range(150)] + [cand("voices", "speech", i) for i in range(120)]
             + [cand("drums", "snare", i) for i in range(300)])
    train, val = split_by_source(cands, ["game", "voices"])
    assert {c.source for c in train}.isdisjoint({c.source for c in val})
    assert {family(c) for c in train}.isdisjoint({family(c) for c in val})
    assert len(val) == 270 >= 200 and len(train) == 300
    shared = cands + [cand("game-voices", "speech", 0, package="game")]
    with pytest.raises(ValueError, match="game"):
        split_by_source(shared, ["game"])


def test_balance_caps_labels_round_robin_over_sources():
    cands = ([cand("drums-a", "snare", i) for i in range(500)] + [cand("drums-b", "snare", i) for i in range(3)]
             + [cand("zoo", "dog", i) for i in range(5)] + [cand("voices", "speech", i) for i in range(90)])
    kept = balance(cands, max_per_label=20, caps={"speech": 50}, seed=1)
    by = {}
    for c in kept:
        by.setdefault(c.label, []).append(c)
    assert len(by["snare"]) == 20 and sum(c.source == "drums-b" for c in by["snare"]) == 3
    assert len(by["dog"]) == 5 and len(by["speech"]) == 50
    assert kept == balance(cands, 20, {"speech": 50}, seed=1)            # deterministic
    assert kept != balance(cands, 20, {"speech": 50}, seed=2)
    assert [cands.index(c) for c in kept] == sorted(cands.index(c) for c in kept)


# --- conversion and manifest -------------------------------------------------------------------

def test_write_clip_keeps_rate_and_writes_a_manifest_row(tmp_path):
    stereo = np.stack([tone(440, 1.0, 22050), tone(660, 1.0, 22050)], axis=1)
    c = Candidate("zoo", "zoo-data:animals/dog.ogg", "dog barking", ("dog barking", "animal"),
                  read=lambda: wav_bytes(stereo, 22050))
    w = write_clip(c, tmp_path, max_seconds=0.5)
    assert w.audio.startswith("audio/zoo/dog-barking-") and w.audio.endswith(".flac")
    info = sf.info(str(tmp_path / w.audio))
    assert (info.samplerate, info.channels, info.format) == (22050, 2, "FLAC")
    assert w.duration == pytest.approx(0.5, abs=1e-3)
    row = manifest_row(c, w, "train")
    json.dumps(row)
    assert {"audio", "captions", "tags", "source", "label"} <= set(row)
    assert row["captions"][0] == "dog barking"
    assert "This is a sound of dog barking." in row["captions"]
    assert len(set(row["captions"])) == len(row["captions"]) >= 3
    assert row["tags"][0] == "dog barking" and row["source"] == "zoo"


def test_write_clip_resamples_when_asked_and_skips_silence(tmp_path):
    c = Candidate("tones", "sox:x", "sine tone", read=lambda: wav_bytes(tone(440, 1.0, 44100), 44100), rate=16000)
    assert write_clip(c, tmp_path, 30).sample_rate == 16000
    silent = Candidate("z", "z:silent", "nothing", read=lambda: wav_bytes(np.zeros(8000, np.float32), 16000))
    with pytest.raises(SkipClip, match="silent"):
        write_clip(silent, tmp_path, 30)
    broken = Candidate("z", "z:broken", "nothing", read=lambda: b"not audio at all")
    with pytest.raises(SkipClip, match="z:broken"):
        write_clip(broken, tmp_path, 30)


# --- synthesis ---------------------------------------------------------------------------------

def test_synthesis_commands_are_pinned(tmp_path):
    out = tmp_path / "a.wav"
    assert sox_command(out, 16000, 2.0, ["sine", "440"], -6) == [
        "sox", "-R", "-D", "-n", "-r", "16000", "-b", "16", "-c", "1", str(out), "synth", "2", "sine", "440",
        "gain", "-6", "fade", "0.01", "0", "0.01"]
    assert espeak_command(out, "fr+f3", "Bonjour.", 150, 50) == [
        "espeak-ng", "-v", "fr+f3", "-s", "150", "-p", "50", "-w", str(out), "Bonjour."]
    assert fluidsynth_command("gm.sf2", tmp_path / "m.mid", out) == [
        "fluidsynth", "-ni", "-g", "0.7", "-r", "44100", "-F", str(out), "gm.sf2", str(tmp_path / "m.mid")]


def test_midi_writer_layout():
    data = midi_bytes([Note(60, 0, 1), Note(64, 1, 1), Note(67, 2, 2)], program=40, bpm=100)
    assert data[:4] == b"MThd" and struct.unpack(">IHHH", data[4:14]) == (6, 0, 1, 480)
    assert data[14:18] == b"MTrk" and struct.unpack(">I", data[18:22])[0] == len(data) - 22
    track = data[22:]
    assert bytes([0xC0, 40]) in track and track.endswith(b"\xff\x2f\x00")
    assert track.count(bytes([0x90, 60])) == 1 and track.count(bytes([0x80, 67, 0])) == 1
    assert (60_000_000 // 100).to_bytes(3, "big") in track
    with pytest.raises(ValueError):
        midi_bytes([Note(130, 0, 1)])


@pytest.mark.skipif(shutil.which("sox") is None, reason="sox not installed (apt-get install sox)")
def test_tone_recipes_render_what_their_captions_say(tmp_path):
    cands = tone_candidates(per_label=2, seed=0)
    assert {c.label for c in cands} == {"sine tone", "square wave", "sawtooth wave", "triangle wave",
                                        "white noise", "pink noise", "brown noise", "sine sweep"}
    assert cands == tone_candidates(per_label=2, seed=0)
    sine = next(c for c in cands if c.label == "sine tone")
    freq = int(sine.captions[0].split()[1])
    assert sine.captions[0] == f"a {freq} Hz sine tone"
    sine.render(tmp_path / "s.wav")
    data, sr = sf.read(str(tmp_path / "s.wav"))
    noise = next(c for c in cands if c.label == "white noise")
    noise.render(tmp_path / "n1.wav")
    noise.render(tmp_path / "n2.wav")
    assert (tmp_path / "n1.wav").read_bytes() == (tmp_path / "n2.wav").read_bytes()   # repeatable
    spectrum = np.abs(np.fft.rfft(data))
    assert abs(np.argmax(spectrum) * sr / len(data) - freq) < 3


@pytest.mark.skipif(shutil.which("fluidsynth") is None or not Path("/usr/share/sounds/sf2").is_dir(),
                    reason="fluidsynth / fluid-soundfont-gm not installed")
def test_music_recipe_renders_a_melody(tmp_path):
    cands = music_candidates(per_instrument=1, seed=0, workdir=tmp_path / "midi")
    cello = next(c for c in cands if c.label == "cello")
    assert any("cello" in cap for cap in cello.captions) and "drum kit" in {c.label for c in cands}
    w = write_clip(cello, tmp_path, max_seconds=3)
    assert w.duration > 1 and w.sample_rate == cello.rate


@pytest.mark.skipif(shutil.which("sox") is None or shutil.which("espeak-ng") is None,
                    reason="sox / espeak-ng not installed")
def test_build_corpus_end_to_end_on_synthesis(tmp_path):
    from trainer.corpus.runner import build_corpus
    s = build_corpus(tmp_path / "c", ["tones", "speech"], val_sources=["speech"], synth_per_label=1,
                     max_per_label=5, val_max_per_label=5, min_val=10)
    train = [json.loads(x) for x in (tmp_path / "c" / "train.jsonl").read_text().splitlines()]
    val = [json.loads(x) for x in (tmp_path / "c" / "val.jsonl").read_text().splitlines()]
    assert s.train == len(train) == 8 and s.val == len(val) == 5     # 15 utterances capped at 5
    assert {r["source"] for r in train} == {"tones"} and {r["source"] for r in val} == {"speech"}
    assert all((tmp_path / "c" / r["audio"]).is_file() for r in train + val)
    assert "synthetic speech" in val[0]["captions"]
    stats = json.loads((tmp_path / "c" / "stats.json").read_text())
    assert stats["per_source"] == {"tones": 8, "speech": 5} and stats["val_sources"] == ["speech"]
    with pytest.raises(CorpusError, match="nope"):
        build_corpus(tmp_path / "d", ["nope"])


def test_build_corpus_refuses_bad_source_names_before_writing(tmp_path):
    from trainer.corpus.runner import build_corpus
    with pytest.raises(CorpusError, match=r"unknown corpus source spech \(did you mean speech\?\)"):
        build_corpus(tmp_path / "a", ["tones"], val_sources=["spech"])
    with pytest.raises(CorpusError, match=r"^validation source speech is not among the sources built: tones$"):
        build_corpus(tmp_path / "b", ["tones"], val_sources=["speech"])
    assert list(tmp_path.iterdir()) == []


def test_prune_audio_removes_only_clips_no_manifest_names(tmp_path):
    from trainer.corpus.runner import prune_audio
    for rel in ("audio/a/kept.flac", "audio/a/stale.flac", "audio/b/val.flac"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    (tmp_path / "train.jsonl").write_text(json.dumps({"audio": "audio/a/kept.flac"}) + "\n")
    (tmp_path / "val.jsonl").write_text(json.dumps({"audio": "audio/b/val.flac"}) + "\n")
    assert prune_audio(tmp_path) == 1
    assert sorted(p.name for p in (tmp_path / "audio").rglob("*.flac")) == ["kept.flac", "val.flac"]


def test_cli_corpus_commands(tmp_path):
    from typer.testing import CliRunner

    from ui.cli import app
    runner = CliRunner()
    listed = runner.invoke(app, ["corpus", "list"])
    assert listed.exit_code == 0
    assert {"gcompris", "ktuberling", "tones", "speech", "music"} <= set(listed.stdout.split())
    helped = runner.invoke(app, ["corpus", "build", "--help"])
    assert helped.exit_code == 0 and "--max-per-label" in helped.stdout
    bad = runner.invoke(app, ["corpus", "build", "--sources", "nope", "--out", str(tmp_path / "c")])
    assert bad.exit_code == 1 and "unknown corpus source" in bad.stderr
    # lists comma-separated or repeated
    mixed = runner.invoke(app, ["corpus", "build", "--sources", "tones,nope", "--source", "other",
                                "--val-sources", "tones", "--out", str(tmp_path / "c")])
    assert mixed.exit_code == 1 and "unknown corpus sources nope, other;" in " ".join(mixed.stderr.split())
    as_json = runner.invoke(app, ["corpus", "list", "--json"])
    assert as_json.exit_code == 0 and json.loads(as_json.stdout) == listed.stdout.split()


def test_module_entry_is_the_same_command_group(tmp_path):
    """`python -m trainer.corpus` runs `soundsift corpus`: same commands, options and one-line errors."""
    import subprocess
    import sys

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "trainer.corpus", *args], capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parents[1], timeout=120)

    listed = run("list", "--json")
    assert listed.returncode == 0 and "gcompris" in json.loads(listed.stdout)
    bad = run("build", "--sources", "tones,nope", "--out", str(tmp_path / "c"))
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert "unknown corpus source nope; known: " in " ".join(bad.stderr.split())
    assert not (tmp_path / "c").exists()
    usage = run("build", "--sources", "tones", "speech")        # the old space-separated form
    assert usage.returncode == 2 and "python -m trainer.corpus build" in usage.stderr
