"""indexer.scan: the pure diff (pinned), and the walk over odd trees (links, loops, names)."""
from __future__ import annotations

import os

import pytest

from indexer.scan import (SKIPPED_FOLDERS, SKIPPED_METADATA, Diff, ScannedFile, diff, normalize_root, scan,
                          under_roots)


def F(path: str, size: int = 10, mtime: int = 100) -> ScannedFile:
    return ScannedFile(path, size, mtime)


CATALOG = {
    "/lib/a.wav": (10, 100),        # unchanged
    "/lib/b.wav": (10, 100),        # size changes
    "/lib/c.wav": (10, 100),        # mtime changes
    "/lib/d.wav": (10, 100),        # deleted from disk
    "/lib/sub/e.wav": (10, 100),    # deleted from disk, in a subfolder
    "/other/f.wav": (10, 100),      # indexed from another root: untouched
    "/library2/g.wav": (10, 100),   # shares the prefix "/lib" but is not under /lib
}
SCANNED = {
    "/lib/a.wav": F("/lib/a.wav"),
    "/lib/b.wav": F("/lib/b.wav", size=11),
    "/lib/c.wav": F("/lib/c.wav", mtime=101),
    "/lib/new.flac": F("/lib/new.flac"),
    "/lib/0new.ogg": F("/lib/0new.ogg"),
}


def test_diff_pinned():
    d = diff(CATALOG, SCANNED, ["/lib"])
    assert d == Diff(new=[F("/lib/0new.ogg"), F("/lib/new.flac")],
                     changed=[F("/lib/b.wav", size=11), F("/lib/c.wav", mtime=101)],
                     deleted=["/lib/d.wav", "/lib/sub/e.wav"],
                     unchanged=["/lib/a.wav"])


def test_diff_keeps_files_under_folders_that_could_not_be_listed():
    d = diff(CATALOG, SCANNED, ["/lib"], keep_under=["/lib/sub"])
    assert d.deleted == ["/lib/d.wav"]


def test_diff_empty_catalog_and_empty_scan():
    assert diff({}, {}, ["/lib"]) == Diff([], [], [], [])
    d = diff(CATALOG, {}, ["/"])
    assert sorted(d.deleted) == sorted(CATALOG) and not d.new


@pytest.mark.parametrize("path, roots, expected", [
    ("/lib/a.wav", ["/lib"], True),
    ("/lib", ["/lib"], True),
    ("/library/a.wav", ["/lib"], False),
    ("/lib/a.wav", ["/lib/"], True),
    ("/x/a.wav", ["/lib", "/x"], True),
    ("/x/a.wav", [], False),
])
def test_under_roots(path, roots, expected):
    assert under_roots(path, roots) is expected


def test_scan_finds_audio_by_extension_recursively(tmp_path):
    (tmp_path / "a.WAV").write_bytes(b"x")
    (tmp_path / "deep" / "er").mkdir(parents=True)
    (tmp_path / "deep" / "er" / "b.flac").write_bytes(b"xy")
    (tmp_path / "notes.txt").write_text("not audio")
    (tmp_path / "folder.wav").mkdir()             # a directory named like audio is walked
    (tmp_path / "folder.wav" / "c.ogg").write_bytes(b"xyz")
    r = scan([tmp_path])
    root = normalize_root(tmp_path)
    assert sorted(r.files) == [f"{root}/a.WAV", f"{root}/deep/er/b.flac", f"{root}/folder.wav/c.ogg"]
    st = os.stat(tmp_path / "deep" / "er" / "b.flac")
    assert r.files[f"{root}/deep/er/b.flac"] == ScannedFile(f"{root}/deep/er/b.flac", 2, st.st_mtime_ns)
    assert r.errors == []


APPLEDOUBLE = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + bytes(4050)   # as macOS writes it


def test_scan_passes_over_what_operating_systems_leave_beside_a_library(tmp_path):
    """macOS's ._ companions, unpacked zips' __MACOSX, hidden and recycle folders: counted, not
    scanned, not errors. A "._" name that is not AppleDouble is a file like any other, except a
    Sound Designer II file's bare resource fork beside it; a hidden folder given as the root is walked."""
    (tmp_path / "doors").mkdir()
    (tmp_path / "doors" / "slam.wav").write_bytes(b"RIFF")
    (tmp_path / "doors" / "._slam.wav").write_bytes(APPLEDOUBLE)
    (tmp_path / "doors" / "._odd.wav").write_bytes(b"RIFF-not-appledouble")
    for name in ("hinge.sd2", "take.SD2", "._hinge.sd2", "._lost.sd2"):   # Sound Designer II, a fork
        (tmp_path / "doors" / name).write_bytes(b"....")
    (tmp_path / "doors" / "memo.m4a").write_bytes(b"....")      # read through FFmpeg: scanned
    for folder in ("__MACOSX/doors", ".Trashes/501", ".Spotlight-V100", "$RECYCLE.BIN"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "x.wav").write_bytes(b"RIFF")
    r = scan([tmp_path])
    root = normalize_root(tmp_path)
    assert sorted(r.files) == [f"{root}/doors/{n}" for n in
                               ("._lost.sd2", "._odd.wav", "hinge.sd2", "memo.m4a", "slam.wav", "take.SD2")]
    assert r.errors == []
    assert r.skipped == {SKIPPED_METADATA: 2, SKIPPED_FOLDERS: 4}
    assert sorted(scan([tmp_path / ".Trashes"]).files) == [f"{root}/.Trashes/501/x.wav"]


