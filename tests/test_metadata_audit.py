"""What a demanding sound designer's odd files and sheets do to the metadata readers and writers
(session 31's audit): chunk text in other encodings, markers past the audio, cue sheets written
by hand, CSV cells with line breaks, and sheets exported for Excel that must not become formulas."""
from __future__ import annotations

import io
import shutil
import struct

import soundfile as sf

from engine.cue_sheet import cue_tracks
from engine.file_metadata import Marker, named_markers, read_metadata
from engine.metadata_sheet import Sheet, match_rows, read_sheet
from engine.query import SoundIndex
from engine.sheet_export import EXPORT_COLUMNS, sheet_bytes
from indexer import build_index
from indexer.metadata_sheet import import_sheet
from tests.conftest import noise, tone, write
from tests.index_fakes import FakeModel
from tests.test_bad_inputs import pcm16, wav_bytes
from tests.test_file_metadata import adtl_chunk, aiff_with_markers, cue_chunk, info_chunk

#: cells a spreadsheet would run as formulas, as a file's or a library sheet's descriptions say them
FORMULAS = {"description": "=HYPERLINK(\"http://x\",\"click\")", "keywords": "-6 dB, hit", "comment": "@home take",
            "category": "+FX"}


def _row(**cells: str) -> dict[str, str]:
    row = dict.fromkeys(EXPORT_COLUMNS, "")
    row.update(Filename="a.wav", Pathname="/lib/a.wav", Duration="1.000", SampleRate="48000", Channels="1",
               Format="WAV", PeakdBFS="-3.0", LoudnessLUFS="-20.5", **cells)
    return row


def test_an_xlsx_export_keeps_formula_like_text_as_text_and_survives_control_characters():
    """openpyxl takes a string starting with "=" for a formula (Excel would run it; read back,
    the description is gone) and refuses a whole workbook for one control character a file's
    chunk carried; the export writes text cells, those characters as spaces."""
    from openpyxl import load_workbook
    data = sheet_bytes([_row(Description=FORMULAS["description"], Comment="bell\x07ring\x1b",
                             Keywords=FORMULAS["keywords"])], ".xlsx")
    sheet = load_workbook(io.BytesIO(data)).active
    header = [c.value for c in sheet[1]]
    cells = {name: cell for name, cell in zip(header, sheet[2])}
    assert cells["Description"].data_type == "s" and cells["Description"].value == FORMULAS["description"]
    assert cells["Keywords"].value == "-6 dB, hit" and cells["Comment"].value == "bell ring "
    assert cells["PeakdBFS"].value == -3.0 and cells["SampleRate"].value == 48000        # numbers stay numbers


def test_a_csv_export_marks_formula_like_text_and_import_takes_the_mark_off(tmp_path):
    """CSV has no cell types: a text starting with = + - @ gets the apostrophe Excel reads as
    "this is text" (not the numbers), and `sheet import` reads it back as it was."""
    row = _row(Description=FORMULAS["description"], Keywords=FORMULAS["keywords"], Comment=FORMULAS["comment"],
               Category=FORMULAS["category"])
    for suffix in (".csv", ".tsv"):
        text = sheet_bytes([row], suffix).decode("utf-8-sig")
        assert "'=HYPERLINK" in text and "'-6 dB" in text and "'@home" in text and "'+FX" in text
        assert "-3.0" in text and "'-3.0" not in text and "'-20.5" not in text
        path = tmp_path / f"exported{suffix}"
        path.write_text(text, encoding="utf-8-sig")
        (value, fields), = read_sheet(path).rows
        assert value == "/lib/a.wav"
        assert {k: fields[k] for k in FORMULAS} == FORMULAS


