"""Recorded sounds from Debian data packages, driven by the recipe table ``recipes.toml``.

Each ``[source.NAME]`` entry names a package, a folder inside it, how its files are packed
(plain files, Qt ``.rcc`` resources, ``.pk3`` zip archives), which paths to take, and how
their names become labels (:class:`~trainer.corpus.labels.LabelRules`). Speech sources give
every file a fixed label ("speech") unless the table maps its name to another (laughter,
coughing), and a language when the path says it.
"""
from __future__ import annotations

import fnmatch
import re
import tomllib
import zipfile
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Callable, Iterator

from engine.errors import CorpusError
from trainer.corpus.captions import speech_captions
from trainer.corpus.clips import Candidate
from trainer.corpus.labels import LabelRules
from trainer.corpus.rcc import RccFile

AUDIO_SUFFIXES = (".ogg", ".wav", ".flac", ".oga", ".mp3")

#: ISO 639-1 codes found in package paths → language names used in captions
LANGUAGES = {
    "ar": "Arabic", "be": "Belarusian", "bg": "Bulgarian", "ca": "Catalan", "cs": "Czech",
    "da": "Danish", "de": "German", "el": "Greek", "en": "English", "en_gb": "English",
    "eo": "Esperanto", "es": "Spanish", "eu": "Basque", "fi": "Finnish", "fr": "French",
    "ga": "Irish", "gl": "Galician", "he": "Hebrew", "hu": "Hungarian", "it": "Italian",
    "ja": "Japanese", "ko": "Korean", "lt": "Lithuanian", "nb": "Norwegian", "nl": "Dutch",
    "nn": "Norwegian", "pl": "Polish", "pt": "Portuguese", "pt_br": "Portuguese",
    "ro": "Romanian", "ru": "Russian", "sk": "Slovak", "sl": "Slovenian", "sr": "Serbian",
    "sv": "Swedish", "tr": "Turkish", "uk": "Ukrainian", "wa": "Walloon", "zh_cn": "Chinese",
    "zh_tw": "Chinese",
}


@dataclass(frozen=True)
class PackageRecipe:
    """How one source is cut out of one Debian package (one ``[source.NAME]`` table)."""

    name: str
    package: str
    root: str
    container: str = "files"
    include: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = ()
    rules: LabelRules = LabelRules()
    label_from: str = "name"          # "name" or "parent" (the folder's name)
    fallback: str | None = None       # label when the name maps to nothing (speech sources)
    tags: tuple[str, ...] = ()
    language: str | None = None       # regex with a (?P<lang>…) group on the path
    default_language: str | None = None

    @classmethod
    def from_dict(cls, name: str, d: dict) -> "PackageRecipe":
        container = d.get("container", "files")
        if container not in ("files", "rcc", "pk3"):
            raise ValueError(f"source {name}: container {container!r} is not files, rcc or pk3")
        return cls(
            name=name, package=d["package"], root=d.get("root", ""), container=container,
            include=tuple(d.get("include", ["*"])), exclude=tuple(d.get("exclude", [])),
            rules=LabelRules.from_dict(d), label_from=d.get("label_from", "name"),
            fallback=d.get("fallback"), tags=tuple(d.get("tags", [])),
            language=d.get("language"), default_language=d.get("default_language"),
        )

    def wants(self, relpath: str) -> bool:
        """Whether the recipe takes the file at ``relpath`` (inside its root)."""
        if not relpath.lower().endswith(AUDIO_SUFFIXES):
            return False
        if not any(fnmatch.fnmatch(relpath, g) for g in self.include):
            return False
        return not any(fnmatch.fnmatch(relpath, g) for g in self.exclude)

    def language_of(self, relpath: str) -> str | None:
        """The spoken language the path names, if the recipe knows how to read it."""
        if self.language:
            m = re.search(self.language, relpath)
            if m and m.group("lang"):
                code = m.group("lang").lower()
                return LANGUAGES.get(code, LANGUAGES.get(code.split("_")[0]))
        return self.default_language

    def candidate(self, relpath: str, read: Callable[[], bytes]) -> Candidate | None:
        """The clip for the file at ``relpath``, or None when its name carries no usable label."""
        parts = relpath.split("/")
        name = parts[-2] if self.label_from == "parent" and len(parts) > 1 else parts[-1]
        label = self.rules.label(name)
        captions: tuple[str, ...] = ()
        tags = list(self.tags)
        if label is None and self.fallback and not self.rules.dropped(name):
            label = self.fallback
        if label is None:
            return None
        if label == "speech":
            lang = self.language_of(relpath)
            captions = tuple(speech_captions(lang, synthetic=False))
            tags += ["speech"] + ([lang] if lang else [])
        elif label not in tags:
            tags.insert(0, label)
        return Candidate(self.name, f"{self.package}:{self.root}/{relpath}".replace("//", "/"),
                         label, tuple(dict.fromkeys(tags)), captions, read=read)


def load_recipes(path: Path | None = None) -> dict[str, PackageRecipe]:
    """The package sources of ``recipes.toml`` (or another table with the same layout)."""
    text = path.read_text("utf-8") if path else (files("trainer.corpus") / "recipes.toml").read_text("utf-8")
    table = tomllib.loads(text)
    return {name: PackageRecipe.from_dict(name, d) for name, d in table.get("source", {}).items()}


def _reader_of_file(p: Path) -> Callable[[], bytes]:
    return p.read_bytes


def _zip_member_reader(archive: Path, member: str) -> Callable[[], bytes]:
    def read() -> bytes:
        with zipfile.ZipFile(archive) as z:
            return z.read(member)
    return read


def iter_package_files(tree: Path, recipe: PackageRecipe) -> Iterator[tuple[str, Callable[[], bytes]]]:
    """(path inside the recipe's root, reader of its bytes) for every file of the package,
    looking inside .rcc and .pk3 containers when the recipe says so. Sorted, so deterministic."""
    root = tree / recipe.root
    if not root.is_dir():
        raise CorpusError(f"{root}: folder of source {recipe.name} not found in package "
                                f"{recipe.package}; fix 'root' in recipes.toml")
    if recipe.container == "files":
        for p in sorted(root.rglob("*")):
            if p.is_file():
                yield p.relative_to(root).as_posix(), _reader_of_file(p)
    elif recipe.container == "rcc":
        for p in sorted(root.rglob("*.rcc")):
            rcc = RccFile.open(p)
            for entry in sorted(rcc.entries(), key=lambda e: e.path):
                yield f"{p.stem}/{entry.path}", (lambda r=rcc, e=entry: r.read(e))
    else:
        for p in sorted(root.rglob("*.pk3")):
            with zipfile.ZipFile(p) as z:
                names = sorted(i.filename for i in z.infolist() if not i.is_dir())
            for n in names:
                yield f"{p.stem}/{n}", _zip_member_reader(p, n)


def package_candidates(tree: Path, recipe: PackageRecipe) -> tuple[list[Candidate], int]:
    """The labelled clips of one source and how many of its audio files were dropped for
    names without meaning."""
    out: list[Candidate] = []
    dropped = 0
    for rel, read in iter_package_files(tree, recipe):
        if not recipe.wants(rel):
            continue
        c = recipe.candidate(rel, read)
        if c is None:
            dropped += 1
        else:
            out.append(c)
    return out, dropped