def test_scan_links_loops_and_broken_links_become_errors(tmp_path):
    lib = tmp_path / "lib"
    (lib / "sub").mkdir(parents=True)
    (lib / "sub" / "real.wav").write_bytes(b"data")
    os.symlink(lib / "sub" / "real.wav", lib / "alias.wav")          # same file twice
    os.symlink(tmp_path / "missing.wav", lib / "broken.wav")        # target does not exist
    os.symlink(lib / "self.wav", lib / "self.wav")                  # a link to itself
    os.symlink(lib, lib / "sub" / "loop")                           # folder loop
    r = scan([lib])
    root = normalize_root(lib)
    assert list(r.files) == [f"{root}/sub/real.wav"]                 # resolved, counted once
    reasons = {os.path.basename(e.path): e.reason for e in r.errors}
    assert "broken symbolic link" in reasons["broken.wav"]
    assert "loop" in reasons["self.wav"]
    assert "loop" in reasons["loop"]
    assert len(r.errors) == 3


def test_scan_missing_root_and_single_file_root(tmp_path):
    f = tmp_path / "one.aiff"
    f.write_bytes(b"1234")
    r = scan([tmp_path / "nope", f])
    assert list(r.files) == [normalize_root(f)]
    assert len(r.errors) == 1 and "not found" in r.errors[0].reason


def test_scan_non_utf8_name_is_an_error_not_a_crash(tmp_path):
    name = os.fsencode(str(tmp_path)) + b"/caf\xe9.wav"
    with open(name, "wb") as fh:
        fh.write(b"data")
    (tmp_path / "ok.wav").write_bytes(b"data")
    r = scan([tmp_path])
    assert list(r.files) == [normalize_root(tmp_path / "ok.wav")]
    assert len(r.errors) == 1 and "UTF-8" in r.errors[0].reason
    r.errors[0].path.encode("utf-8")        # storable: no lone surrogates


def test_scan_unlistable_folder_is_an_error(tmp_path, monkeypatch):
    (tmp_path / "open").mkdir()
    (tmp_path / "open" / "a.wav").write_bytes(b"x")
    (tmp_path / "closed").mkdir()
    (tmp_path / "closed" / "b.wav").write_bytes(b"x")
    real_scandir = os.scandir
    closed = str(tmp_path / "closed")

    def scandir(path):
        if str(path) == closed:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr("indexer.scan.os.scandir", scandir)
    r = scan([tmp_path])
    assert list(r.files) == [normalize_root(tmp_path / "open" / "a.wav")]
    assert [(e.path, e.folder) for e in r.errors] == [(closed, True)]
    assert "permission denied" in r.errors[0].reason


SCAN_SCRIPT = """
import json, sys
from indexer.scan import scan
r = scan([sys.argv[1]])
print(json.dumps({"files": sorted(r.files), "errors": [[e.path, e.reason, e.folder] for e in r.errors]}))
"""


def test_scan_unreadable_folder_for_real(tmp_path):
    """A real unlistable folder, in a process that obeys permissions even as root."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    from tests.index_fakes import drop_read_override
    root = Path(__file__).resolve().parents[1]
    (tmp_path / "closed").mkdir()
    (tmp_path / "closed" / "b.wav").write_bytes(b"x")
    (tmp_path / "a.wav").write_bytes(b"x")
    os.chmod(tmp_path / "closed", 0)
    try:
        r = subprocess.run([sys.executable, "-c", SCAN_SCRIPT, str(tmp_path)], cwd=root,
                           env=dict(os.environ, PYTHONPATH=str(root)), capture_output=True, text=True,
                           preexec_fn=drop_read_override, timeout=60)
    finally:
        os.chmod(tmp_path / "closed", 0o755)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    assert out["files"] == [normalize_root(tmp_path / "a.wav")]
    assert out["errors"] == [[normalize_root(tmp_path / "closed"), "cannot list folder: permission denied", True]]
