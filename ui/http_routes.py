"""The routes of ``soundsift serve``: which paths answer which methods with which parameters
(:class:`Route`), and the answers themselves (:class:`RouteAnswers`, a part of SoundsiftServer:
search, similar, tag, files, audio, info, facets, sheet), as JSON, CSV or WAV."""
from __future__ import annotations

import json
import os
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Callable, NamedTuple
from urllib.parse import quote

import numpy as np

from engine.errors import InvalidQuery, SoundsiftError, UnreadableAudio
from ui.byte_ranges import Unsatisfiable, etag_listed, requested_range
from ui.http_request import NotFound, Query, RangeNotSatisfiable

if TYPE_CHECKING:
    from engine.export import ExcerptStream
    from engine.query import SoundIndex
    from ui.http_handler import SoundsiftHandler

#: longest span ``/audio`` sends, and what it sends without ``end`` (a preview: 600 s of 96 kHz
#: 6-channel 24-bit audio is 1 GB, streamed a block at a time, not held in memory)
MAX_AUDIO_SECONDS = 600.0
#: the header carrying the notes the CLI prints on stderr, as a JSON list of strings (the body
#: stays what it was): a POSTed clip cut short (decoded up to the break, as a file is), a /tag
#: answer whose scores say little (one label, a sound under 0.1 s), a
#: /similar or /audio ``end`` past the file's or clip's end (cut to it), a filtered /search or /similar
#: that found nothing because no indexed file has a filter's value
NOTES_HEADER = "X-Soundsift-Notes"
FILTER_PARAMS = ("min_duration", "max_duration", "path_prefix", "format", "sample_rate", "category",
                 "channels", "min_loudness", "max_loudness", "tagged")
#: routes followed by one more path segment, a file id (``/files/ID``)
ID_ROUTES = frozenset({"/files", "/audio"})
#: what the 503 of a request stopped past ``request_timeout`` advises, by route (the routes with
#: long work: a clip's embedding, a sheet's zero-shot tags; engine.zeroshot.between_batches)
OVER_TIME_ADVICE = {
    "/similar": "send a shorter clip, or only the part to search by (start, end)",
    "/tag": "send a shorter clip, or fewer labels",
    "/sheet": "ask for the sheet of fewer files (path_prefix, category or another filter), or without zero_shot",
}


class Conflict(SoundsiftError):
    """409: what a route would answer from is not what the index holds of it now (``/audio`` of
    a file changed since it was indexed: its catalog length and the hits' times are of other audio)."""


class Route(NamedTuple):
    """A route: its path (``/files`` for ``/files/ID``), what answers it, the parameters it reads."""

    path: str
    answer: Callable[[SoundsiftHandler, Query, str], tuple[int, "bytes | ExcerptStream", str]]
    params: tuple[str, ...] = ()


