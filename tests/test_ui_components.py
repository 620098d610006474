"""The page's pieces without Streamlit running: look-ups, thumbnails, player, uploads,
map projection, filters, links, and the `soundsift ui` command line."""
from __future__ import annotations

import io
import os

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from engine.errors import InvalidQuery, UnreadableAudio
from tests.conftest import noise, tone, write
from ui.components.library import FileRecord, folder_prefix, folders_of, relative_to_root
from ui.components.library_map import map_rows, pca_2d, selected_file_id
from ui.components.links import query_from_params, share_url
from ui.components.player import player_source
from ui.components.server import INDEX_ENV, MODEL_ENV, page_env, streamlit_command
from engine.filters import channel_name
from ui.components.sidebar import ALL_FOLDERS, filters_from_choices, slider_top
from ui.components.tag_tab import parse_label_text
from ui.components.thumbnails import BAND_HIT, WAVE, envelope, render_png, waveform_png
from ui.components.uploads import read_example


def record_for(path, fmt: str, duration: float, sr: int) -> FileRecord:
    return FileRecord(1, str(path), duration, sr, 1, fmt, os.path.getsize(path),
                      os.stat(path).st_mtime_ns)


# --- library look-ups ---------------------------------------------------------------

def test_folders_of_lists_every_folder_below_the_common_root():
    paths = ["/lib/a/x.wav", "/lib/a/b/y.wav", "/lib/c/d/z.wav"]
    assert folders_of(paths) == ["/lib", "/lib/a", "/lib/a/b", "/lib/c", "/lib/c/d"]
    assert folders_of(["/lib/a/x.wav", "/lib/a/y.wav"]) == ["/lib/a"]
    assert folders_of([]) == []


def test_folder_prefix_does_not_match_sibling_folders():
    assert folder_prefix("/lib/dog") == "/lib/dog" + os.sep
    assert not "/lib/dogs/a.wav".startswith(folder_prefix("/lib/dog"))
    assert relative_to_root("/lib/a/b", "/lib") == "a/b"
    assert relative_to_root("/lib", "/lib") == "."
    assert relative_to_root("/elsewhere/a", "/lib") == "/elsewhere/a"


# --- thumbnails -----------------------------------------------------------------------

def test_envelope_follows_the_signal_loudness(tmp_path):
    sr = 8000
    x = np.concatenate([np.zeros(sr, np.float32), tone(200, 1.0, sr, amp=0.8)])
    p = write(tmp_path / "half.wav", x, sr)
    env = envelope(p, columns=100, block_frames=1000)  # many blocks: block seams covered
    assert env.shape == (100, 2)
    assert np.abs(env[:45]).max() < 1e-3           # silent first half
    assert env[55:, 1].min() > 0.7 and env[55:, 0].max() < -0.7


def test_envelope_of_a_file_shorter_than_the_width(tmp_path):
    p = write(tmp_path / "tiny.wav", np.array([0.5, -0.5, 0.25], np.float32), 8000, subtype="FLOAT")
    env = envelope(p, columns=30)
    assert env.shape == (30, 2)
    assert env.max() == pytest.approx(0.5) and env.min() == pytest.approx(-0.5)


def test_envelope_of_a_broken_file_names_it(tmp_path):
    p = tmp_path / "bad.wav"
    p.write_bytes(b"nope")
    with pytest.raises(UnreadableAudio, match="bad.wav"):
        envelope(p)


def test_png_highlights_the_matching_span():
    env = np.stack([-np.full(200, 0.5), np.full(200, 0.5)], axis=1).astype(np.float32)
    png = render_png(env, height=40, highlight=(0.5, 0.75))
    from PIL import Image
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))
    assert img.shape == (40, 200, 4)
    top_row = img[0]
    assert (top_row[110:140] == BAND_HIT).all()      # band drawn over the span only
    assert not (top_row[:90] == BAND_HIT).all(axis=1).any()
    mid = img[20]
    assert (mid[:90] == WAVE).all(axis=1).all()       # waveform colour outside the span


