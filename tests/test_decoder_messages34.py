"""Audit findings on decoding and format detection (helper 106): what a decoder prints while a
file is opened (a cut MP3's "Xing stream size off") is said under the file's name wherever audio
is opened inside a relaying command, not only while blocks are decoded; an AAC file named
``.mp3`` is catalogued as the container decoded; a file indexed by name whose name the folder
walk passes over (no audio extension) is kept by a later walk of its folder."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.conftest import noise, tone, write

pytestmark = pytest.mark.usefixtures("private_cache")     # label embeddings cached in this test's folder

XING = "Xing stream size off"


def cut_mp3(path: Path) -> Path:
    """An MP3 of 3 s of tone cut to half its bytes: libmpg123 prints a Xing warning on opening it."""
    write(path, tone(440, 3.0, 44100), 44100)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def warned(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "engine.audio" and r.levelno == logging.WARNING]


def test_probe_says_what_the_decoder_prints_under_the_file(tmp_path, capfd, caplog):
    """`probe` opened the file outside the capture the block decoder uses: the Xing warning
    reached the terminal as an anonymous line."""
    from engine.audio import probe, relaying_decoder_output

    path = cut_mp3(tmp_path / "truncated.mp3")
    capfd.readouterr()
    with relaying_decoder_output(), caplog.at_level(logging.INFO, logger="engine.audio"):
        probe(path)
        probe(path)                                   # said once a file and line in one relay
    assert capfd.readouterr().err == ""
    said = warned(caplog)
    assert len(said) == 1 and said[0].startswith(f"{path}: Warning: {XING}")
    probe(path)                                       # outside the relay: a warning at each call
    assert capfd.readouterr().err == "" and len(warned(caplog)) == 2   # (tests/test_cli_papercuts39.py)


def test_an_excerpt_of_a_cut_mp3_says_the_decoder_under_the_file(tmp_path, capfd, caplog):
    """Export (`similar --export`) opens and seeks the file itself: relayed there too."""
    from engine.audio import relaying_decoder_output
    from engine.export import excerpt_wav

    path = cut_mp3(tmp_path / "truncated.mp3")
    capfd.readouterr()
    with relaying_decoder_output(), caplog.at_level(logging.INFO, logger="engine.audio"):
        data, start, end = excerpt_wav(path, 0.2, 0.6)
    assert data and (start, end) == pytest.approx((0.2, 0.6), abs=1e-3)
    assert capfd.readouterr().err == ""
    assert [m for m in warned(caplog) if XING in m] and all(m.startswith(f"{path}: ") for m in warned(caplog))


@pytest.fixture()
def cut_index(tmp_path, tiny_clap_dir):  # noqa: F811
    """An index of a cut MP3, a copy of it and a noise WAV (the tiny random CLAP)."""
    from indexer import build_index

    lib = tmp_path / "lib"
    path = cut_mp3(lib / "truncated.mp3")
    (lib / "copy.mp3").write_bytes(path.read_bytes())
    write(lib / "noise.wav", noise(2.0, 16000), 16000)
    index_dir = tmp_path / "idx"
    build_index([lib], index=index_dir, model=str(tiny_clap_dir), workers=0, progress=False)
    return path, index_dir


@pytest.mark.parametrize("command", ["similar", "duplicates"])
def test_commands_leave_no_anonymous_decoder_line(cut_index, capfd, command):
    """`similar FILE --start --end` and `duplicates` read headers (the span's bounds, the copy to
    keep) besides decoding: every line the decoder printed is logged under the file's name."""
    from ui.cli import app

    path, index_dir = cut_index
    args = (["similar", str(path), "--start", "0.2", "--end", "0.6"] if command == "similar"
            else ["duplicates"]) + ["--index", str(index_dir), "--json"]
    capfd.readouterr()
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stderr
    assert capfd.readouterr().err == ""                       # nothing anonymous on fd 2
    logged = [line for line in result.stderr.splitlines() if XING in line]
    assert logged and all(line.startswith(f"WARNING engine.audio: {path.parent}") for line in logged)


def aac_files(folder: Path) -> tuple[Path, Path]:
    """1 s of AAC as raw ADTS and in an M4A, each named ``.mp3`` (as downloads often are)."""
    from tests.ffmpeg_files import encode

    signal = tone(440, 1.0, 44100)
    adts = encode(folder / "adts.mp3", "aac", signal, 44100, container="adts")
    m4a = encode(folder / "m4a.mp3", "aac", signal, 44100, container="ipod")
    return adts, m4a