def test_a_quoted_line_break_in_a_csv_cell_keeps_the_words_apart(tmp_path):
    """Excel writes a cell's several lines inside quotes; the words either side of the break
    were glued together ("creaklong"). A Unicode line separator or NEL inside a cell split the
    row in two."""
    path = tmp_path / "sheet.csv"
    path.write_bytes(b'Filename,Description,Keywords\r\na.wav,"Door creak\r\nlong and slow","door\nwood"\r\n'
                     b'b.wav,Wind,wind\r\n')
    assert read_sheet(path).rows == [("a.wav", {"description": "Door creak long and slow", "keywords": "door wood"}),
                                     ("b.wav", {"description": "Wind", "keywords": "wind"})]
    path.write_text("Filename,Description\na.wav,Door\u2028creak\nb.wav,Wind\x85gust\n", encoding="utf-8")
    assert read_sheet(path).rows == [("a.wav", {"description": "Door creak"}),        # not rows of their own
                                     ("b.wav", {"description": "Wind gust"})]


def test_wav_chunk_text_in_windows_1252_or_utf16_and_control_characters(tmp_path):
    """Windows tools write INFO and bext text in Windows-1252 (curly quotes, dashes: C1 control
    characters when read as Latin-1), a few in UTF-16 with a byte-order mark (only its first
    character and the mark survived, "ÿþT"); control characters never reach the catalog."""
    path = tmp_path / "rock.wav"
    path.write_bytes(wav_bytes(pcm16(tone(440, 0.5, 16000)), extra_chunks=info_chunk(
        INAM="Rock’n’roll – door “slam”".encode("cp1252"), IART="Tür".encode("utf-16"),
        ICMT=b"bell\x07ring\x1b", IGNR="Café".encode("latin-1"))))
    found = read_metadata(path)
    assert (found["title"], found["artist"], found["comment"], found["genre"]) == (
        "Rock’n’roll – door “slam”", "Tür", "bell ring", "Café")


def test_aiff_text_chunks_and_marker_names_in_mac_roman(tmp_path):
    """A classic Mac tool's AIFF: NAME and ANNO chunks and marker names in Mac OS Roman, which
    libsndfile reads as UTF-8 (U+FFFD where the accents were)."""
    path = tmp_path / "tuer.aiff"
    sf.write(path, noise(1.0, 16000), 16000, format="AIFF", subtype="PCM_16")
    raw = path.read_bytes()
    mark = struct.pack(">HHIB", 1, 1, 8000, 3) + "Tür".encode("mac_roman")      # one marker, an odd-length name
    chunks = b""
    for cid, body in ((b"NAME", "Tür – knarrt".encode("mac_roman")), (b"ANNO", "Große Tür".encode("mac_roman")),
                      (b"MARK", mark)):
        chunks += cid + struct.pack(">I", len(body)) + body + b"\0" * (len(body) & 1)
    path.write_bytes(raw[:4] + struct.pack(">I", len(raw) - 8 + len(chunks)) + raw[8:12] + chunks + raw[12:])
    assert sf.info(str(path)).frames == 16000
    found = read_metadata(path)
    assert (found["title"], found["comment"], found["markers"]) == ("Tür – knarrt", "Große Tür", "0:00.50 Tür")


def test_markers_past_the_end_of_the_audio_are_left_out(tmp_path):
    """A file trimmed in an editor that kept its cue points, an AIFF's MARK past its frames, a cue
    sheet made for a longer take: those markers mark nothing (no take, no search hit) and are
    not listed; two markers at one place both are."""
    wav = tmp_path / "trimmed.wav"
    wav.write_bytes(wav_bytes(pcm16(noise(1.0, 16000)), extra_chunks=cue_chunk((1, 8000), (2, 8000), (3, 32000))
                              + adtl_chunk((b"labl", 1, "Creak"), (b"labl", 2, "Latch"), (b"labl", 3, "Slam"))))
    assert read_metadata(wav)["markers"] == "0:00.50 Creak · 0:00.50 Latch"
    assert [m.name for m in named_markers(wav)] == ["Creak", "Latch"]
    aiff = tmp_path / "trimmed.aiff"
    aiff_with_markers(aiff, 1.0, 16000, [(1, 4000, "Creak"), (2, 16000, "Slam")])
    assert named_markers(aiff) == [Marker(0.25, "Creak")] and read_metadata(aiff)["markers"] == "0:00.25 Creak"
    flac = tmp_path / "take.flac"
    write(flac, tone(300, 2.0, 16000), 16000)
    (tmp_path / "take.cue").write_text('FILE "take.wav" WAVE\n TRACK 01 AUDIO\n  TITLE "Hum"\n  INDEX 01 00:00:00\n'
                                       ' TRACK 02 AUDIO\n  TITLE "Gone"\n  INDEX 01 00:05:00\n')
    assert read_metadata(flac)["markers"] == "0:00.00 Hum"