def test_named_markers_are_ticked_on_the_waveform(tmp_path):
    from PIL import Image

    from ui.components.thumbnails import MARK, MARK_TICK
    p = write(tmp_path / "n.wav", noise(4.0, 16000), 16000)
    img = np.asarray(Image.open(io.BytesIO(waveform_png(p, 4.0, width=200, height=40, marks=(1.0, 3.0)))).convert("RGBA"))
    ticked = (img[:MARK_TICK] == MARK).all(axis=2).all(axis=0)
    assert list(np.flatnonzero(ticked)) == [50, 51, 150, 151]     # at 1 s and 3 s of 4 s, 2 px wide
    assert (img[-MARK_TICK:, 50] == MARK).all() and not (img[MARK_TICK:-MARK_TICK, 50] == MARK).all(axis=1).any()


def test_waveform_png_of_a_file(tmp_path):
    p = write(tmp_path / "n.wav", noise(2.0, 16000), 16000)
    png = waveform_png(p, 2.0, 0.5, 1.0, width=120, height=30)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def _reference_envelope(x: np.ndarray, columns: int) -> np.ndarray:
    """The thumbnail's envelope by definition: per column, min/max of every mono sample."""
    mono = (x if x.ndim == 2 else x[:, None]).astype(np.float32).mean(axis=1)
    cols = max(1, min(columns, mono.size))
    edges = np.linspace(0, mono.size, cols + 1).astype(np.int64)
    env = np.array([[mono[a:b].min(), mono[a:b].max()] for a, b in zip(edges[:-1], edges[1:])], np.float32)
    if cols < columns:
        env = env[np.linspace(0, cols - 1, columns).round().astype(int)]
    return np.clip(env, -1.0, 1.0)


class _ReadSpy:
    """Wraps thumbnails.open_sound: counts opens and the frames read."""

    def __init__(self, monkeypatch):
        import ui.components.thumbnails as thumbnails
        real = thumbnails.open_sound
        self.opens = 0
        self.frames = 0
        self.reads = 0

        def spying(path):
            self.opens += 1
            f = real(path)
            read = f.read

            def counted(*a, **kw):
                out = read(*a, **kw)
                self.frames += len(out)
                self.reads += 1
                return out
            f.read = counted
            return f
        monkeypatch.setattr(thumbnails, "open_sound", spying)


@pytest.mark.parametrize("seconds,channels,columns,block", [
    (0.001, 1, 320, 1 << 16), (2.5, 2, 320, 1000), (7.3, 3, 120, 4096), (119.0, 1, 320, 1 << 16)])
def test_short_files_keep_their_exact_thumbnail(tmp_path, seconds, channels, columns, block):
    sr = 8000
    x = (0.4 * np.random.default_rng(3).standard_normal((int(seconds * sr), channels))).astype(np.float32)
    p = write(tmp_path / "short.wav", x, sr, subtype="FLOAT")
    ref = _reference_envelope(x, columns)
    np.testing.assert_array_equal(envelope(p, columns=columns, block_frames=block), ref)
    assert waveform_png(p, seconds, 0.1 * seconds, 0.2 * seconds, width=columns) == \
        render_png(ref, highlight=(0.1, 0.2))


def _long_file(tmp_path, minutes=10.0, sr=8000, event_at=None):
    """A quiet noise file of ``minutes`` at ``sr`` (mono), with a loud 3 s tone at ``event_at`` s."""
    x = noise(minutes * 60, sr, amp=0.02)
    if event_at is not None:
        a = int(event_at * sr)
        x[a:a + 3 * sr] += tone(440, 3.0, sr, amp=0.9)
    p = write(tmp_path / "long.wav", x, sr)
    return p, sf.read(str(p), dtype="float32")[0]            # as stored (16-bit)


