"""The page's players (ui.components.resources.player) are kept by the bytes of their audio,
not by a count: a page of 30 cards was read again on every rerun with a cache of 24 entries."""
from types import SimpleNamespace

from ui.components import resources
from ui.components.player import PlayerSource


def test_a_page_of_thirty_cards_is_read_once_across_reruns(monkeypatch):
    made: list[str] = []

    def fake_source(record, start):
        made.append(record.path)
        return PlayerSource(b"x" * 1000, "audio/wav", start)
    monkeypatch.setattr(resources, "player_source", fake_source)
    monkeypatch.setattr(resources, "_players", resources._PlayerCache(resources.PLAYER_CACHE_BYTES))
    records = [SimpleNamespace(path=f"/lib/card_{i:02d}.wav", size=1000, mtime_ns=i) for i in range(30)]
    for _rerun in range(3):
        shown = [resources.player(r, 1.5) for r in records]
    assert sorted(made) == sorted(r.path for r in records)          # each read once, not each rerun
    assert all(s.start_time == 1.5 for s in shown)
    changed = SimpleNamespace(path=records[0].path, size=1000, mtime_ns=99)   # the file changed: read again
    resources.player(changed, 1.5)
    assert made.count(records[0].path) == 2


def test_the_least_recently_shown_go_first_past_the_budget_and_the_newest_stays():
    cache = resources._PlayerCache(budget=100)
    source = {k: PlayerSource(b"x" * n, "audio/wav", 0.0) for k, n in (("a", 40), ("b", 40), ("c", 40), ("big", 500))}
    for k in ("a", "b"):
        cache.get((k,), lambda k=k: source[k])
    cache.get(("a",), lambda: source["a"])                          # a shown again: b is the oldest now
    cache.get(("c",), lambda: source["c"])                          # 120 bytes > 100: b goes
    assert list(cache._items) == [("a",), ("c",)] and cache._bytes == 80
    cache.get(("big",), lambda: source["big"])                      # over the budget alone: kept, the rest go
    assert list(cache._items) == [("big",)] and cache._bytes == 500