def test_a_hand_written_cue_sheet_keeps_apostrophes_and_windows_paths():
    """Unquoted values: an apostrophe is not a shell quote ("Dog's bark and cat's meow" lost its
    apostrophes) and a backslash not an escape (``FILE C:\\Rips\\disc12.wav`` became
    "C:Ripsdisc12.wav", so a two-file sheet gave disc12.wav no tracks)."""
    sheet = ("FILE C:\\Rips\\disc12.wav WAVE\n  TRACK 01 AUDIO\n    TITLE Dog's bark and cat's meow\n"
             "    INDEX 01 00:00:00\n  TRACK 02 AUDIO\n    TITLE \"Rock 'n' roll\"\n    INDEX 01 00:02:00\n"
             "FILE C:\\Rips\\disc13.wav WAVE\n  TRACK 03 AUDIO\n    TITLE Other\n    INDEX 01 00:00:00\n")
    assert [(t.at, t.name) for t in cue_tracks(sheet, "disc12.wav")] == [
        (0.0, "Dog's bark and cat's meow"), (2.0, "Rock 'n' roll")]
    assert [t.name for t in cue_tracks(sheet, "disc13.flac")] == ["Other"]


def test_a_relative_path_with_a_dot_names_what_it_would_without():
    """``./gust.wav`` (a sheet written beside its files) matches the FLAC a converted library
    holds, as ``gust.wav`` does."""
    files = {1: "/lib/SFX/Wind/gust.flac", 2: "/lib/SFX/Doors/creak.wav"}
    rows = [("./gust.wav", {"description": "Gust"}), (".\\Doors\\creak.wav", {"description": "Creak"})]
    described, report = match_rows(Sheet("s.csv", rows, "Filename", {}, []), files)
    assert described == {1: {"description": "Gust"}, 2: {"description": "Creak"}} and not report.unmatched


def test_an_exported_sheet_imports_into_another_index_as_it_was(tmp_path):
    """The round trip `sheet export` → `sheet import` on a copy of the library: descriptions that
    look like formulas, accents and Windows-1252 text come back as they were, as CSV and .xlsx."""
    from ui.cli import app
    from typer.testing import CliRunner
    lib = (tmp_path / "Lib").resolve()
    write(lib / "door.wav", noise(1.0, 16000, seed=1), 16000)
    write(lib / "wind.wav", tone(300, 1.0, 16000), 16000)
    build_index([lib], tmp_path / "idx", FakeModel(), workers=0, progress=False)
    vendor = tmp_path / "vendor.csv"
    vendor.write_bytes("Filename;Description;Keywords;Category\r\n"
                       "door.wav;=SUM(A1:A9) door;-6 dB, slam;@DOORS\r\n"
                       "wind.wav;Wind “howling” – café;wind, gust;+WEATHER\r\n".encode("cp1252"))
    assert import_sheet(tmp_path / "idx", vendor).files == 2
    copy = (tmp_path / "Elsewhere" / "Lib").resolve()
    shutil.copytree(lib, copy)
    wanted = {"door.wav": {"description": "=SUM(A1:A9) door", "keywords": "-6 dB, slam", "category": "@DOORS"},
              "wind.wav": {"description": "Wind “howling” – café", "keywords": "wind, gust", "category": "+WEATHER"}}
    for suffix in (".csv", ".xlsx", ".tsv"):
        out = tmp_path / f"library{suffix}"
        done = CliRunner().invoke(app, ["sheet", "export", str(out), "--index", str(tmp_path / "idx")])
        assert done.exit_code == 0, done.output
        other = tmp_path / f"other{suffix}"
        build_index([copy], other, FakeModel(), workers=0, progress=False)
        assert import_sheet(other, out).files == 2
        with SoundIndex.open(other, model=FakeModel()) as index:
            got = {name: index.get_file(index.file_id_for_path(copy / name))["metadata"] for name in wanted}
        assert {name: {k: got[name].get(k) for k in fields} for name, fields in wanted.items()} == wanted, suffix