def test_long_file_envelope_is_sampled_from_bounded_reads(tmp_path, monkeypatch):
    from ui.components.thumbnails import SAMPLE_FRAMES, SAMPLE_READS
    p, x = _long_file(tmp_path, event_at=450.0)              # 7:30 of 10:00, 3 s long
    spy = _ReadSpy(monkeypatch)
    env = envelope(p, columns=320)
    assert spy.frames <= 320 * SAMPLE_READS * SAMPLE_FRAMES < x.size / 3
    assert env.shape == (320, 2)
    loud = np.flatnonzero(env[:, 1] > 0.5)
    assert loud.size and set(loud) <= {239, 240, 241}        # 450 s / 600 s × 320 = column 240
    quiet = np.delete(np.arange(320), [239, 240, 241])
    assert np.abs(env[quiet]).max() < 0.15                   # the noise floor elsewhere
    exact = _reference_envelope(x, 320)
    assert set(np.flatnonzero(exact[:, 1] > 0.5)) == set(loud)            # the same columns loud
    assert (env[:, 1] <= exact[:, 1]).all() and (env[:, 0] >= exact[:, 0]).all()  # a sample of each


def test_long_file_is_read_whole_when_sampling_is_off(tmp_path, monkeypatch):
    p, x = _long_file(tmp_path, minutes=3.0)
    spy = _ReadSpy(monkeypatch)
    env = envelope(p, columns=64, sample_above=None)
    assert spy.frames == x.size
    np.testing.assert_array_equal(env, _reference_envelope(x, 64))


def _band(png: bytes) -> np.ndarray:
    """The columns drawn in the span's colours."""
    from PIL import Image

    from ui.components.thumbnails import WAVE_HIT
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))
    return np.flatnonzero(((img == BAND_HIT) | (img == WAVE_HIT)).all(axis=-1).any(axis=0))


def test_a_second_moment_of_a_short_file_does_not_read_it_again(tmp_path, monkeypatch):
    p = write(tmp_path / "s.wav", noise(60.0, 8000), 8000)
    spy = _ReadSpy(monkeypatch)
    first = waveform_png(p, 60.0, 6.0, 12.0, width=100, height=20)
    assert spy.opens == 1
    second = waveform_png(p, 60.0, 30.0, 36.0, width=100, height=20)
    assert spy.opens == 1                                    # the envelope came from the cache
    assert _band(first).min() == 10 and _band(second).min() == 50   # each moment's own span drawn


def test_a_moment_of_a_long_file_reads_only_its_own_columns_once(tmp_path, monkeypatch):
    p, x = _long_file(tmp_path, minutes=3.0, event_at=60.0)
    spy = _ReadSpy(monkeypatch)
    first = waveform_png(p, 180.0, 10.0, 20.0, width=180, height=20)
    from ui.components.thumbnails import SAMPLE_FRAMES, SAMPLE_READS
    assert spy.opens == 2                                    # sampled, then the span's columns
    assert spy.frames <= 180 * SAMPLE_READS * SAMPLE_FRAMES + 12 * 8000 < x.size
    again = waveform_png(p, 180.0, 10.0, 20.0, width=180, height=20)
    assert spy.opens == 2 and again == first                 # the same moment: nothing read
    frames = spy.frames
    second = waveform_png(p, 180.0, 120.0, 130.0, width=180, height=20)
    assert spy.opens == 3 and spy.frames - frames <= 12 * 8000       # ~10 s under the span, no more
    assert _band(first).min() == 10 and _band(second).min() == 120


def test_a_short_event_under_the_moment_shows_though_sampling_missed_it(tmp_path):
    from ui.components.thumbnails import file_envelope
    sr, cols = 8000, 320
    x = noise(600.0, sr, amp=0.02)
    col = 15000                                              # frames under a column (600 s × 8 kHz / 320)
    x[200 * col + 100:200 * col + 500] = 0.9                 # 50 ms at the start of column 200, between reads
    p = write(tmp_path / "click.wav", x, sr)
    x = sf.read(str(p), dtype="float32")[0]
    assert envelope(p, columns=cols)[200, 1] < 0.2          # the sampling steps over it
    assert file_envelope(p, cols)[200, 1] < 0.2
    env = file_envelope(p, cols, span=(374.0, 384.0))       # a moment over it (click at 375 s)
    assert env[200, 1] > 0.85
    np.testing.assert_array_equal(env[199:205], _reference_envelope(x, cols)[199:205])  # 374–384 s
    assert file_envelope(p, cols)[200, 1] > 0.85            # kept for the next card


