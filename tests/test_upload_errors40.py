"""An upload libsndfile cannot open gets a reason true of the upload, as the same file on disk does.

Until session 40, the first 600 bytes of an MP3 (a truncated upload) POSTed to `soundsift serve`
or uploaded on the page were "not readable as audio (File does not exist or is not a regular
file (possibly a pipe?).)": libsndfile's words (SFE_BAD_FILE) for an MP3 stream its MP3 reader
cannot start, false of bytes in memory; the same file given to `soundsift similar FILE` was
"format not recognised: no audio stream found", although it begins as an MP3 does. Both now say
it is cut short or damaged, and how many bytes it holds. A cut Ogg upload gets FFmpeg's reason
beside libsndfile's, as the file does, and no soundfile "Error opening '<name>': " prefix.
"""
from __future__ import annotations

import json
import pickle
import urllib.error
import urllib.request

import numpy as np
import pytest
import soundfile as sf

from engine.audio import decode, read_sound_bytes
from engine.errors import UnreadableAudio
from tests.conftest import tone, write
from tests.index_fakes import FakeModel
from ui.components.uploads import read_example

SR = 16_000
FALSE_WORDS = ("does not exist", "regular file", "pipe")


@pytest.fixture(scope="module")
def mp3_bytes(tmp_path_factory) -> bytes:
    """A second of a tone as an MP3 (libsndfile's LAME)."""
    path = write(tmp_path_factory.mktemp("mp3") / "tone.mp3", tone(440, 1.0, 44100), 44100)
    return path.read_bytes()


@pytest.fixture(scope="module")
def ogg_bytes(tmp_path_factory) -> bytes:
    path = write(tmp_path_factory.mktemp("ogg") / "tone.ogg", tone(440, 1.0, SR), SR)
    return path.read_bytes()


def _upload_reason(name: str, data: bytes) -> str:
    """What read_example says of the upload, between "not readable as audio (" and "); upload one of"."""
    with pytest.raises(UnreadableAudio) as caught:
        read_example(name, data)
    said = str(caught.value)
    assert "\n" not in said and said.count(name) == 1, said
    head, _, tail = said.partition("not readable as audio (")
    assert head == f"{name}: " and "); upload one of: wav" in tail, said
    return tail.partition("); upload one of: ")[0]


def _disk_reason(path) -> str:
    """What decoding the file says (soundsift similar FILE, tag FILE), inside "not readable as audio (…)"."""
    with pytest.raises(UnreadableAudio) as caught:
        decode(path, SR)
    reason = caught.value.reason
    assert reason.startswith("not readable as audio (") and reason.endswith(")"), reason
    return reason[len("not readable as audio ("):-1]


@pytest.mark.parametrize("keep", [4, 100, 600])
def test_an_mp3_cut_short_is_said_to_be_one_upload_and_file_alike(tmp_path, mp3_bytes, keep):
    cut = mp3_bytes[:keep]
    uploaded = _upload_reason("clip.mp3", cut)
    assert not any(w in uploaded for w in FALSE_WORDS), uploaded
    assert uploaded == (f"cut short or damaged: its {keep} bytes begin as an MP3 does (an MPEG audio frame), "
                        "but no audio decodes from them")
    path = tmp_path / "clip.mp3"
    path.write_bytes(cut)
    assert _disk_reason(path) == uploaded


def test_an_mp3_cut_inside_or_after_its_id3_tag(tmp_path, mp3_bytes):
    tag = b"ID3\x03\x00\x00" + bytes([0, 0, 1, 0]) + bytes(128)        # a 138-byte ID3v2 tag
    for data, where in ((tag[:60], "inside"), (tag, "after")):
        uploaded = _upload_reason("tagged.mp3", data)
        assert uploaded == (f"cut short: its {len(data)} bytes end {where} the ID3 tag an MP3 begins with "
                            "(138 bytes), before any audio")
        (tmp_path / "tagged.mp3").write_bytes(data)
        assert _disk_reason(tmp_path / "tagged.mp3") == uploaded
    data = tag + mp3_bytes[:300]
    uploaded = _upload_reason("tagged.mp3", data)
    assert uploaded.startswith(f"cut short or damaged: its {len(data)} bytes begin as an MP3 does "
                               "(an MPEG audio frame after an ID3 tag)")
    assert read_example("whole.mp3", tag + mp3_bytes).duration > 0.9          # a whole one still reads