def _flac_with_comments(path, entries: list[str]) -> bytes:
    """A FLAC file's bytes whose VORBIS_COMMENT block holds ``entries`` (``KEY=value``)."""
    sf.write(path, tone(440, 2.0, 16000), 16000, format="FLAC")
    raw, at, blocks = path.read_bytes(), 4, []
    while True:
        last, kind, size = raw[at] & 0x80, raw[at] & 0x7F, int.from_bytes(raw[at + 1:at + 4], "big")
        if kind != 4:
            blocks.append((kind, raw[at + 4:at + 4 + size]))
        at += 4 + size
        if last:
            break
    vendor = b"soundsift tests"
    body = struct.pack("<I", len(vendor)) + vendor + struct.pack("<I", len(entries))
    for entry in entries:
        body += struct.pack("<I", len(entry.encode())) + entry.encode()
    blocks.append((4, body))
    out = b"fLaC"
    for i, (kind, block) in enumerate(blocks):
        out += bytes([kind | (0x80 if i == len(blocks) - 1 else 0)]) + len(block).to_bytes(3, "big") + block
    return out + raw[at:]


def test_a_flac_behind_an_id3_tag_keeps_its_ucs_comments_and_cue_sheet(tmp_path):
    """Some taggers put an ID3v2 tag before a FLAC stream; libsndfile (libFLAC) steps over it and
    reads the audio, but the Vorbis comments (CATEGORY, CatID …) and the CUESHEET were taken for
    an MP3's and lost."""
    path = tmp_path / "doors.flac"
    flac = _flac_with_comments(path, ["TITLE=Doors", "CATEGORY=DOORS", "CatID=DOORWood",
                                      'CUESHEET=FILE "doors.wav" WAVE\n TRACK 01 AUDIO\n  TITLE "Creak"\n'
                                      "  INDEX 01 00:00:00\n TRACK 02 AUDIO\n  TITLE \"Slam\"\n  INDEX 01 00:01:00\n"])
    frame = b"TIT2" + bytes([0, 0, 0, 7]) + b"\0\0" + b"\x00Doors\x00"
    padding = b"\0" * 64
    size = len(frame) + len(padding)
    tag = b"ID3\x04\x00\x00" + bytes([(size >> 21) & 127, (size >> 14) & 127, (size >> 7) & 127, size & 127])
    path.write_bytes(tag + frame + padding + flac)
    assert sf.info(str(path)).frames == 32000
    found = read_metadata(path)
    assert (found["category"], found["catid"], found["markers"]) == ("DOORS", "DOORWood", "0:00.00 Creak · 0:01.00 Slam")
    assert [m.name for m in named_markers(path)] == ["Creak", "Slam"]


def test_excels_separator_line_and_a_no_break_space_in_a_column_name(tmp_path):
    """A CSV written for Excel where ";" separates ("sep=;" on its first line, which Excel reads
    and hides) and a header typed with a no-break space ("File Name") were refused: "no
    column names the files"."""
    said = tmp_path / "said.csv"
    said.write_bytes(b'sep=;\r\nFilename;Description;Category\r\na.wav;Door, creak, slow;DOORS\r\n'
                     b'b.wav;Wind, gusts;WIND\r\n')
    assert read_sheet(said).rows == [("a.wav", {"description": "Door, creak, slow", "category": "DOORS"}),
                                     ("b.wav", {"description": "Wind, gusts", "category": "WIND"})]
    spaced = tmp_path / "spaced.csv"
    spaced.write_text("File\u00a0Name,Description\r\na.wav,Door\r\n", encoding="utf-8")
    sheet = read_sheet(spaced)
    assert (sheet.file_column, sheet.rows) == ("File\u00a0Name", [("a.wav", {"description": "Door"})])


