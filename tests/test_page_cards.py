"""The search page's result cards read a few at once (ui/components/resources.cards_media) and their
stored tags in one catalog query (Library.stored_tags): the same page as one card after another,
an unreadable file's card says why and leaves the others alone (streamlit AppTest on a tiny-CLAP
index of its own: one of its files is broken after indexing)."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest
import soundfile as sf
from sqlalchemy import delete, select

from engine.catalog import USER_TAG_SOURCE, File, Tag
from tests.conftest import catalog_session, chirp, noise, tone, write
from tests.ui_library import page_on
from ui.components import resources
from ui.components.library import FileRecord, Library

SR = 22_050
BROKEN = "hum_broken.wav"


@pytest.fixture(scope="module")
def cards_index(tmp_path_factory, tiny_clap_dir) -> tuple[Path, Path]:  # noqa: F811
    """(library, index): five files indexed, then one of them overwritten with junk."""
    from indexer import build_index
    base = tmp_path_factory.mktemp("page_cards")
    root = base / "library"
    write(root / "a" / "beep.wav", tone(660, 2.0, SR), SR)
    write(root / "a" / BROKEN, tone(120, 3.0, SR), SR)
    write(root / "b" / "sweep.flac", chirp(200, 2000, 4.0, SR), SR)
    write(root / "b" / "hiss_long.wav", noise(14.0, SR, seed=3), SR)
    write(root / "b" / "buzz.ogg", tone(300, 2.5, SR), SR)
    summary = build_index([root], index=base / "index", model=str(tiny_clap_dir), workers=0, progress=False)
    assert summary.added == 5, summary
    (root / "a" / BROKEN).write_bytes(b"RIFF\x00\x00\x00\x00WAVE not audio any more")
    return root, base / "index"


def page(index: Path, monkeypatch, workers: int):
    app = page_on(index, monkeypatch)
    monkeypatch.setattr(resources, "CARD_WORKERS", workers, raising=False)
    app.query_params["q"] = "sound"
    return app


def drawn(app) -> list[tuple[str, str]]:
    """What the page shows, in order (the tree walked depth first): names, facts, warnings, images
    and players (media by their URLs: a hash of their bytes)."""
    out = []
    for node in app.main:
        kind = getattr(node, "type", "")
        if kind in ("markdown", "caption", "warning", "error", "info"):
            out.append((kind, str(node.value)))
        elif kind == "image":
            out += [(kind, url) for url in node.value]
        elif kind == "audio":
            out.append((kind, node.proto.url))
    return out


def test_the_page_is_the_same_one_card_at_a_time_or_a_few_at_once(cards_index, monkeypatch):
    _, index = cards_index
    serial = page(index, monkeypatch, 1).run()
    together = page(index, monkeypatch, 4).run()
    assert not serial.exception and not together.exception
    one, few = drawn(serial), drawn(together)
    assert [k for k, _ in one].count("image") == 4 and [k for k, _ in one].count("audio") == 4
    assert one == few


def test_an_unreadable_files_card_says_why_and_the_others_show(cards_index, monkeypatch):
    _, index = cards_index
    app = page(index, monkeypatch, 4).run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    warned = [w.value for w in app.warning]
    assert len(warned) == 1 and BROKEN in warned[0] and "cannot draw its waveform" in warned[0], warned
    names = [md.value for md in app.markdown if md.value.startswith("**") and ". " in md.value]
    assert len(names) == 5 and len(app.get("audio")) == 4 and len(app.get("image")) == 4
    items = drawn(app)       # the warning sits on the broken file's card: after its name, before the next
    at = next(i for i, (k, v) in enumerate(items) if k == "warning")
    before = [v for k, v in items[:at] if k == "markdown" and v.startswith("**")]
    assert BROKEN.replace("_", "\\_") in before[-1]


def test_two_cards_are_read_at_once(cards_index, monkeypatch):
    """The first two cards' waveforms are drawn at the same time: each waits for the other (one
    card after another, the first waits alone until the barrier gives up and the page fails)."""
    _, index = cards_index
    both = threading.Barrier(2, timeout=30)
    calls = []
    lock = threading.Lock()
    drawn_alone = resources.thumbnail

    def thumbnail(*args, **kwargs):
        with lock:
            calls.append(args[0])
            first_two = len(calls) <= 2
        if first_two:
            both.wait()
        return drawn_alone(*args, **kwargs)

    monkeypatch.setattr(resources, "thumbnail", thumbnail)
    app = page(index, monkeypatch, 4).run()
    assert not app.exception, [e.value for e in app.exception]
    assert len(calls) == 5 and len(app.get("image")) == 4


def _record(path: Path, file_id: int) -> FileRecord:
    info = sf.info(str(path))
    st = path.stat()
    return FileRecord(file_id, str(path), info.duration, info.samplerate, info.channels, info.format,
                      st.st_size, st.st_mtime_ns)


def test_cards_media_keeps_the_order_and_each_cards_error(cards_index):
    root, _ = cards_index
    files = sorted(root.rglob("*.*"))
    cards = [(_record(p, n), 0.5, 1.5, 0.5) for n, p in enumerate(files) if p.name != BROKEN]
    broken = root / "a" / BROKEN
    cards.insert(2, (FileRecord(99, str(broken), 3.0, SR, 1, "WAV", broken.stat().st_size, 0), 0.5, 1.5, 0.5))
    one_by_one = list(resources.cards_media(cards, workers=1))
    together = list(resources.cards_media(cards, workers=3))
    assert together == one_by_one
    assert [m.error is None for m in together] == [True, True, False, True, True]
    assert str(broken) in together[2].error and together[2].png is None and together[2].player is None
    assert all(m.png and m.player.data for i, m in enumerate(together) if i != 2)


def test_stored_tags_of_a_page_come_in_one_query_best_first(cards_index):
    """`soundsift caption`'s tags, the top ones of each file best first; the user's own tags are not
    among them; a file without any is left out."""
    root, index = cards_index
    lib = Library(index)
    with catalog_session(index, write=True) as s:
        ids = {Path(p).name: i for i, p in s.execute(select(File.id, File.path))}
        beep, sweep = ids["beep.wav"], ids["sweep.flac"]
        s.add_all(Tag(file_id=fid, label=label, score=score, source=source) for fid, label, score, source in
                  [(beep, "Beep", 0.3, "zeroshot"), (beep, "Sine", 0.6, "zeroshot"),
                   (beep, "Alarm", 0.5, "zeroshot"), (beep, "mine", 1.0, USER_TAG_SOURCE),
                   (sweep, "Whoosh", 0.4, "zeroshot")])
    try:
        statements = []
        from sqlalchemy import event
        engine = lib._catalog.engine
        listen = lambda *a: statements.append(a[2])  # noqa: E731
        event.listen(engine, "before_cursor_execute", listen)
        try:
            tags = lib.stored_tags(list(ids.values()), top=2)
        finally:
            event.remove(engine, "before_cursor_execute", listen)
        assert tags == {beep: [{"label": "Sine", "score": 0.6}, {"label": "Alarm", "score": 0.5}],
                        sweep: [{"label": "Whoosh", "score": 0.4}]}
        assert len([s for s in statements if "tags" in s]) == 1
    finally:
        with catalog_session(index, write=True) as s:
            s.execute(delete(Tag))
