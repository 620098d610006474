"""Synthesised instrument melodies: a MIDI file per clip rendered by fluidsynth with a GM soundfont.

Each clip is one General MIDI instrument playing a seeded melody in a chosen register and tempo;
captions name the instrument and only those properties ("a slow, low-pitched cello melody").
"""
from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

from engine.errors import CorpusError
from trainer.corpus.clips import Candidate
from trainer.corpus.midi import Note, midi_bytes
from trainer.corpus.tones import RATES

SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/default-GM.sf2")

#: GM program (0-based) → (label, lowest and highest comfortable MIDI pitch)
INSTRUMENTS: dict[int, tuple[str, int, int]] = {
    0: ("piano", 36, 96), 4: ("electric piano", 40, 88), 6: ("harpsichord", 41, 89),
    8: ("celesta", 60, 96), 9: ("glockenspiel", 72, 105), 10: ("music box", 60, 96),
    11: ("vibraphone", 53, 89), 12: ("marimba", 45, 96), 13: ("xylophone", 65, 108),
    14: ("tubular bells", 60, 77), 19: ("church organ", 36, 96), 21: ("accordion", 53, 89),
    22: ("harmonica", 60, 84), 24: ("acoustic guitar", 40, 84), 26: ("electric guitar", 40, 86),
    29: ("distorted electric guitar", 40, 86), 32: ("double bass", 28, 55),
    33: ("bass guitar", 28, 60), 40: ("violin", 55, 100), 41: ("viola", 48, 84),
    42: ("cello", 36, 76), 46: ("harp", 36, 96), 47: ("timpani", 40, 55),
    48: ("string section", 36, 96), 52: ("choir", 48, 79), 56: ("trumpet", 55, 82),
    57: ("trombone", 40, 72), 58: ("tuba", 28, 58), 60: ("french horn", 41, 77),
    65: ("saxophone", 49, 81), 68: ("oboe", 58, 91), 70: ("bassoon", 34, 75),
    71: ("clarinet", 50, 91), 72: ("piccolo", 74, 102), 73: ("flute", 60, 96),
    74: ("recorder", 60, 96), 75: ("pan flute", 60, 96), 77: ("shakuhachi", 55, 84),
    79: ("ocarina", 60, 84), 104: ("sitar", 48, 77), 105: ("banjo", 48, 84),
    108: ("kalimba", 60, 84), 109: ("bagpipes", 60, 77), 114: ("steel drums", 52, 76),
}
SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10),
          "pentatonic": (0, 2, 4, 7, 9)}
DRUMS = {"bass drum": 36, "snare": 38, "closed hi-hat": 42, "open hi-hat": 46, "crash": 49, "ride": 51}


#: GM sound-effect program (0-based) → (label, captions, hits): sampled effects of the soundfont,
#: which the untrained model ranks at or next to their labels; ``hits`` are struck several times, the rest held
EFFECTS: dict[int, tuple[str, tuple[str, ...], bool]] = {
    122: ("ocean waves", ("waves breaking on a shore", "the sea washing on a beach", "ocean waves"), False),
    123: ("birds chirping", ("birds chirping", "a bird tweeting", "birdsong"), True),
    124: ("telephone ringing", ("a telephone ringing", "an old telephone bell ringing", "a phone ringing"), True),
    125: ("helicopter", ("a helicopter", "a helicopter flying", "helicopter rotor blades"), False),
    126: ("applause", ("applause", "an audience clapping", "people applauding"), False),
    127: ("gunshot", ("gunshots", "a gun firing", "shots fired"), True),
}


def fluidsynth_command(soundfont: str, midi: Path, out: Path, rate: int = 44100) -> list[str]:
    """fluidsynth command rendering ``midi`` with ``soundfont`` to the WAV ``out`` (no audio device)."""
    return ["fluidsynth", "-ni", "-g", "0.7", "-r", str(rate), "-F", str(out), soundfont, str(midi)]


def soundfont() -> str:
    """The first General MIDI soundfont installed, or CorpusError saying what to install."""
    for sf in SOUNDFONTS:
        if Path(sf).is_file():
            return sf
    raise CorpusError("no GM soundfont in /usr/share/sounds/sf2: apt-get install fluid-soundfont-gm "
                            "(or leave 'music' out of --sources)")