def _riff(cid: bytes, body: bytes, pad: bool = True) -> bytes:
    return cid + struct.pack("<I", len(body)) + body + (b"\0" if pad and len(body) % 2 else b"")


def test_odd_sized_chunks_written_without_their_pad_byte(tmp_path):
    """A RIFF chunk of odd size is followed by a pad byte; some writers leave it out — after the
    odd-sized data of a 24-bit mono recording, or inside an INFO list — and every chunk after it
    was lost (libsndfile loses them too: it gives no title here)."""
    frames = 16_001                                            # 3 bytes a frame: an odd data size
    pcm = (noise(frames / 16000, 16000) * 2 ** 22).astype("<i4").view("u1").reshape(-1, 4)[:, :3].tobytes()
    info = b"INFO" + _riff(b"INAM", b"Door\x00", pad=False) + _riff(b"ICMT", b"Heavy oak\x00", pad=False) \
        + _riff(b"IART", b"Jane\x00")
    cue = struct.pack("<I", 1) + struct.pack("<II4sIII", 1, 0, b"data", 0, 0, 8000)
    adtl = b"adtl" + _riff(b"labl", struct.pack("<I", 1) + b"Slam\x00", pad=False) \
        + _riff(b"note", struct.pack("<I", 2) + b"x\x00")
    body = (b"WAVE" + _riff(b"fmt ", struct.pack("<HHIIHH", 1, 1, 16000, 48000, 3, 24))
            + _riff(b"data", pcm, pad=False) + _riff(b"LIST", info) + _riff(b"cue ", cue) + _riff(b"LIST", adtl))
    path = tmp_path / "odd.wav"
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    assert sf.info(str(path)).frames == frames
    found = read_metadata(path)
    assert (found["title"], found["comment"], found["artist"], found["markers"]) == (
        "Door", "Heavy oak", "Jane", "0:00.50 Slam")


def _id3v24(*frames: tuple[bytes, bytes], unsynchronised: bool = False) -> bytes:
    """An ID3v2.4 tag of (frame id, data) frames; ``unsynchronised``: the tag's flag only (each
    frame's data unsynchronised, its own flag not set, as some writers do)."""
    def syncsafe(n: int) -> bytes:
        return bytes([(n >> 21) & 127, (n >> 14) & 127, (n >> 7) & 127, n & 127])
    body = b""
    for fid, data in frames:
        if unsynchronised:
            data = data.replace(b"\xff", b"\xff\x00")
        body += fid + syncsafe(len(data)) + b"\0\0" + data
    return b"ID3\x04\x00" + bytes([0x80 if unsynchronised else 0]) + syncsafe(len(body)) + body


def test_an_id3_chunks_comment_is_not_itunes_numbers_and_an_unsynchronised_tag_reads(tmp_path):
    """iTunes writes COMM frames of its own ("iTunNORM": loudness numbers) before or beside the
    user's comment; the first COMM was taken, so a WAV or AIFF tagged by it was described by
    hex. A v2.4 tag unsynchronised as a whole (the tag's flag) had its frames read raw."""
    norm = b"\x00eng" + b"iTunNORM\x00 00000A2B 00000B3C 0000C12D 0000D98E"
    user = b"\x00eng" + b"\x00Oak door, slammed twice"
    utf16 = "Türen".encode("utf-16-le")                         # ü is 0xFC 0x00; ÿ would be 0xFF 0x00
    tag = _id3v24((b"COMM", norm), (b"COMM", user), (b"TXXX", b"\x01\xff\xfe" + "CATEGORY".encode("utf-16-le")
                                                               + b"\0\0\xff\xfe" + utf16 + "ÿ".encode("utf-16-le")),
                  unsynchronised=True)
    path = tmp_path / "tagged.wav"
    path.write_bytes(wav_bytes(pcm16(tone(440, 0.5, 16000)), extra_chunks=_riff(b"id3 ", tag)))
    found = read_metadata(path)
    assert (found["comment"], found["category"]) == ("Oak door, slammed twice", "Türenÿ")


