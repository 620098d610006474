"""Synthetic speech with espeak-ng: several languages, voice variants, speeds and pitches.

Captions claim only what is known: synthetic speech, and its language. Real voices come from
the package sources (hedgewars, ktuberling, fillets, tuxpaint, pingus); this only adds variety.
"""
from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

from trainer.corpus.captions import speech_captions
from engine.errors import CorpusError
from trainer.corpus.clips import Candidate
from trainer.corpus.tones import RATES

#: espeak-ng voice → (language name, real sentences)
SENTENCES: dict[str, tuple[str, tuple[str, ...]]] = {
    "en": ("English", (
        "The train to the city centre leaves from platform four.",
        "Please remember to switch off the lights when you leave the room.",
        "It looks like it is going to rain this afternoon.",
        "Could you tell me the way to the nearest post office?",
        "Attention please, the store will close in fifteen minutes.",
        "My sister bought a new bicycle last weekend.",
    )),
    "en-us": ("English", (
        "Thank you for calling, all of our agents are currently busy.",
        "The meeting has been moved to Thursday morning at ten.",
        "Turn left at the next intersection and continue for two miles.",
    )),
    "fr": ("French", (
        "Le train pour Paris partira avec dix minutes de retard.",
        "Il fait beau aujourd'hui, allons nous promener au parc.",
        "Pouvez-vous m'indiquer où se trouve la gare, s'il vous plaît ?",
    )),
    "de": ("German", (
        "Der nächste Halt ist der Hauptbahnhof.",
        "Heute Abend gibt es Suppe und frisches Brot.",
        "Bitte schließen Sie die Tür hinter sich.",
    )),
    "es": ("Spanish", (
        "El próximo autobús llegará en cinco minutos.",
        "Mañana vamos a visitar a mis abuelos en el campo.",
        "¿Dónde está la biblioteca más cercana?",
    )),
    "it": ("Italian", (
        "Il treno regionale è in arrivo al binario due.",
        "Vorrei un caffè e un bicchiere d'acqua, per favore.",
    )),
    "pt": ("Portuguese", (
        "O voo para Lisboa está atrasado por causa do tempo.",
        "Hoje o mercado abre mais cedo.",
    )),
    "nl": ("Dutch", (
        "De winkel is op zondag gesloten.",
        "Wil je nog een kopje thee?",
    )),
}
VARIANTS = ("", "+m1", "+m3", "+f1", "+f3", "+klatt", "+croak", "+whisper")


def espeak_command(out: Path, voice: str, text: str, speed: int, pitch: int) -> list[str]:
    """espeak-ng command writing ``text`` spoken by ``voice`` to the WAV ``out``."""
    return ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(out), text]


def speech_candidates(count: int, seed: int) -> list[Candidate]:
    """``count`` synthetic utterances cycling through languages, sentences and voices."""
    if shutil.which("espeak-ng") is None:
        raise CorpusError("espeak-ng not found: apt-get install espeak-ng "
                                "(or leave 'speech' out of --sources)")
    rng = random.Random(f"speech:{seed}")
    pairs = [(v, lang, s) for v, (lang, ss) in SENTENCES.items() for s in ss]
    out: list[Candidate] = []
    for i in range(count):
        voice, lang, text = pairs[i % len(pairs)]
        variant = rng.choice(VARIANTS)
        speed, pitch, rate = rng.randint(120, 200), rng.randint(25, 75), rng.choice(RATES)
        cmd_voice = voice + variant

        def render(path: Path, v=cmd_voice, t=text, s=speed, p=pitch) -> None:
            subprocess.run(espeak_command(path, v, t, s, p), check=True, capture_output=True)
        caps = speech_captions(lang, synthetic=True)
        if variant == "+whisper":
            caps.append("synthetic whispering")
        out.append(Candidate("speech", f"espeak-ng:{cmd_voice}:{i}", "synthetic speech",
                             ("synthetic speech", "speech", lang), tuple(caps), render=render, rate=rate))
    return out