class RouteAnswers:
    """The route answers of SoundsiftServer (``self`` is the server): each takes the handler, the
    request's Query and its path, and gives the status, the body and its Content-Type."""

    index: SoundIndex

    def _route_table(self) -> dict[tuple[str, str], Route]:
        """The routes by (method, path): what answers each, the parameters each reads."""
        similar = ("start", "end", "k", "segments", "all_copies", *FILTER_PARAMS)
        routes = [
            ("GET", "/search", self._search,
             ("q", "k", "keywords", "not", "not_weight", "segments", "all_copies", *FILTER_PARAMS)),
            ("GET", "/similar", self._similar, ("file", *similar)),
            ("POST", "/similar", self._similar_clip, similar),
            ("GET", "/tag", self._tag, ("file", "labels", "k", "top")),
            ("POST", "/tag", self._tag_clip, ("labels", "k", "top")),
            ("GET", "/files", self._file, ()), ("GET", "/audio", self._audio, ("start", "end")),
            ("GET", "/info", self._info, ()), ("GET", "/facets", self._facets, ()),
            ("GET", "/sheet", self._sheet, ("zero_shot", "labels", "min_score", *FILTER_PARAMS)),
        ]
        return {(method, path): Route(path, answer, params) for method, path, answer, params in routes}

    # -- routes --------------------------------------------------------------------------
    def _search(self, handler: SoundsiftHandler, q: Query, path: str) -> tuple[int, bytes, str]:
        from engine.query import EXCLUDE_WEIGHT
        text = q.required("q", "the text to search for")
        if q.flag("keywords") and q.flag("segments"):   # the engine's refusal names neither parameter
            raise InvalidQuery("keywords=1 ranks files, so it cannot be combined with segments=1; leave one out")
        filters, unwanted = q.filters(), q.listed("not")
        weight = q.number("not_weight", low=0, high=10)
        if weight is not None and not unwanted:         # else the weight would go unused without a word
            raise InvalidQuery("not_weight is the weight of the sounds not=… excludes, and no not was given: "
                               "add not=TEXT, or leave not_weight out")
        hits = self.index.search_text(text, k=q.count("k", 10), filters=filters,
                                      per_file=not q.flag("segments"), keywords=q.flag("keywords"),
                                      exclude=unwanted,
                                      exclude_weight=EXCLUDE_WEIGHT if weight is None else weight,
                                      collapse_copies=not q.flag("all_copies"))
        _say_notes(handler, self._why_none(hits, filters))
        return _hits(hits)

    def _similar(self, handler: SoundsiftHandler, q: Query, path: str) -> tuple[int, bytes, str]:
        from engine.duplicates import mark_copies
        handler.checkpoint("before it began")      # a client gone already (a moment is decoded and embedded)
        file_id, record = self._indexed(q)
        start, end, per_file = q.time("start"), q.time("end"), not q.flag("segments")
        whole, filters, notes = start is None and end is None, q.filters(), []
        if end is not None:                 # an end past the file's: cut to its end, with a note
            record = record or self.index.get_file(file_id)
            end, notes = _cut_end(record["path"], start, end, float(record["duration"]))
        hits = self.index.similar_to_file(file_id, k=q.count("k", 10), filters=filters,
                                          per_file=per_file, start=start, end=end,
                                          collapse_copies=not q.flag("all_copies"))
        if per_file and whole:              # as `soundsift similar --json` marks them
            hits = mark_copies((record or self.index.get_file(file_id))["path"], hits, itself=True)
        _say_notes(handler, notes + self._why_none(hits, filters))
        return _hits(hits)

    def _similar_clip(self, handler: SoundsiftHandler, q: Query, path: str) -> tuple[int, bytes, str]:
        from engine.duplicates import copies_of_waveform, mark_copies
        clip = _clip(handler)
        start, end, per_file = q.time("start"), q.time("end"), not q.flag("segments")
        whole, filters, notes = start is None and end is None, q.filters(), list(clip.notes)
        if end is not None:                 # an end past the clip's: cut to its end, with a note
            end, cut = _cut_end(clip.name, start, end, clip.duration)
            notes += cut
        hits = self.index.search_audio(clip.waveform, k=q.count("k", 10), filters=filters,
                                       per_file=per_file, sample_rate=clip.sample_rate, start=start, end=end,
                                       collapse_copies=not q.flag("all_copies"))
        if per_file and whole:              # files holding the clip's very recording
            hits = mark_copies(None, hits, copies=lambda _none, candidates: copies_of_waveform(
                clip.waveform, clip.sample_rate, candidates))
        _say_notes(handler, notes + self._why_none(hits, filters))
        return _hits(hits)

    def _tag(self, handler: SoundsiftHandler, q: Query, path: str) -> tuple[int, bytes, str]:
        from engine import zeroshot
        from engine.tagging import COSINE_ADVICE, tag_notes
        from engine.vocabulary import default_labels
        file_id, record = self._indexed(q)
        vector = self.index.file_vector(file_id)
        model = self.index.model
        labels = q.listed("labels") or default_labels(model)
        tags = zeroshot.tag(model, vector, labels, q.count("k", 5, older="top"))
        record = record or self.index.get_file(file_id)
        _say_notes(handler, tag_notes(labels, [(record["path"], record["duration"])], COSINE_ADVICE))
        return HTTPStatus.OK, _json(tags), "application/json"

    def _tag_clip(self, handler: SoundsiftHandler, q: Query, path: str) -> tuple[int, bytes, str]:
        clip = _clip(handler)
        tags, notes = self.index.tag_with_notes(clip.waveform, labels=q.listed("labels") or None,
                                                top=q.count("k", 5, older="top"), sample_rate=clip.sample_rate,
                                                name=clip.name)
        _say_notes(handler, [*clip.notes, *notes])
        return HTTPStatus.OK, _json(tags), "application/json"

    def _file(self, handler: SoundsiftHandler, q: Query, path: str) -> tuple[int, bytes, str]:
        """The file's record (SoundIndex.get_file), with ``missing`` as hits have it (Hit.missing:
        true for a file not on disk now, left out otherwise)."""
        record = self._record(path)
        if not os.path.exists(record["path"]):      # as engine.query marks hits
            record["missing"] = True
        return HTTPStatus.OK, _json(record), "application/json"

    def _audio(self, handler: SoundsiftHandler, q: Query, path: str) -> tuple[int, "bytes | ExcerptStream", str]:
        """The span as WAV (engine.export.excerpt_stream: the bytes excerpt_wav makes, written
        a block at a time as they are read; the handler closes it), or the part of it a
        ``Range`` header asks for (206; ``If-Range`` with another ETag gets all of it), or 304
        when ``If-None-Match`` names its ETag (the file is not opened); an ``end`` past the
        file's is cut to it, with a note (:data:`NOTES_HEADER`) saying so. :class:`Conflict` (409)
        for a file changed since it was indexed (another size or mtime: engine.export.changed_from,
        as export and the page's downloads refuse it): its span is other sound now, or past its end.
        One stat of the file, for both that and the ETag; the record and the state it is compared
        with are one catalog read (SoundIndex.get_file_and_state: a re-index committing between two
        reads paired the old record with the new state, and served a span of the old length)."""
        from engine.export import changed_from, excerpt_name, excerpt_stream
        from engine.file_state import state_now
        from engine.query_span import cut_to_length
        record, indexed = self._record_and_state(path)
        now = state_now(record["path"])
        changed = changed_from(now, indexed)
        if changed is not None:
            raise Conflict(f"{record['path']}: {changed}")
        start = q.time("start") or 0.0
        if start >= record["duration"]:
            raise InvalidQuery(f"start ({start:g} s) is past the end of the file ({record['duration']:g} s)")
        given_end = q.time("end")
        end = min(record["duration"], start + MAX_AUDIO_SECONDS) if given_end is None else given_end
        if end <= start:
            raise InvalidQuery(f"end ({end:g} s) must come after start ({start:g} s)")
        if end - start > MAX_AUDIO_SECONDS:
            raise InvalidQuery(f"a span of {end - start:g} s is longer than the {MAX_AUDIO_SECONDS:g} s "
                               "/audio sends; ask for a part")
        end = min(end, record["duration"])  # the span served (an end past the file's: to its end), as its ETag says
        # from the catalog's length, so a 304 says it too without opening the file
        cut = cut_to_length(record["path"], start, given_end, float(record["duration"]), "end", "sending")
        notes = [] if cut.note is None else [cut.note]
        tag = _excerpt_etag(record["path"], now, start, end)
        if tag is not None and etag_listed(handler.headers.get("If-None-Match"), tag):
            handler.extra_headers += [("Accept-Ranges", "bytes"), ("ETag", tag)]
            _say_notes(handler, notes)
            return HTTPStatus.NOT_MODIFIED, b"", "audio/wav"     # the client holds these bytes
        wanted = handler.headers.get("Range")
        if_range = handler.headers.get("If-Range")
        if if_range is not None and if_range.strip() != tag:
            wanted = None                   # the client holds another version: all of this one
        try:
            stream = excerpt_stream(record["path"], start, end)
        except UnreadableAudio as e:        # indexed, then deleted or renamed: not a bad request
            if not os.path.lexists(record["path"]):
                raise NotFound(f"{e} (file id {record['file_id']}; re-index to drop it)") from e
            raise
        handler.extra_headers += [("Accept-Ranges", "bytes"), *([("ETag", tag)] if tag is not None else []),
                                  ("Content-Disposition", _disposition(excerpt_name(record["path"], start, end)))]
        try:
            part = requested_range(wanted, stream.length)
        except Unsatisfiable as e:
            stream.close()
            raise RangeNotSatisfiable(str(e), e.total) from e
        _say_notes(handler, notes)
        if part is None:
            return HTTPStatus.OK, stream, "audio/wav"
        handler.extra_headers.append(("Content-Range", part.content_range()))
        return HTTPStatus.PARTIAL_CONTENT, stream.part(part.first, part.last), "audio/wav"

    def _info(self, handler: SoundsiftHandler, q: Query, path: str) -> tuple[int, bytes, str]:
        """SoundIndex.info with every key of ``soundsift info --json`` (``full``, one catalog read),
        and ``version`` (SoundIndex.version, as the X-Index-Version header)."""
        return (HTTPStatus.OK, _json({**self.index.info(full=True), "version": handler.index_version}),
                "application/json")

    def _facets(self, handler: SoundsiftHandler, q: Query, path: str) -> tuple[int, bytes, str]:
        return HTTPStatus.OK, _json(self.index.facets()), "application/json"

    def _sheet(self, handler: SoundsiftHandler, q: Query, path: str) -> tuple[int, bytes, str]:
        """The sheet as CSV: a checkpoint before its catalog is read, before each batch of files
        read from it and of its zero-shot tags (engine.zeroshot.between_batches, called in
        engine.sheet_export.library_rows) and before the CSV is written (40,000
        files, 495 labels: 1.1 s to read, 1.8 s to tag, 0.2 s to write)."""
        from engine.sheet_export import library_rows, sheet_bytes
        zero_shot = q.count("zero_shot", 0, low=0)
        filters = q.filters()
        handler.checkpoint("before it began")
        rows = library_rows(self.index.root, filters, sound_index=self.index, zero_shot=zero_shot,
                            labels=q.listed("labels") or None, min_score=q.number("min_score", 0.1, low=0, high=1))
        handler.checkpoint("before its sheet was written")
        _say_notes(handler, self._why_none(rows, filters))       # a header-only sheet: which filter value
        return HTTPStatus.OK, sheet_bytes(rows, ".csv"), "text/csv; charset=utf-8"

    # -- helpers -------------------------------------------------------------------------
    def _why_none(self, hits: list, filters: Any) -> list[str]:
        """For a filtered search that found nothing, the filter values no indexed file has
        (SoundIndex.why_no_file, as the CLI's notes say them); else none (nothing is looked up)."""
        return self.index.why_no_file(filters) if not hits and filters is not None else []

    def _indexed(self, q: Query) -> tuple[int, dict[str, Any] | None]:
        """The file id ``file`` names (an indexed path or a file id), with its record when reading
        it was how the id was checked (None for a path); NotFound when the index lacks it."""
        given = q.required("file", "an indexed path or file id")
        if _file_id(given) is not None:
            record = self._record(f"/files/{given}")
            return int(record["file_id"]), record
        if "\x00" in given:
            raise NotFound(f"{given!r} is not a path (it holds a NUL character)")
        found = self.index.file_id_for_path(given)
        if found is None:
            why = self.index.failed_reason(given)
            raise NotFound(f"{given} is not in index {self.index.root}"
                           + (f": it could not be indexed: {why}" if why else "; POST the clip instead"))
        return found, None

    def _record(self, path: str) -> dict[str, Any]:
        """The record (SoundIndex.get_file) of the file whose id ends ``/files/ID`` or ``/audio/ID``
        (``path`` percent-decoded);
        NotFound for an id the index does not hold."""
        try:
            return self.index.get_file(_path_file_id(path))
        except InvalidQuery as e:
            raise NotFound(str(e)) from e

    def _record_and_state(self, path: str) -> tuple[dict[str, Any], tuple[int, int]]:
        """:meth:`_record` and the file's ``(size, mtime_ns)`` as indexed, in one catalog read
        (SoundIndex.get_file_and_state)."""
        try:
            return self.index.get_file_and_state(_path_file_id(path))
        except InvalidQuery as e:
            raise NotFound(str(e)) from e