def test_an_ixml_chunk_with_space_before_and_padding_after_its_document(tmp_path):
    """A line break before the XML declaration, or a writer's padding after ``</BWFXML>`` that
    is not NUL or space, made the whole chunk "not well-formed XML": its UCS fields were lost."""
    document = (b'<?xml version="1.0" encoding="UTF-8"?><BWFXML><USER><CATEGORY>DOORS</CATEGORY>'
                b"<CATID>DOORWood</CATID></USER></BWFXML>")
    path = tmp_path / "ixml.wav"
    path.write_bytes(wav_bytes(pcm16(tone(440, 0.5, 16000)),
                               extra_chunks=_riff(b"iXML", b"\r\n  " + document + b"\r\n\x1a\x1a junk")))
    problems: list[str] = []
    found = read_metadata(path, problems)
    assert (found["category"], found["catid"], problems) == ("DOORS", "DOORWood", [])


def test_accented_names_match_however_the_disk_composed_them():
    """A library copied from a Mac's HFS+ disk keeps "Tür" as "Tu" + a combining diaeresis; the
    vendor's sheet and cue sheet, typed on Windows, spell it with one "ü": no row matched."""
    files = {1: "/lib/Tu\u0308ren/Tu\u0308r knarrt.wav", 2: "/lib/Tore/Tor.wav"}
    rows = [("Tür knarrt.wav", {"description": "by name"}), ("C:\\SFX\\Türen\\Tür knarrt.flac", {"description": "by path"})]
    described, report = match_rows(Sheet("s.csv", rows, "Filename", {}, []), files)
    assert described == {1: {"description": "by path"}} and not report.unmatched
    sheet = ('FILE "Tür.wav" WAVE\n TRACK 01 AUDIO\n  TITLE Creak\n  INDEX 01 00:00:00\n'
             'FILE "Tor.wav" WAVE\n TRACK 02 AUDIO\n  TITLE Gate\n  INDEX 01 00:00:00\n')
    assert [t.name for t in cue_tracks(sheet, "Tu\u0308r.flac")] == ["Creak"]


def test_a_field_recorders_bext_settings_are_not_its_description(tmp_path):
    """Sound Devices and Zoom recorders write their settings one a line as the bext description
    ("sSPEED=023.976-ND", "sTAKE=001", "sTRK1=MixL" …): that was the file's description, shown
    as what it is and made into training captions; only the recordist's note says anything."""
    from tests.test_file_metadata import bext_chunk
    settings = b"sSPEED=023.976-ND\r\nsTAKE=001\r\nsUBITS=$00000000\r\nsSWVER=2.67\r\nsTRK1=MixL\r\nsNOTE=door slam, far\r\n"
    path = tmp_path / "T001.wav"
    path.write_bytes(wav_bytes(pcm16(tone(440, 0.5, 16000)), extra_chunks=bext_chunk(settings, b"Sound Devices")))
    found = read_metadata(path)
    assert "description" not in found and (found["note"], found["originator"]) == ("door slam, far", "Sound Devices")
    plain = tmp_path / "plain.wav"
    plain.write_bytes(wav_bytes(pcm16(tone(440, 0.5, 16000)), extra_chunks=bext_chunk(b"Mic=MKH 416\r\nDoor slam")))
    assert read_metadata(plain)["description"] == "Mic=MKH 416 Door slam"


def test_excels_escaped_carriage_return_in_a_workbook_cell(tmp_path):
    """Excel writes a cell's carriage return as "_x000D_" (and a literal "_x" as "_x005F_x");
    openpyxl hands those back as they are, so a two-line description read "Door_x000D_ creak"."""
    import zipfile
    from openpyxl import Workbook
    book = Workbook()
    book.active.append(["Filename", "Description", "Notes"])
    book.active.append(["a.wav", "Door-CRLF-creak", "file_x005F_x0041_name"])
    plain = tmp_path / "plain.xlsx"
    book.save(plain)
    path = tmp_path / "excel.xlsx"
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(path, "w") as out:
        for name in src.namelist():
            out.writestr(name, src.read(name).replace(b"-CRLF-", b"_x000D_\n"))
    assert read_sheet(path).rows == [("a.wav", {"description": "Door creak", "note": "file_x0041_name"})]
