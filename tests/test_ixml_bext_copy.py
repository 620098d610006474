"""An excerpt's iXML BEXT block says what its bext chunk says: bext gained a CodingHistory line
saying soundsift cut it and its loudness fields marked "not used" (they measured the whole
recording), while iXML's copy kept the source's BWF_CODING_HISTORY and BWF_LOUDNESS_VALUE …,
so a tool reading iXML (most library tools do) saw the recording's history and loudness."""
from __future__ import annotations

import struct
import xml.etree.ElementTree as ET

import numpy as np

from engine.export import excerpt_wav
from engine.wav_chunks import excerpt_ixml
from tests.test_export import bext, chunks_of, fmt, riff

RATE = 48_000
HISTORY = b"A=PCM,F=48000,W=16,M=stereo,T=Field recorder\r\n"
#: as bext() writes them: -23.12 LUFS, 5.40 LU, -1.05 dBTP, -15.20 and -18.00 LUFS
LOUDNESS = {"BWF_LOUDNESS_VALUE": "-23.12", "BWF_LOUDNESS_RANGE": "5.40", "BWF_MAX_TRUE_PEAK_LEVEL": "-1.05",
            "BWF_MAX_MOMENTARY_LOUDNESS": "-15.20", "BWF_MAX_SHORT_TERM_LOUDNESS": "-18.00"}


def ixml(copy: str) -> bytes:
    """An iXML chunk whose BEXT block holds ``copy`` after its originator and time reference."""
    return ("<?xml version='1.0' encoding='UTF-8'?>\n<BWFXML><IXML_VERSION>2.10</IXML_VERSION><BEXT>\n"
            "  <BWF_ORIGINATOR>FieldRec 8</BWF_ORIGINATOR>\n  <BWF_TIME_REFERENCE_LOW>0</BWF_TIME_REFERENCE_LOW>\n"
            "  <BWF_TIME_REFERENCE_HIGH>0</BWF_TIME_REFERENCE_HIGH>\n" + copy + "</BEXT></BWFXML>").encode()


def recorders_copy() -> str:
    """The BEXT block a recorder writes beside its bext chunk: the same history and loudness."""
    return (f"  <BWF_CODING_HISTORY>{HISTORY.decode().replace(chr(13), '')}</BWF_CODING_HISTORY>\n"
            + "".join(f"  <{name}>{value}</{name}>\n" for name, value in LOUDNESS.items()))


def excerpt(tmp_path, chunks: list[tuple[bytes, bytes]], start: float = 0.25, end: float = 0.75) -> dict[bytes, bytes]:
    """The chunks of the excerpt ``start``–``end`` s of a 1 s stereo WAV with ``chunks`` before its audio."""
    x = np.random.default_rng(5).integers(-8000, 8000, (RATE, 2)).astype("<i2")
    src = tmp_path / "take.wav"
    src.write_bytes(riff([(b"fmt ", fmt(2, RATE, 16))] + chunks + [(b"data", x.tobytes())]))
    return chunks_of(excerpt_wav(src, start, end, fade=0)[0])


def bext_history(body: bytes) -> str:
    return body[602:].rstrip(b"\x00").decode("ascii")


def test_the_ixml_bext_copy_gets_the_coding_history_and_loudness_the_bext_chunk_gets(tmp_path):
    found = excerpt(tmp_path, [(b"bext", bext(0, history=HISTORY)), (b"iXML", ixml(recorders_copy()))])
    written = bext_history(found[b"bext"])
    assert written.endswith("T=soundsift excerpt 0.250-0.750 s\r\n")
    assert struct.unpack_from("<5H", found[b"bext"], 412) == (0x7FFF,) * 5
    copy = ET.fromstring(found[b"iXML"]).find("BEXT")
    assert copy.findtext("BWF_CODING_HISTORY") == written.replace("\r\n", "\n")     # as an XML reader reads it
    assert {name: copy.findtext(name) for name in LOUDNESS} == dict.fromkeys(LOUDNESS, "")   # no value: not used
    assert copy.findtext("BWF_ORIGINATOR") == "FieldRec 8"
    assert copy.findtext("BWF_TIME_REFERENCE_LOW") == str(RATE // 4)                 # moved as before


def test_only_the_elements_the_source_has_are_changed_none_added(tmp_path):
    plain = ixml("")
    assert excerpt_ixml(plain, 0, 1000, RATE, "A=PCM,F=48000,W=16,M=stereo,T=soundsift excerpt\r\n") == plain
    found = excerpt(tmp_path, [(b"bext", bext(0, history=HISTORY)), (b"iXML", plain)])
    assert b"CODING_HISTORY" not in found[b"iXML"] and b"LOUDNESS" not in found[b"iXML"]
    assert found[b"iXML"] == plain.replace(b"LOW>0<", b"LOW>%d<" % (RATE // 4))


def test_an_empty_or_entity_ended_history_gets_the_line_on_a_line_of_its_own(tmp_path):
    """``<BWF_CODING_HISTORY/>`` (a writer with no history) is given the line alone; a history
    ending in character references for its CR LF keeps its text, the line after it once; a
    source without a bext chunk has its iXML copy told all the same."""
    line = "A=PCM,F=48000,W=16,M=stereo,T=soundsift excerpt 0.250-0.750 s\r\n"
    empty = excerpt(tmp_path, [(b"iXML", ixml("  <BWF_CODING_HISTORY/>\n"))])
    assert b"bext" not in empty
    assert ET.fromstring(empty[b"iXML"]).findtext("BEXT/BWF_CODING_HISTORY") == line.replace("\r\n", "\n")
    escaped = excerpt_ixml(ixml("<BWF_CODING_HISTORY>A=ANALOGUE,M=stereo,T=Nagra&#13;&#10;</BWF_CODING_HISTORY>"),
                           0, 1000, RATE, line)
    assert ET.fromstring(escaped).findtext("BEXT/BWF_CODING_HISTORY") == (
        "A=ANALOGUE,M=stereo,T=Nagra\r\n" + line)                  # its CR LF written as its own: kept by XML