def test_a_changed_file_is_read_again(tmp_path, monkeypatch):
    p = write(tmp_path / "c.wav", noise(2.0, 8000), 8000)
    spy = _ReadSpy(monkeypatch)
    waveform_png(p, 2.0, 0.5, 1.0, width=50, height=20)
    write(p, noise(3.0, 8000, seed=1), 8000)                 # another size: another key
    waveform_png(p, 3.0, 0.5, 1.0, width=50, height=20)
    assert spy.opens == 2


# --- player ---------------------------------------------------------------------------

def test_small_browser_playable_file_is_served_whole_from_the_match(tmp_path):
    p = write(tmp_path / "a.wav", tone(300, 3.0, 16000), 16000)
    src = player_source(record_for(p, "WAV", 3.0, 16000), 1.5)
    assert src.data == p.read_bytes() and src.mime == "audio/wav"
    assert src.start_time == 1.5 and src.excerpt_offset is None


def test_aiff_or_large_files_become_a_wav_excerpt_from_the_match(tmp_path):
    sr = 8000
    x = np.concatenate([np.zeros(2 * sr), tone(500, 2.0, sr)]).astype(np.float32)
    p = write(tmp_path / "a.aiff", x, sr, format="AIFF")
    src = player_source(record_for(p, "AIFF", 4.0, sr), 2.0, excerpt_seconds=1.0)
    assert src.mime == "audio/wav" and src.start_time == 0.0 and src.excerpt_offset == 2.0
    data, rate = sf.read(io.BytesIO(src.data))
    assert rate == sr and len(data) == sr
    assert np.abs(data).max() > 0.4                   # it starts at the tone, not the silence
    big = write(tmp_path / "b.wav", x, sr)
    src = player_source(record_for(big, "WAV", 4.0, sr), 0.5, max_whole_bytes=100, excerpt_seconds=1.0)
    assert src.excerpt_offset == 0.5 and len(sf.read(io.BytesIO(src.data))[0]) == sr


def test_player_of_a_moved_file_says_what_to_do(tmp_path):
    p = write(tmp_path / "gone.wav", tone(300, 0.5, 8000), 8000)
    rec = record_for(p, "WAV", 0.5, 8000)
    p.unlink()
    with pytest.raises(UnreadableAudio, match="re-index"):
        player_source(rec, 0.0)


# --- uploads --------------------------------------------------------------------------

def wav(x: np.ndarray, sr: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, sr, format="WAV", subtype="FLOAT")
    return buf.getvalue()


def test_upload_is_decoded_in_memory_to_mono():
    stereo = np.stack([tone(200, 0.5, 16000), tone(200, 0.5, 16000) * 0.5], axis=1)
    ex = read_example("clip.wav", wav(stereo, 16000))
    assert ex.sample_rate == 16000 and ex.waveform.ndim == 1
    assert ex.duration == pytest.approx(0.5)
    np.testing.assert_allclose(ex.waveform, stereo.mean(axis=1), atol=1e-6)


def test_upload_over_the_limit_or_not_audio_is_refused():
    data = wav(tone(200, 1.0, 16000), 16000)
    with pytest.raises(InvalidQuery, match="upload limit"):
        read_example("big.wav", data, max_bytes=len(data) - 1)
    with pytest.raises(UnreadableAudio, match="notes.txt"):
        read_example("notes.txt", b"hello there")
    with pytest.raises(UnreadableAudio, match="empty"):
        read_example("e.wav", b"")


# --- map ------------------------------------------------------------------------------

def test_pca_puts_points_on_their_main_axis_with_a_fixed_sign():
    rng = np.random.default_rng(0)
    t = np.linspace(-1, 1, 20)
    x = np.outer(t, rng.standard_normal(8)) + 1e-3 * rng.standard_normal((20, 8))
    xy = pca_2d(x)
    assert xy.shape == (20, 2)
    assert abs(np.corrcoef(xy[:, 0], t)[0, 1]) > 0.999
    assert np.abs(xy[:, 1]).max() < 0.05 * np.abs(xy[:, 0]).max()
    np.testing.assert_allclose(pca_2d(x), xy)          # deterministic
    assert xy[np.argmax(np.abs(xy[:, 0])), 0] > 0      # sign fixed
    np.testing.assert_allclose(pca_2d(-x), xy, atol=1e-5)  # mirrored input, same map
    assert pca_2d(x[:1]).tolist() == [[0.0, 0.0]]