def test_aac_named_mp3_is_the_container_decoded(tmp_path):
    """An M4A named .mp3 was catalogued as MP3 (the extension); a raw AAC stream named .mp3 was
    taken by libsndfile's MP3 reader for MPEG layer II and decoded as noise of another length."""
    from engine.audio import decode, probe

    adts, m4a = aac_files(tmp_path)
    assert (probe(m4a).format, probe(m4a).subtype) == ("M4A", "AAC")
    info = probe(adts)
    assert (info.format, info.subtype) == ("AAC", "AAC")
    assert info.duration == pytest.approx(1.0, abs=0.05)
    mono = decode(adts, 16000)
    spectrum = np.abs(np.fft.rfft(mono[2000:-2000]))
    assert np.fft.rfftfreq(len(mono) - 4000, 1 / 16000)[spectrum.argmax()] == pytest.approx(440, abs=3)
    whole = write(tmp_path / "tone.mp3", tone(440, 1.0, 44100), 44100)      # a real MP3 stays one
    assert (probe(whole).format, probe(whole).subtype) == ("MP3", "MPEG_LAYER_III")


def test_format_filter_finds_aac_named_mp3_by_its_container(tmp_path, tiny_clap_dir):  # noqa: F811
    """--format m4a / aac finds them (the container); --format mp3 still does (the extension)."""
    from engine.filters import Filters
    from engine.query import SoundIndex
    from indexer import build_index

    lib = tmp_path / "lib"
    adts, m4a = aac_files(lib)
    write(lib / "noise.wav", noise(1.0, 16000), 16000)
    build_index([lib], index=tmp_path / "idx", model=str(tiny_clap_dir), workers=0, progress=False)
    with SoundIndex.open(tmp_path / "idx") as index:
        found = {f: sorted(index.file_vectors(Filters(formats=(f,))).paths) for f in ("m4a", "aac", "mp3")}
    assert found == {"m4a": [str(m4a)], "aac": [str(adts)], "mp3": sorted([str(adts), str(m4a)])}


def test_a_file_given_by_name_stays_when_its_folder_is_walked(tmp_path, tiny_clap_dir):  # noqa: F811
    """`soundsift index "lib/Weird names/no_extension"` indexes a WAV without an extension; the next
    run over lib, whose walk takes audio extensions only, removed it ("removed 1")."""
    from indexer import build_index

    lib = tmp_path / "lib"
    odd = write(lib / "Weird names" / "no_extension.wav", tone(440, 1.0, 16000), 16000)
    odd = odd.rename(odd.with_suffix(""))
    write(lib / "tone.wav", tone(660, 1.0, 16000), 16000)

    def run(path: Path):
        return build_index([path], index=tmp_path / "idx", model=str(tiny_clap_dir), workers=0, progress=False)

    assert run(odd).added == 1
    walked = run(lib)
    assert (walked.added, walked.removed, walked.unchanged) == (1, 0, 1)
    write(odd, noise(1.5, 16000), 16000, format="WAV")            # edited in place: embedded again
    assert (run(lib).updated, run(lib).unchanged) == (1, 2)
    odd.unlink()                                                  # gone: dropped
    assert run(lib).removed == 1


def test_diff_looks_on_disk_only_at_files_the_walk_does_not_take(tmp_path):
    from indexer.scan import diff, scan

    (tmp_path / "raw").write_bytes(b"x" * 10)
    (tmp_path / ".old").mkdir()
    (tmp_path / ".old" / "raw").write_bytes(b"x" * 10)            # a hidden folder's files: dropped
    st = (tmp_path / "raw").stat()
    state = {str(tmp_path / "raw"): (10, st.st_mtime_ns), str(tmp_path / "gone"): (1, 1),
             str(tmp_path / "gone.wav"): (1, 1), "/elsewhere/raw": (1, 1),
             str(tmp_path / ".old" / "raw"): (10, (tmp_path / ".old" / "raw").stat().st_mtime_ns)}
    plan = diff(state, scan([tmp_path]).files, [str(tmp_path)])
    assert plan.unchanged == [str(tmp_path / "raw")]
    assert plan.deleted == [str(tmp_path / ".old" / "raw"), str(tmp_path / "gone"), str(tmp_path / "gone.wav")]
    assert diff(state, {}, [str(tmp_path / ".old")]).unchanged == [str(tmp_path / ".old" / "raw")]   # a root: walked
    assert plan.new == plan.changed == []
