"""Training data: audio–text pairs from manifests, class folders, Clotho CSVs and WebDataset shards.

Readers turn each source into a list of :class:`Item` (where the audio is, its captions,
its tags, which source it came from). :class:`AudioTextDataset` decodes items in
DataLoader workers through :mod:`engine.audio` (soundfile → mono → soxr), cuts a
model-window crop (random in training, the first window in validation), picks a caption
(tags without captions become captions by keyword-to-caption), optionally mixes in a
second clip with a joined caption, and applies channel augmentations.

Randomness is a pure function of ``(seed, epoch, index)``: :class:`EpochBatchSampler`
hands the dataset ``(epoch, index)`` keys, so results do not depend on worker count and
a resumed run sees exactly the batches the uninterrupted run would have seen.

Formats
  manifest  .jsonl: one object per line, ``audio`` (or ``path``/``file``), ``caption`` /
            ``captions`` / ``text`` (string or list), optional ``tags`` (list or
            ``;``-separated), optional ``source``. .csv: the same column names; several
            captions in one cell are separated by ``|``, tags by ``;``.
            Relative audio paths are relative to the manifest's folder.
  folders   ``root/<label>/*.wav``: the folder name is the tag.
  clotho    Clotho CSV (``file_name, caption_1 … caption_5``) with an audio folder.
  webdataset  uncompressed ``.tar`` shards: ``<key>.flac|wav|mp3|ogg`` + ``<key>.json``
            with ``"text"`` (string or list) and optional ``"tag"``/``"tags"``
            (the LAION-Audio-630K layout).
"""
from __future__ import annotations

import csv
import glob
import io
import json
import logging
import random
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import soundfile as sf
import soxr

from engine.audio import AUDIO_EXTENSIONS, audio_files, decode, open_sound, probe
from engine.system_files import is_system_folder
from engine.errors import InvalidDataset, UnreadableAudio
from trainer.augment import AugmentConfig, ChannelAugment, mix_clips
from trainer.captions import captions_from_tags, keyword_to_caption
from trainer.jsonl import iter_objects

log = logging.getLogger(__name__)

FORMATS = ("manifest", "folders", "clotho", "webdataset")
_AUDIO_KEYS = ("audio", "path", "file", "file_name", "filename")
_CAPTION_KEYS = ("captions", "caption", "text")


@dataclass(frozen=True)
class TarMember:
    """Audio stored inside an uncompressed tar shard, read by offset (random access)."""

    tar: str
    name: str
    offset: int
    size: int

    def read(self) -> bytes:
        with open(self.tar, "rb") as f:
            f.seek(self.offset)
            return f.read(self.size)

    def __str__(self) -> str:
        return f"{self.tar}:{self.name}"


@dataclass
class Item:
    """One audio–text example."""

    audio: str | TarMember
    captions: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    source: str = ""

    def caption(self, rng: random.Random | None = None) -> str:
        """A caption: a random one of ``captions`` (or from ``tags``) with ``rng``, else the first."""
        if self.captions:
            return self.captions[0] if rng is None else rng.choice(self.captions)
        return keyword_to_caption(self.tags, rng)

    def as_json(self) -> dict[str, Any]:
        return {"audio": str(self.audio), "captions": self.captions, "tags": self.tags, "source": self.source}


# --------------------------------------------------------------------------- readers