def full_svd_pca(x: np.ndarray) -> np.ndarray:
    """The reference projection: U·S of the full SVD of the centred vectors."""
    x = np.asarray(x, np.float64)
    u, s, _ = np.linalg.svd(x - x.mean(axis=0), full_matrices=False)
    return u[:, :2] * s[:2]


@pytest.mark.parametrize("n, d", [(400, 48), (48, 48), (30, 200), (3, 16), (2, 5), (50, 1)])
def test_pca_equals_the_full_svd_up_to_sign(n, d):
    """pca_2d takes its axes from XᵀX (XXᵀ when n < d), not the SVD of X: same map to rounding."""
    rng = np.random.default_rng(n * 1000 + d)
    spread = np.geomspace(3.0, 0.05, d)                   # distinct variances: unique axes
    rotation, _ = np.linalg.qr(rng.standard_normal((d, d)))
    x = (rng.standard_normal((n, d)) * spread) @ rotation + rng.standard_normal(d)  # off-centre
    x = x.astype(np.float32)
    ref, xy = full_svd_pca(x), pca_2d(x)
    assert xy.shape == (n, 2) and xy.dtype == np.float32
    scale = np.abs(ref).max()
    for j in range(ref.shape[1]):
        sign = 1.0 if np.dot(xy[:, j], ref[:, j]) >= 0 else -1.0
        np.testing.assert_allclose(sign * xy[:, j], ref[:, j], rtol=0, atol=1e-5 * scale)
    if d == 1:
        assert not xy[:, 1].any()


def test_map_rows_and_picked_point():
    rows = map_rows([3, 7], ["/lib/a/x.wav", "/lib/b/y.wav"], np.array([[0, 1], [2, 3]]), root="/lib")
    assert rows == [{"file_id": 3, "name": "x.wav", "folder": "a", "x": 0.0, "y": 1.0},
                    {"file_id": 7, "name": "y.wav", "folder": "b", "x": 2.0, "y": 3.0}]
    assert selected_file_id({"selection": {"pick": [{"file_id": 7}]}}) == 7
    assert selected_file_id({"selection": {"pick": []}}) is None
    assert selected_file_id({"selection": {"pick": [{"file_id": "../../etc/passwd"}]}}) is None
    assert selected_file_id(None) is None
    rows = map_rows([1, 2, 3], ["/lib/x.wav", "/elsewhere/y.wav", "z.wav"], np.zeros((3, 2)), root="/lib")
    # a file directly in the root is in the root, named in full as on its card (the legend said ".")
    assert [(r["name"], r["folder"]) for r in rows] == [("x.wav", "/lib"), ("y.wav", "/elsewhere"), ("z.wav", ".")]


# --- filters, links, labels -----------------------------------------------------------

def test_sidebar_values_become_query_filters():
    f = filters_from_choices((0.0, slider_top(11.2)), 11.2, ALL_FOLDERS, [], [])
    assert not f.active and slider_top(11.2) == 12.0
    f = filters_from_choices((1.0, 5.0), 11.2, "/lib/dog", ["FLAC"], [44100])
    assert (f.min_duration, f.max_duration, f.path_prefix) == (1.0, 5.0, "/lib/dog" + os.sep)
    assert f.formats == ("flac",) and f.sample_rates == (44100,) and f.channels == ()
    f = filters_from_choices(None, 11.2, ALL_FOLDERS, [], [], channels=[2, 6])
    assert f.active and f.channels == (2, 6)
    assert [channel_name(c) for c in (1, 2, 6)] == ["mono", "stereo", "6 channels"]


def test_shareable_links():
    assert query_from_params({"q": "  dog barking "}) == "dog barking"
    assert query_from_params({"q": ["a", "rain"]}) == "rain"
    assert query_from_params({}) == ""
    assert share_url("http://h:8501", "dog barking") == "http://h:8501/?q=dog+barking"
    assert share_url("http://h:8501/", " ") == "http://h:8501/"


def test_typed_labels():
    assert parse_label_text("dog bark, rain\nthunder,, rain ") == ["dog bark", "rain", "thunder"]
    assert parse_label_text("  ") is None