def melody(rng: random.Random, low: int, high: int, register: str, n: int) -> list[Note]:
    """A random walk on a scale inside the instrument's range, in the lower/middle/upper third."""
    span = high - low
    third = {"low": (low, low + span // 3), "middle": (low + span // 3, low + 2 * span // 3),
             "high": (low + 2 * span // 3, high)}[register]
    scale = SCALES[rng.choice(sorted(SCALES))]
    root = rng.randint(third[0], max(third[0], third[1] - 12))
    pitches = sorted({root + 12 * o + s for o in (0, 1) for s in scale if root + 12 * o + s <= third[1] + 4})
    i = rng.randrange(len(pitches))
    notes, t = [], 0.0
    for _ in range(n):
        length = rng.choice((0.5, 0.5, 1.0, 1.0, 1.5, 2.0))
        notes.append(Note(pitches[i], t, length * 0.95, rng.randint(70, 115)))
        t += length
        i = max(0, min(len(pitches) - 1, i + rng.choice((-2, -1, -1, 1, 1, 2))))
    return notes


def drum_beat(rng: random.Random, bars: int) -> list[Note]:
    """A rock-style beat: kick on 1 and 3, snare on 2 and 4, eighth-note hi-hats."""
    notes = []
    hat = DRUMS["closed hi-hat"] if rng.random() < 0.7 else DRUMS["ride"]
    for b in range(bars):
        for e in range(8):
            t = b * 4 + e / 2
            notes.append(Note(hat, t, 0.25, rng.randint(60, 90)))
            if e in (0, 4) or (e == 5 and rng.random() < 0.4):
                notes.append(Note(DRUMS["bass drum"], t, 0.25, 110))
            if e in (2, 6):
                notes.append(Note(DRUMS["snare"], t, 0.25, 105))
    notes.append(Note(DRUMS["crash"], 0, 1.0, 100))
    return notes


def _rendered(source: str, key: str, label: str, tags: tuple[str, ...], caps: list[str], mid: bytes,
              sf2: str, workdir: Path, rate: int) -> Candidate:
    """A candidate whose audio is ``mid`` (written to ``workdir`` now) rendered by fluidsynth."""
    midi_path = workdir / f"{key}.mid"
    midi_path.write_bytes(mid)

    def render(path: Path, m=midi_path) -> None:
        subprocess.run(fluidsynth_command(sf2, m, path), check=True, capture_output=True)
    return Candidate(source, f"fluidsynth:{key}", label, tags, tuple(caps), render=render, rate=rate)


def _fluidsynth_source(source: str, seed: int, workdir: Path) -> tuple[str, random.Random]:
    """The soundfont and the seeded generator of a fluidsynth source, or CorpusError saying what
    to install; ``workdir`` (for the MIDI files) is created."""
    if shutil.which("fluidsynth") is None:
        raise CorpusError("fluidsynth not found: apt-get install fluidsynth fluid-soundfont-gm "
                          f"(or leave '{source}' out of --sources)")
    sf2 = soundfont()
    workdir.mkdir(parents=True, exist_ok=True)
    return sf2, random.Random(f"{source}:{seed}")


def music_candidates(per_instrument: int, seed: int, workdir: Path) -> list[Candidate]:
    """``per_instrument`` melodies for every instrument, plus as many drum-kit beats."""
    sf2, rng = _fluidsynth_source("music", seed, workdir)
    out: list[Candidate] = []

    def add(key: str, label: str, tags: tuple[str, ...], caps: list[str], mid: bytes) -> None:
        out.append(_rendered("music", key, label, tags, caps, mid, sf2, workdir, rng.choice(RATES[1:])))

    for program, (label, low, high) in sorted(INSTRUMENTS.items()):
        for i in range(per_instrument):
            register = ("low", "middle", "high")[(i + program) % 3]
            slow = rng.random() < 0.5
            bpm = rng.randint(60, 85) if slow else rng.randint(120, 170)
            notes = melody(rng, low, high, register, rng.randint(6, 14))
            tempo = "slow" if slow else "fast"
            caps = [f"a {label} playing a melody", f"a {tempo} {label} melody",
                    f"a {register}-pitched {label} melody" if register != "middle" else f"{label} music",
                    f"solo {label}"]
            add(f"p{program}-{i}", label, (label, "musical instrument", "music"), caps,
                midi_bytes(notes, program=program, bpm=bpm))
    for i in range(per_instrument * 2):
        bpm = rng.randint(80, 150)
        caps = ["a drum beat", "a drum kit playing a rock beat", "drums", "a drummer playing a beat"]
        add(f"drums-{i}", "drum kit", ("drum kit", "drums", "music"), caps,
            midi_bytes(drum_beat(rng, rng.randint(2, 3)), program=0, channel=9, bpm=bpm))
    return out


def effect_candidates(per_label: int, seed: int, workdir: Path) -> list[Candidate]:
    """``per_label`` renderings of every GM sound effect in :data:`EFFECTS`: held for 2–8 s, or
    struck 2–6 times at irregular intervals, at a pitch within ±3 semitones of the sample's own."""
    sf2, rng = _fluidsynth_source("gm-effects", seed, workdir)
    out: list[Candidate] = []
    for program, (label, caps, hits) in sorted(EFFECTS.items()):
        for i in range(per_label):
            pitch = 60 + rng.randint(-3, 3)
            if hits:
                notes, t = [], rng.uniform(0.0, 0.5)
                for _ in range(rng.randint(2, 6)):
                    length = rng.uniform(0.3, 1.5)
                    notes.append(Note(pitch, t, length, rng.randint(70, 120)))
                    t += length + rng.uniform(0.1, 1.0)
            else:
                notes = [Note(pitch, rng.uniform(0.0, 0.5), rng.uniform(2.0, 8.0), rng.randint(70, 120))]
            out.append(_rendered("gm-effects", f"fx{program}-{i}", label, (label, "sound effect"),
                                 list(caps), midi_bytes(notes, program=program, bpm=60.0), sf2, workdir,
                                 rng.choice(RATES[1:])))
    return out
