"""A seek in an Ogg file lands before its last page: libsndfile's seek to a frame inside that
page lands late, and a page of quiet or tonal audio can span more than the 2 s read before each
sought frame (engine.audio.go_to_frame). Found by helper-84 as a late HTTP range of an export
that differed from the whole excerpt."""
import numpy as np
import soundfile as sf

from engine.audio import go_to_frame, ogg_last_page_start, open_sound, read_frames
from engine.export import excerpt_stream

SR = 44100


def tone_with_a_gap(path) -> np.ndarray:
    """8 s: a 440 Hz tone with 3 s of silence in it, as Ogg Vorbis (its last page: 2.5 s)."""
    t = np.arange(8 * SR) / SR
    x = np.where((t > 2) & (t < 5), 0.0, 0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    sf.write(str(path), x, SR, format="OGG", subtype="VORBIS")
    return sf.read(str(path), dtype="float32")[0]


def test_every_frame_is_reached_as_a_read_from_the_start_gives_it(tmp_path):
    path = tmp_path / "gap.ogg"
    whole = tone_with_a_gap(path)
    with open_sound(path) as f:
        last_page = ogg_last_page_start(f)
    assert last_page is not None and len(whole) - last_page > 2 * SR      # the page is longer than the preroll
    off = []
    for target in range(0, len(whole) - 64, SR // 10):
        with open_sound(path) as f:
            go_to_frame(f, target)
            got = read_frames(f, 64, "float32").reshape(-1)
        if np.abs(got - whole[target:target + 64]).max() > 1e-6:
            off.append(target)
    assert off == []


def test_a_late_range_of_an_export_is_those_bytes_of_the_whole(tmp_path):
    path = tmp_path / "gap.ogg"
    tone_with_a_gap(path)
    with excerpt_stream(path, 1.0, 7.9, block_bytes=4096) as stream:
        n, whole = stream.length, b"".join(stream)
    with excerpt_stream(path, 1.0, 7.9, block_bytes=4096) as stream:
        part = b"".join(stream.part(n - 3000, n - 1))
    assert part == whole[n - 3000:]


def test_no_clamp_for_other_files(tmp_path):
    sf.write(str(tmp_path / "a.wav"), np.zeros(SR, np.float32), SR)
    with open_sound(tmp_path / "a.wav") as f:
        assert ogg_last_page_start(f) is None