# --- `soundsift ui` -------------------------------------------------------------------

def test_streamlit_is_started_headless_on_localhost_without_telemetry():
    cmd = streamlit_command(8600, "127.0.0.1")
    opts = dict(zip(cmd[5::2], cmd[6::2]))
    assert cmd[1:4] == ["-m", "ui.components.server", "run"] and cmd[4].endswith(os.path.join("ui", "app.py"))
    assert opts["--server.address"] == "127.0.0.1" and opts["--server.port"] == "8600"
    assert opts["--server.headless"] == "true"
    assert opts["--browser.gatherUsageStats"] == "false"
    assert opts["--server.maxUploadSize"] == "50"
    env = page_env("/x/idx", None, base={"PATH": "/bin", MODEL_ENV: "stale"})
    assert env[INDEX_ENV] == "/x/idx" and MODEL_ENV not in env and env["PATH"] == "/bin"


def test_ui_command_execs_streamlit_with_the_index(tmp_path, monkeypatch):
    from engine.catalog import open_catalog
    from ui.cli import app
    from ui.components import server

    idx = tmp_path / "idx"
    idx.mkdir()
    open_catalog(idx / "catalog.db", create=True).dispose()
    seen = {}
    monkeypatch.setattr(server.os, "execve", lambda exe, argv, env: seen.update(argv=argv, env=env))
    r = CliRunner().invoke(app, ["ui", "--index", str(idx), "--port", "8777", "--host", "0.0.0.0"])
    assert r.exit_code == 0, r.output
    assert seen["env"][INDEX_ENV] == str(idx.resolve())
    argv = seen["argv"]
    assert argv[argv.index("--server.port") + 1] == "8777"
    assert argv[argv.index("--server.address") + 1] == "0.0.0.0"


def test_ui_command_on_a_missing_index_exits_with_advice(tmp_path):
    from ui.cli import app
    r = CliRunner().invoke(app, ["ui", "--index", str(tmp_path / "nothing")])
    assert r.exit_code == 1
    assert "soundsift index" in r.output


def test_ui_command_has_help():
    from ui.cli import app
    r = CliRunner().invoke(app, ["ui", "--help"])
    assert r.exit_code == 0
    assert "--index" in r.output and "--port" in r.output and "--host" in r.output


def test_a_match_spanning_the_whole_file_is_not_highlighted(tmp_path):
    from PIL import Image
    x = np.concatenate([np.zeros(8000, np.float32), tone(300, 1.0, 8000)])
    p = write(tmp_path / "w.wav", x, 8000)
    whole = np.asarray(Image.open(io.BytesIO(waveform_png(p, 2.0, 0.0, 2.0, width=50, height=20))))
    part = np.asarray(Image.open(io.BytesIO(waveform_png(p, 2.0, 0.0, 1.0, width=50, height=20))))
    band_cols = lambda img: (img == BAND_HIT).all(axis=-1).any(axis=0)  # noqa: E731
    assert not band_cols(whole).any()
    assert band_cols(part)[:24].all() and not band_cols(part)[26:].any()


def test_a_card_shows_long_files_and_moments_in_clock_time_and_many_channels():
    from types import SimpleNamespace

    from ui.components.search_tab import card_facts, seconds_text
    short = SimpleNamespace(duration=3.25, format="WAV", sample_rate=44100, channels=2, levels="")
    hit = SimpleNamespace(start=0.5, end=2.5, score=0.4567)
    assert card_facts(short, hit) == "3.2 s · WAV · 44.1 kHz  \nmatch 0.5–2.5 s · score 0.457"
    hour = SimpleNamespace(duration=3600.0, format="RF64", sample_rate=96000, channels=6, levels="−23.1 LUFS")
    moment = SimpleNamespace(start=2470.0, end=2472.0, score=0.3)
    assert card_facts(hour, moment) == ("1:00:00.00 · RF64 · 96 kHz · 6 ch · −23.1 LUFS  \n"
                                        "match 41:10.00–41:12.00 · score 0.300")
    assert [seconds_text(s) for s in (59.94, 75.5)] == ["59.9 s", "1:15.50"]
