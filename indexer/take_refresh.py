"""Find indexed files whose named markers mark takes that have no segment of their own.

Since session 22 the indexer gives each take a WAVE file's named cue markers begin a segment
(engine.segments.take_bounds). Files indexed before have only the regular windows, so the next
``soundsift index`` run embeds those files again, once — only files whose catalog rows carry
markers, so a library without them costs one small query. A file is due when a take its markers
mark (read again from the file, to the sample, as the decoder reads them), other than a regular
segment, has no stored segment starting there, nor was left out as digital silence (since session
40 a silent take is left out as a window is, engine.segments.without_silence, and the file's
``silent_takes`` row says where those start: engine.file_metadata.SILENCE_KEYS): so the test holds
after an interrupted run too, and a file whose takes were cut is never due again. A file whose
markers were first read after it was embedded (a newer metadata reader: indexer.metadata_refresh)
is due.

A sidecar cue sheet (engine.cue_sheet) is not part of its audio file's size and time, so a sheet
added, edited or removed beside an indexed file would leave its takes as they were:
:func:`files_with_changed_cue_sheets` finds those files (the sheet's state is stored when the
file is embedded), and the run embeds them again.
"""
from __future__ import annotations

import logging
import os
from collections import defaultdict

from sqlalchemy import and_, select
from sqlalchemy.orm import Session, aliased

from engine.catalog import SQL_CHUNK as _SQL_CHUNK
from engine.catalog import File, FileMetadata, SegmentRow, has_table
from engine.cue_sheet import sidecar_state
from engine.file_metadata import CUE_SHEET_KEY, SILENCE_KEYS, named_markers
from engine.segments import SegmentPolicy, bounds_with_takes, segment_bounds
from indexer.write import IndexWriter

log = logging.getLogger(__name__)


def files_missing_takes(writer: IndexWriter, present: set[str], policy: SegmentPolicy,
                        sample_rate: int) -> list[str]:
    """The paths among ``present`` whose marked takes are not all segments yet, nor left out as
    digital silence, sorted. A file whose markers cannot be read now is left as it is."""
    with Session(writer.engine) as s:
        if not has_table(s, "file_metadata"):
            return []
        silence = aliased(FileMetadata)
        marked = [(fid, path, duration, silent_starts(value)) for fid, path, duration, value in s.execute(
            select(File.id, File.path, File.duration, silence.value)
            .join(FileMetadata, FileMetadata.file_id == File.id)
            .outerjoin(silence, and_(silence.file_id == File.id, silence.key == SILENCE_KEYS[2]))
            .where(FileMetadata.key == "markers"))
            if path in present]
        starts: dict[int, set[int]] = defaultdict(set)
        ids = [fid for fid, _, _, _ in marked]
        for i in range(0, len(ids), _SQL_CHUNK):
            for fid, start in s.execute(select(SegmentRow.file_id, SegmentRow.start)
                                        .where(SegmentRow.file_id.in_(ids[i:i + _SQL_CHUNK]))):
                starts[fid].add(int(round(start * sample_rate)))
    due = []
    for fid, path, duration, silent in marked:
        try:
            markers = [(m.at, m.length) for m in named_markers(path)]
        except (OSError, ValueError) as e:     # unreadable now, or a damaged chunk: left as it is
            log.warning("%s: markers not read (%s); its takes are not cut", path, e)
            continue
        n = int(round(duration * sample_rate))
        takes = bounds_with_takes(n, sample_rate, policy, markers)[len(segment_bounds(n, sample_rate, policy)):]
        if any(a not in starts[fid] and a not in silent for a, _ in takes):
            due.append(path)
    return sorted(due)


def silent_starts(value: str | None) -> set[int]:
    """Where a file's marked takes left out as digital silence start (samples at the model's
    rate), from its ``silent_takes`` row (None: none, judged before session 40 or never)."""
    return {int(v) for v in value.split()} if value else set()


def cut_with_cue_sheets(writer: IndexWriter) -> dict[str, str]:
    """Path → the state of the sidecar cue sheet its segments were cut with, for every indexed
    file that was cut with one."""
    with Session(writer.engine) as s:
        if not has_table(s, "file_metadata"):
            return {}
        return {path: state for path, state in s.execute(
            select(File.path, FileMetadata.value).join(FileMetadata, FileMetadata.file_id == File.id)
            .where(FileMetadata.key == CUE_SHEET_KEY))}


def files_with_changed_cue_sheets(writer: IndexWriter, present: set[str], cue_folders: set[str]) -> list[str]:
    """The paths among ``present`` whose sidecar cue sheet is not the one their segments were cut
    with (added, edited, renamed or removed since), sorted. Looked at: the files in
    ``cue_folders`` (the folders the walk found a sheet in) and the files embedded with a sheet."""
    stored = cut_with_cue_sheets(writer)
    looked = {p for p in present if os.path.dirname(p) in cue_folders} | (set(stored) & present)
    due = []
    for path in sorted(looked):
        try:
            now = sidecar_state(path)
        except OSError as e:        # a sheet there but unreadable now: left as it is
            log.warning("%s: cue sheet not read (%s); its takes are left as they are", path, e)
            continue
        if now != stored.get(path, ""):
            due.append(path)
    return due