def test_mpeg_audio_under_another_name_or_damaged_after_its_first_header(tmp_path, mp3_bytes):
    """An MP3's bytes named .wav, and one frame header followed by noise: MPEG audio either way."""
    noisy = mp3_bytes[:4] + np.random.default_rng(1).bytes(5000)
    for name, data in (("clip.wav", mp3_bytes[:600]), ("noisy.mp3", noisy)):
        uploaded = _upload_reason(name, data)
        assert uploaded.startswith(f"cut short or damaged: its {len(data)} bytes begin as an MP3 does"), uploaded
        (tmp_path / name).write_bytes(data)
        assert _disk_reason(tmp_path / name) == uploaded


def test_bytes_that_are_no_mp3_keep_libsndfiles_reason_without_its_prefix():
    rng = np.random.default_rng(0)
    for name, data in (("notes.txt", b"a text file, not a sound\n" * 40), ("noise.mp3", rng.bytes(5000)),
                       ("zeros.wav", bytes(5000))):
        uploaded = _upload_reason(name, data)
        assert uploaded == "Format not recognised.", (name, uploaded)


def test_a_cut_ogg_upload_says_what_the_file_says_with_no_prefix(tmp_path, ogg_bytes):
    """FFmpeg's reason beside libsndfile's for bytes that begin as Ogg, as for such a file; the
    upload's name once, not again in soundfile's "Error opening 'clip.ogg': "."""
    for keep in (20, 100):
        uploaded = _upload_reason("clip.ogg", ogg_bytes[:keep])
        assert "Error opening" not in uploaded and "(FFmpeg: " in uploaded, uploaded
        path = tmp_path / "clip.ogg"
        path.write_bytes(ogg_bytes[:keep])
        assert _disk_reason(path).endswith(f": {uploaded}")      # (the file's keeps "Error opening '<path>'")


def test_the_refusal_is_libsndfiles_error_still_and_survives_a_pickle(mp3_bytes):
    """read_sound_bytes' other callers (the trainer's tar members, corpus sources) catch it as before."""
    from engine.audio import DataRefused
    with pytest.raises(DataRefused) as caught:
        read_sound_bytes(mp3_bytes[:600], "member.mp3")
    assert isinstance(caught.value, sf.LibsndfileError) and caught.value.code == 7
    again = pickle.loads(pickle.dumps(caught.value))
    assert str(again) == str(caught.value) and "cut short or damaged: its 600 bytes" in str(again)


def test_posted_to_serve_it_is_a_400_saying_so(tmp_path, mp3_bytes):
    from engine.query import SoundIndex
    from indexer import build_index
    from tests.test_server import serving

    lib = tmp_path / "lib"
    write(lib / "beep.wav", tone(880, 2.0, SR), SR)
    build_index([lib], tmp_path / "idx", FakeModel(), workers=0, progress=False)
    with SoundIndex.open(tmp_path / "idx", model=FakeModel()) as index, serving(index) as url:
        request = urllib.request.Request(f"{url}/similar", data=mp3_bytes[:600], method="POST",
                                         headers={"X-Filename": "clip.mp3"})
        status, body, _ = _post(request)
    assert status == 400, body
    assert body["error"].startswith("clip.mp3: not readable as audio (cut short or damaged: its 600 bytes "
                                    "begin as an MP3 does"), body
    assert not any(w in body["error"] for w in FALSE_WORDS)


def _post(request: urllib.request.Request) -> tuple[int, dict, str]:
    """(status, JSON body, content type) of ``request``."""
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, json.loads(r.read()), r.headers["Content-Type"]
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), e.headers["Content-Type"]