def _split(value: Any, sep: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    return [v.strip() for v in str(value).split(sep) if v.strip()]


def row_audio(row: dict[str, Any]) -> str | None:
    """A manifest row's audio path as written (``audio``, ``path``, ``file`` …), or None."""
    audio = next((row[k] for k in _AUDIO_KEYS if row.get(k)), None)
    return str(audio) if audio else None


def row_tags(row: dict[str, Any]) -> list[str]:
    """A manifest row's tags (a list, or one ``;``-separated string), in order."""
    return _split(row.get("tags", row.get("tag")), ";")


def _row_to_item(row: dict[str, Any], base: Path, where: str, *, caption_sep: str) -> Item:
    audio = row_audio(row)
    if not audio:
        raise InvalidDataset(f"{where}: no audio path (expected a column/key named "
                             f"{', '.join(repr(k) for k in _AUDIO_KEYS)})")
    captions: list[str] = []
    for key in _CAPTION_KEYS:
        captions += _split(row.get(key), caption_sep)
    captions += [str(row[k]).strip() for k in sorted(row) if k.startswith("caption_") and row[k]]
    tags = row_tags(row)
    if not captions and not tags:
        raise InvalidDataset(f"{where}: {audio} has neither captions nor tags; give it a 'caption' or 'tags'")
    path = Path(str(audio)).expanduser()
    if not path.is_absolute():
        path = base / path
    return Item(str(path), list(dict.fromkeys(captions)), tags, str(row.get("source") or ""))


def manifest_rows(path: str | Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """``("<path>:<line>", raw row)`` for each row of a ``.jsonl`` or ``.csv``/``.tsv`` manifest."""
    path = Path(path)
    if not path.is_file():
        raise InvalidDataset(f"{path}: manifest not found")
    if path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        for n, row in iter_objects(path):
            yield f"{path}:{n}", row
    elif path.suffix.lower() in (".csv", ".tsv"):
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
            for n, row in enumerate(reader, 2):
                yield f"{path}:{n}", row
    else:
        raise InvalidDataset(f"{path}: unknown manifest type; use .jsonl or .csv")


def read_manifest(path: str | Path) -> list[Item]:
    """Items of a ``.jsonl`` or ``.csv`` manifest (see the module docstring)."""
    path = Path(path)
    caption_sep = "|" if path.suffix.lower() in (".csv", ".tsv") else "\n"
    items = [_row_to_item(row, path.parent, where, caption_sep=caption_sep) for where, row in manifest_rows(path)]
    if not items:
        raise InvalidDataset(f"{path}: manifest is empty")
    return items


def read_class_folders(root: str | Path) -> list[Item]:
    """``root/<label>/<audio>``: each file tagged with its folder's name (macOS's ``._`` files and
    hidden or system folders passed over, engine.system_files)."""
    root = Path(root)
    if not root.is_dir():
        raise InvalidDataset(f"{root}: not a folder of class folders")
    items = [Item(str(p), [], [sub.name.replace("_", " ")], root.name)
             for sub in sorted(p for p in root.iterdir() if p.is_dir() and not is_system_folder(p.name))
             for p in audio_files([sub])]
    if not items:
        raise InvalidDataset(f"{root}: no audio in class folders (expected {root}/<label>/<file>.wav)")
    return items


def read_clotho(csv_path: str | Path, audio_dir: str | Path | None = None) -> list[Item]:
    """A Clotho captions CSV; audio in ``audio_dir`` (default: the CSV's folder)."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise InvalidDataset(f"{csv_path}: Clotho CSV not found")
    audio_dir = Path(audio_dir) if audio_dir else csv_path.parent
    items = []
    with csv_path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if "file_name" not in (reader.fieldnames or []):
            raise InvalidDataset(f"{csv_path}: not a Clotho CSV (no 'file_name' column)")
        for row in reader:
            caps = [row[k].strip() for k in sorted(row) if k.startswith("caption") and row[k] and row[k].strip()]
            if caps:
                items.append(Item(str(audio_dir / row["file_name"]), caps, [], "clotho"))
    if not items:
        raise InvalidDataset(f"{csv_path}: no captioned rows")
    return items


def _shard_paths(spec: str | Path | Sequence[str | Path]) -> list[Path]:
    if isinstance(spec, (list, tuple)):
        return [p for s in spec for p in _shard_paths(s)]
    p = Path(spec)
    if p.is_dir():
        return sorted(p.glob("*.tar"))
    if any(ch in str(p) for ch in "*?["):
        return sorted(Path(x) for x in glob.glob(str(p)))
    return [p]


def read_webdataset(shards: str | Path | Sequence[str | Path]) -> list[Item]:
    """Items of WebDataset tar shards (a file, a folder of .tar, a glob, or a list)."""
    paths = _shard_paths(shards)
    if not paths:
        raise InvalidDataset(f"{shards}: no .tar shards found")
    items: list[Item] = []
    for tar_path in paths:
        if not tar_path.is_file():
            raise InvalidDataset(f"{tar_path}: shard not found")
        groups: dict[str, dict[str, Any]] = {}
        try:
            with tarfile.open(tar_path, mode="r:") as tar:
                for m in tar:
                    if not m.isfile():
                        continue
                    folder, _, base = m.name.rpartition("/")
                    stem, dot, ext = base.partition(".")
                    key = f"{folder}/{stem}" if folder else stem
                    group = groups.setdefault(key, {})
                    if ext.lower() == "json":
                        group["json"] = json.loads(tar.extractfile(m).read().decode("utf-8"))
                    elif "." + ext.lower().rsplit(".", 1)[-1] in AUDIO_EXTENSIONS:
                        group["audio"] = TarMember(str(tar_path), m.name, m.offset_data, m.size)
        except tarfile.ReadError as e:
            raise InvalidDataset(f"{tar_path}: not an uncompressed tar shard ({e}); "
                                 "WebDataset shards must be plain .tar for random access") from e
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise InvalidDataset(f"{tar_path}: a .json member is not valid JSON ({e})") from e
        for key, group in groups.items():
            if "audio" not in group or "json" not in group:
                log.warning("%s: sample %r lacks audio or json; skipped", tar_path, key)
                continue
            meta = group["json"]
            captions = _split(meta.get("text", meta.get("caption")), "\n")
            tags = _split(meta.get("tags", meta.get("tag")), ";")
            if not captions and not tags:
                log.warning("%s: sample %r has no text or tags; skipped", tar_path, key)
                continue
            items.append(Item(group["audio"], captions, tags, str(meta.get("source") or tar_path.parent.name)))
    if not items:
        raise InvalidDataset(f"{shards}: shards hold no usable (audio, json) samples")
    return items


def read_items(kind: str, path: str | Path | Sequence[str | Path], *, audio_dir: str | Path | None = None
               ) -> list[Item]:
    """Dispatch on a dataset format name (one of :data:`FORMATS`)."""
    if kind == "manifest":
        return read_manifest(path)  # type: ignore[arg-type]
    if kind == "folders":
        return read_class_folders(path)  # type: ignore[arg-type]
    if kind == "clotho":
        return read_clotho(path, audio_dir)  # type: ignore[arg-type]
    if kind == "webdataset":
        return read_webdataset(path)
    raise InvalidDataset(f"unknown dataset format {kind!r}; use one of {', '.join(FORMATS)}")


def drop_missing(items: list[Item]) -> list[Item]:
    """Items whose audio file exists and has a readable header; the others are logged."""
    kept, bad = [], []
    for item in items:
        if isinstance(item.audio, TarMember):
            kept.append(item)
            continue
        try:
            probe(item.audio)
            kept.append(item)
        except UnreadableAudio as e:
            bad.append(str(e))
    if bad:
        log.warning("%d of %d training files unusable and left out, e.g. %s", len(bad), len(items), bad[0])
    if not kept:
        raise InvalidDataset(f"none of the {len(items)} audio files could be read, e.g. {bad[0] if bad else '?'}")
    return kept


# --------------------------------------------------------------------------- decoding

def _mono(data: np.ndarray) -> np.ndarray:
    return data.mean(axis=1) if data.ndim > 1 else data


def load_clip(audio: str | TarMember, sample_rate: int, seconds: float | None,
              rng: np.random.Generator | None) -> np.ndarray:
    """Mono float32 audio at ``sample_rate``: a ``seconds`` crop (random with ``rng``, else
    from the start), or the whole clip when ``seconds`` is None.

    Files are read only around the crop; tar members are decoded from memory.
    """
    where = str(audio)
    try:
        if isinstance(audio, TarMember):
            data, sr = sf.read(io.BytesIO(audio.read()), dtype="float32", always_2d=True)
            x = _mono(data)
            if sr != sample_rate:
                x = soxr.resample(x, sr, sample_rate)
            return _crop(np.asarray(x, np.float32), sample_rate, seconds, rng)
        if seconds is None:
            return decode(audio, sample_rate)
        info = probe(audio)
        native = int(np.ceil(seconds * info.sample_rate))
        margin = int(0.02 * info.sample_rate) + 64   # resampler filter context on each side
        if info.frames <= native + 2 * margin:
            return _crop(decode(audio, sample_rate), sample_rate, seconds, rng)
        start = int(rng.integers(0, info.frames - native + 1)) if rng is not None else 0
        lo, hi = max(0, start - margin), min(info.frames, start + native + margin)
        with open_sound(audio) as f:
            f.seek(lo)
            data, sr = f.read(hi - lo, dtype="float32", always_2d=True), f.samplerate
        x = _mono(data)
        if sr != sample_rate:
            x = soxr.resample(x, sr, sample_rate)
        skip = int(round((start - lo) * sample_rate / sr))
        return _crop(np.asarray(x[skip:], np.float32), sample_rate, seconds, None)
    except UnreadableAudio:
        raise
    except Exception as e:
        raise UnreadableAudio(where, f"could not be decoded for training ({e})") from e


def _crop(x: np.ndarray, sr: int, seconds: float | None, rng: np.random.Generator | None) -> np.ndarray:
    if seconds is None:
        return x
    n = max(1, int(round(seconds * sr)))
    if len(x) > n:
        start = int(rng.integers(0, len(x) - n + 1)) if rng is not None else 0
        return np.ascontiguousarray(x[start:start + n], dtype=np.float32)
    return repeat_pad(x, n)


def repeat_pad(x: np.ndarray, n: int) -> np.ndarray:
    """``x`` repeated to exactly ``n`` samples (LAION-CLAP's "repeatpad"); silence if empty."""
    if len(x) == 0:
        return np.zeros(n, np.float32)
    reps = int(np.ceil(n / len(x)))
    return np.ascontiguousarray(np.tile(x, reps)[:n], dtype=np.float32)


# --------------------------------------------------------------------------- dataset

class AudioTextDataset:
    """Map-style dataset of fixed-length (waveform, caption) pairs for a model's rate and window.

    ``dataset[(epoch, i)]`` (training) or ``dataset[i]`` (validation, epoch 0) returns
    ``{"audio": float32 (clip_samples,), "text": str, "index": i}``.
    """

    def __init__(self, items: Sequence[Item], sample_rate: int, clip_seconds: float, *, train: bool,
                 augment: AugmentConfig | None = None, seed: int = 0) -> None:
        if not items:
            raise InvalidDataset("no training items")
        self.items = list(items)
        self.sample_rate = int(sample_rate)
        self.clip_seconds = float(clip_seconds)
        self.clip_samples = max(1, int(round(self.clip_seconds * self.sample_rate)))
        self.train = train
        self.augment_config = augment if augment is not None else AugmentConfig.off()
        self.augment = ChannelAugment(self.augment_config)
        self.seed = int(seed)

    def __len__(self) -> int:
        return len(self.items)

    def _rng(self, epoch: int, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, epoch, index])

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        item = self.items[index]
        if not self.train:
            audio = load_clip(item.audio, self.sample_rate, self.clip_seconds, None)
            return {"audio": audio, "text": item.caption(None), "index": index}
        rng = self._rng(epoch, index)
        py_rng = random.Random(int(rng.integers(2 ** 63)))
        audio = load_clip(item.audio, self.sample_rate, self.clip_seconds, rng)
        text = self._caption(item, py_rng)
        if self.augment_config.mix > 0 and len(self.items) > 1 and rng.random() < self.augment_config.mix:
            other_index = int(rng.integers(len(self.items) - 1))
            other_index += other_index >= index
            other = self.items[other_index]
            audio = mix_clips(audio, load_clip(other.audio, self.sample_rate, self.clip_seconds, rng),
                              rng, self.augment_config.mix_snr_db)
            text = join_captions(text, self._caption(other, py_rng))
        audio = self.augment(audio, self.sample_rate, rng)
        return {"audio": audio, "text": text, "index": index}

    @staticmethod
    def _caption(item: Item, rng: random.Random) -> str:
        if item.tags and (not item.captions or rng.random() < 0.3):
            return captions_from_tags(item.tags, 1, rng=rng)[0]   # keyword-to-caption variety
        return item.caption(rng)


def join_captions(a: str, b: str) -> str:
    """Two captions as one: ``"A dog barks." + "Rain."`` → ``"A dog barks and rain"``."""
    a, b = a.strip().rstrip("."), b.strip().rstrip(".")
    return f"{a} and {b[:1].lower() + b[1:]}" if b else a


def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack a list of dataset outputs: audio → (B, T) tensor, text → list, index → tensor."""
    import torch
    return {"audio": torch.from_numpy(np.stack([b["audio"] for b in batch])),
            "text": [b["text"] for b in batch],
            "index": torch.tensor([b["index"] for b in batch], dtype=torch.long)}


class EpochBatchSampler:
    """Endless batches of ``(epoch, index)`` keys; the order of each epoch is a permutation
    seeded by ``(seed, epoch)``; incomplete last batches are dropped.

    ``start_batch`` skips that many batches (counted from the very first), so a resumed
    run continues exactly where the interrupted one stopped.
    """

    def __init__(self, n_items: int, batch_size: int, seed: int, start_batch: int = 0) -> None:
        if batch_size > n_items:
            raise InvalidDataset(f"batch size {batch_size} is larger than the training set ({n_items} items); "
                                 "lower batch_size or add data")
        self.n = n_items
        self.batch_size = batch_size
        self.seed = seed
        self.start_batch = start_batch

    @property
    def batches_per_epoch(self) -> int:
        return self.n // self.batch_size

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        b = self.start_batch
        while True:
            epoch, pos = divmod(b, self.batches_per_epoch)
            order = np.random.default_rng([self.seed, epoch, 7]).permutation(self.n)
            for p in range(pos, self.batches_per_epoch):
                yield [(epoch, int(i)) for i in order[p * self.batch_size:(p + 1) * self.batch_size]]
            b = (epoch + 1) * self.batches_per_epoch