def _path_file_id(path: str) -> int:
    """The file id ending ``/files/ID`` or ``/audio/ID`` (``path`` percent-decoded); NotFound when
    it is no number."""
    file_id = _file_id(path.rstrip("/").rsplit("/", 1)[-1])      # (the handler percent-decoded it)
    if file_id is None:
        raise NotFound(f"{path}: give a file id (a number, as hits' file_id)")
    return file_id


def _excerpt_etag(path: str, now: tuple[int, int] | None, start: float, end: float) -> str | None:
    """A strong ETag for the excerpt ``start``–``end`` of ``path`` as the file is now (``now``:
    its size and modification time, engine.file_state.state_now), and the span (a file rewritten
    in place gets a new one, so a player that asks for the rest of an excerpt with ``If-Range``
    gets all of the new one instead, and one revalidating with ``If-None-Match`` gets the new one,
    not 304); None when the file cannot be looked at (``now`` None: excerpt_stream then says why
    it cannot be read)."""
    import hashlib
    if now is None:
        return None
    made = f"{now[0]}:{now[1]}"
    digest = hashlib.sha256(f"{path}\0{made}\0{start!r}\0{end!r}".encode("utf-8", "surrogateescape"))
    return f'"{digest.hexdigest()[:32]}"'


def _disposition(name: str) -> str:
    """``Content-Disposition`` naming ``name`` (a browser saving the preview, or ``curl -OJ``, uses
    it rather than the id): shown inline, the name in ASCII and, for any other character, as
    RFC 8187 UTF-8 (a header is Latin-1 on the wire)."""
    plain = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name)
    return f'inline; filename="{plain}"' + ("" if plain == name else f"; filename*=UTF-8''{quote(name, safe='')}")


