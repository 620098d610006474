"""The README's first command: generate a small demo library, index it, search it.

Sounds are synthesised here (no downloads): tones, noise colours, sweeps, a
metronome, rain-like crackle, a siren, a bell, a street recording of three takes with named
markers, and speech when espeak-ng is installed. The commands it runs are the same a user
types; they are echoed before they run.
"""
from __future__ import annotations

import shlex
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

DEMO_DIR = Path("demo/sounds")
INDEX = "demo"
QUERIES = ["a person speaking", "a siren", "white noise", "a bell ringing"]
#: zero-shot labels the demo tags its whole library with (from the index's stored vectors)
TAG_LABELS = "speech,siren,bell,white noise,rain,ticking clock,tone"


def _t(seconds: float, sr: int) -> np.ndarray:
    return np.arange(int(seconds * sr)) / sr


def _sounds(sr: int = 44100, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    t3 = _t(3.0, sr)
    white = rng.standard_normal(len(t3))
    brown = np.cumsum(rng.standard_normal(len(t3)))
    brown -= np.convolve(brown, np.ones(2001) / 2001, mode="same")
    # a wail siren: 600–1300 Hz, 4 s per cycle, with the harmonics of a real horn
    siren_phase = 2 * np.pi * np.cumsum(950 + 350 * np.sin(2 * np.pi * 0.25 * _t(6.0, sr))) / sr
    siren = sum(np.sin(k * siren_phase) / k for k in range(1, 8)) / 2
    clicks = np.zeros(int(4.0 * sr))
    for k in range(8):
        a = int(k * 0.5 * sr)
        clicks[a:a + 400] = np.hanning(800)[400:] * rng.standard_normal(400)
    rain = rng.standard_normal(int(8.0 * sr)) * (rng.random(int(8.0 * sr)) < 0.02)
    # an electric bell ringing: two small bells (inharmonic partials) struck alternately at
    # 20 Hz for 2 s, twice
    bell = np.zeros(int(6.0 * sr))
    strike_t = _t(0.3, sr)
    for burst in (0.0, 3.0):
        for k in range(40):
            f0, a = (1800 if k % 2 else 2100), int((burst + k / 20) * sr)
            ring = sum(g * np.sin(2 * np.pi * f0 * r * strike_t) * np.exp(-strike_t * d)
                       for r, g, d in [(1.0, 1.0, 6), (2.76, 0.6, 9), (5.4, 0.4, 12), (8.93, 0.2, 15)])
            ring += 0.5 * rng.standard_normal(len(strike_t)) * np.exp(-strike_t * 80)
            bell[a:a + len(ring)] += ring
    sweep_t = _t(5.0, sr)
    sweep = np.sin(2 * np.pi * (100 * sweep_t + (8000 - 100) * sweep_t ** 2 / 10))
    gap = np.zeros(sr // 2)
    street = np.concatenate([clicks / np.abs(clicks).max(), gap, siren / np.abs(siren).max(), gap,
                             bell / np.abs(bell).max()])
    return {
        "tones/sine_440hz.wav": np.sin(2 * np.pi * 440 * t3),
        "tones/rising_sweep.flac": sweep,
        "noise/white_noise.wav": white,
        "noise/brown_noise.flac": brown / (np.abs(brown).max() + 1e-9),
        "alarms/siren_wail.ogg": siren,
        "alarms/bell_ring.wav": bell / 3,
        "rhythm/metronome_clicks.wav": clicks,
        "weather/rain_crackle_long.flac": rain,
        "field/street_takes.wav": street,
    }


#: the takes of field/street_takes.wav: (start in seconds, marker name)
STREET_TAKES = [(0.0, "Clock ticking"), (4.5, "Siren passing"), (11.0, "Door bell")]


def append_markers(path: Path, markers: list[tuple[float, str]]) -> None:
    """Give the WAV file ``path`` named cue markers ((seconds, name)), as a recorder or library
    tool writes them: a ``cue `` chunk and a LIST/adtl chunk of ``labl`` names."""
    def chunk(cid: bytes, body: bytes) -> bytes:
        return cid + struct.pack("<I", len(body)) + body + (b"\0" if len(body) & 1 else b"")
    rate = sf.info(str(path)).samplerate
    points = b"".join(struct.pack("<II4sIII", i, 0, b"data", 0, 0, int(round(at * rate)))
                      for i, (at, _) in enumerate(markers, 1))
    names = b"".join(chunk(b"labl", struct.pack("<I", i) + name.encode() + b"\0")
                     for i, (_, name) in enumerate(markers, 1))
    extra = chunk(b"cue ", struct.pack("<I", len(markers)) + points) + chunk(b"LIST", b"adtl" + names)
    raw = path.read_bytes()
    path.write_bytes(raw[:4] + struct.pack("<I", len(raw) - 8 + len(extra)) + raw[8:] + extra)


def generate(folder: Path = DEMO_DIR) -> list[Path]:
    """Write the demo library into ``folder`` (idempotent)."""
    written = []
    for rel, x in _sounds().items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            sf.write(str(path), (0.5 * x / (np.abs(x).max() + 1e-9)).astype(np.float32), 44100)
            if rel == "field/street_takes.wav":
                append_markers(path, STREET_TAKES)
        written.append(path)
    espeak = shutil.which("espeak-ng") or shutil.which("espeak")
    if espeak:
        for name, voice, text in [("speech_en_hello.wav", "en", "Hello, welcome to the sound library."),
                                  ("speech_fr_bonjour.wav", "fr", "Bonjour, ceci est un test.")]:
            path = folder / "voices" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                subprocess.run([espeak, "-v", voice, "-w", str(path), text], check=True)
            written.append(path)
    else:
        print("espeak-ng not found: the demo library has no speech", file=sys.stderr)
    return written


def _run(args: list[str]) -> None:
    """Run ``soundsift ARGS`` as a user types it; a command that fails has said why in its own
    line: the demo stops with its exit status, without a traceback of its own."""
    print("$ soundsift " + " ".join(shlex.quote(a) for a in args), flush=True)
    done = subprocess.run([sys.executable, "-m", "ui.cli", *args])
    if done.returncode != 0:
        raise SystemExit(done.returncode)


def built_with_older_model(index: str = INDEX) -> bool:
    """Whether the demo index exists but was built with another soundsift-base than the one
    installed (an upgrade that retrained the weights), so indexing it again must re-embed it.
    IndexUnreadable naming its index.json when that cannot be read (damaged, half-written)."""
    from engine.layout import IndexLayout, resolve_index_dir
    from engine.models.factory import BUNDLED, DEFAULT_MODEL
    from engine.models.soundsift_clap import SoundsiftClapConfig, fingerprint_of

    layout = IndexLayout(resolve_index_dir(index))
    if not layout.index_json.is_file():
        return False
    recorded = _recorded(layout.index_json).get("model_fingerprint")
    folder = BUNDLED[DEFAULT_MODEL]
    current = fingerprint_of(folder, SoundsiftClapConfig.from_file(folder / "config.json"))
    return recorded is not None and recorded != current


def _recorded(index_json: Path) -> dict:
    """What the index's ``index_json`` records; IndexUnreadable, naming it and what to do, when it
    is not a JSON object (cut short, overwritten) or cannot be read."""
    import json

    try:
        recorded = json.loads(index_json.read_text())
        if not isinstance(recorded, dict):
            raise ValueError(f"it holds a JSON {type(recorded).__name__}, not an object")
    except (OSError, ValueError) as e:
        from engine.errors import IndexUnreadable
        why = e.strerror.lower() if isinstance(e, OSError) and e.strerror else str(e)
        raise IndexUnreadable(f"{index_json} cannot be read ({why}; damaged or half-written?): the demo "
                              f"index is made from generated sounds, so delete the folder {index_json.parent} "
                              "and run the demo again") from e
    return recorded


def main(argv: list[str] | None = None) -> None:
    """Generate the demo library under demo/, index it as "demo", search and tag it (`make demo`)."""
    import argparse

    from engine.errors import SoundsiftError

    argparse.ArgumentParser(prog="python -m ui.demo", description=main.__doc__).parse_args(argv)
    files = generate()
    print(f"demo library: {len(files)} files in {DEMO_DIR}/", flush=True)
    try:
        rebuild = built_with_older_model()
    except SoundsiftError as e:             # one line, as the commands it runs say theirs
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(1) from e
    if rebuild:
        from engine.models.factory import DEFAULT_MODEL
        print(f"the demo index was built with an older {DEFAULT_MODEL!r}; re-embedding it", flush=True)
    _run(["index", str(DEMO_DIR), "--index", INDEX] + (["--rebuild"] if rebuild else []))
    for q in QUERIES:
        _run(["search", q, "--index", INDEX, "-k", "3"])
    _run(["tag", str(DEMO_DIR), "--index", INDEX, "--labels", TAG_LABELS, "--top", "2"])
    _run(["info", "--index", INDEX])


if __name__ == "__main__":
    main()