def _file_id(text: str) -> int | None:
    """``text`` as a file id: ASCII digits of a number SQLite can hold, else None (a path, or
    no id at all; "²" and "٣" are digits to str.isdigit, not ids)."""
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        return None
    return int(text)


def _json(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, default=_plain).encode("utf-8")


def _plain(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _hits(hits: list) -> tuple[int, bytes, str]:
    return HTTPStatus.OK, _json([h.to_dict() for h in hits]), "application/json"


def _say_notes(handler: SoundsiftHandler, notes: list[str]) -> None:
    """The notes the CLI prints on stderr (``soundsift tag``'s when the scores say little,
    engine.tagging.tag_notes; ``similar``'s for an end past the file's; ``search`` and
    ``similar``'s for a filter value no indexed file has), as the :data:`NOTES_HEADER` of the
    answer: a JSON list of strings, ASCII-escaped (a label or file name may hold any character);
    no header without notes. Call it once an answer, with all of them."""
    if notes:
        handler.extra_headers.append((NOTES_HEADER, json.dumps(notes, ensure_ascii=True)))


def _cut_end(name: str, start: float | None, end: float, seconds: float) -> tuple[float | None, list[str]]:
    """``(end to search by, notes)`` for the span ``start``–``end`` of ``name``, ``seconds`` long:
    an end past its end is cut to it (None) with the note ``soundsift similar --end`` prints
    (engine.query_span.cut_to_length), the parameter called ``end``."""
    from engine.query_span import cut_to_length
    cut = cut_to_length(name, start, end, seconds, "end")
    return cut.end, [] if cut.note is None else [cut.note]


def _clip(handler: SoundsiftHandler) -> Any:
    """The clip the request body holds (its name: ``X-Filename``, else "request body"; its
    ``notes``, a clip cut short decoded up to the break, go in the answer's :data:`NOTES_HEADER`);
    InvalidQuery for a multipart form (FormData, curl -F), before its body is read (curl
    --data-binary labels a clip application/x-www-form-urlencoded: the bytes are read all the same)."""
    from ui.components.uploads import read_example
    kind = (handler.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        raise InvalidQuery("the request body is a multipart form (multipart/form-data); send the clip's own bytes "
                           "as the body (fetch(url, {method: 'POST', body: file}), curl --data-binary @clip.wav)")
    data = handler.body()
    handler.begin_work()                # the time limit counts from here; nothing starts for a client gone
    return read_example(_header_text(handler.headers.get("X-Filename")) or "request body", data)


def _header_text(value: str | None) -> str | None:
    """A header's ``value`` as its sender wrote it: http.server reads the bytes as Latin-1, and
    a client writes a name such as ``雨.wav`` as UTF-8; Latin-1 that is not UTF-8 is kept."""
    if value is None:
        return None
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value
