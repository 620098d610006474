"""The Tag tab: upload or record a sound, get zero-shot tags (default or typed labels)."""
from __future__ import annotations

from typing import Any

import streamlit as st

from engine.errors import SoundsiftError
from engine.vocabulary import quoted
from engine.wording import count
from ui.components.markdown_text import plain_markdown
from ui.components.uploads import MAX_UPLOAD_MB, UPLOAD_TYPES, read_example

TAG_UPLOAD_KEY = "tag_upload"
TAG_RECORD_KEY = "tag_recording"


def parse_label_text(text: str) -> list[str] | None:
    """Labels typed by the user (commas or new lines); None means the default vocabulary."""
    from engine.vocabulary import split_list
    labels = []
    for part in (p for line in text.splitlines() for p in split_list(line)):    # '"Walk, footsteps"' quoted
        if part not in labels:
            labels.append(part)
    return labels or None


def timeline_tags(tags: list[dict]) -> str:
    """One segment's tags for the "Over time" table: label and score, comma-separated."""
    return ", ".join(f"{quoted(t['label'])} {t['score']:.2f}" for t in tags)


def render_tag_tab(index: Any) -> None:
    """Draw the tab and the tags of the uploaded or recorded sound."""
    up, rec = st.columns(2)
    with up:
        upload = st.file_uploader(f"Audio file (up to {MAX_UPLOAD_MB} MB)", type=UPLOAD_TYPES,
                                  key=TAG_UPLOAD_KEY, max_upload_size=MAX_UPLOAD_MB)
    with rec:
        recording = st.audio_input("Or record one", key=TAG_RECORD_KEY, sample_rate=48000)
    labels_text = st.text_area(
        "Labels (optional)", key="tag_labels", height=80,
        placeholder="dog bark, cat meow, rain, thunder — leave empty for the default vocabulary")
    top = st.slider("How many tags", 1, 20, 5, key="tag_top")
    over_time = st.toggle("Over time: each segment and marked take", key="tag_timeline",
                          help="The tags of each of the model's windows (10 s every 5 s for "
                               "soundsift-base) and of each take the file's named markers mark, in time order.")
    source = upload if upload is not None else recording
    if source is None:
        st.caption("Upload or record a sound to see which labels fit it best.")
        return
    try:
        example = read_example(source.name or "recording", source.getvalue())
        labels = parse_label_text(labels_text)
        if over_time:
            st.audio(source.getvalue())
            _render_timeline(index, example, source.getvalue(), labels, top)
            return
        tags = index.tag(example.waveform, labels=labels, top=top, sample_rate=example.sample_rate)
    except SoundsiftError as e:
        st.error(str(e), icon=":material/error:")
        return
    st.audio(source.getvalue())
    vocabulary = "your labels" if labels else "the default vocabulary"
    top_tags = "Top tag" if len(tags) == 1 else f"Top {len(tags)} tags"
    st.markdown(f"{top_tags} for **{plain_markdown(example.name)}** from {vocabulary}:")
    st.dataframe(
        [{"label": t["label"], "score": round(float(t["score"]), 4)} for t in tags],
        hide_index=True, width="stretch",
        column_config={"score": st.column_config.ProgressColumn(
            "score", min_value=0.0, max_value=max(1e-6, max(float(t["score"]) for t in tags)),
            format="%.3f")} if tags else None)
    _show_notes(labels, example)


def _show_notes(labels: list[str] | None, example: Any) -> None:
    """The notes ``soundsift tag`` prints: an upload cut short, tagged by the audio before the
    break (its ``notes``), and when the scores say little (engine.tagging.tag_notes): one label
    typed (it scores 1.00 for any sound) and an upload too short to be told apart."""
    from engine.tagging import tag_notes
    said = tag_notes(labels or [], [(example.name, example.duration)], "give other labels too")
    for note in [*example.notes, *said]:
        st.info(f"**Note:** {plain_markdown(note)}", icon=":material/info:")


def _render_timeline(index: Any, example: Any, data: bytes, labels: list[str] | None, top: int) -> None:
    """The tags of each segment of the upload (engine.tagging.tag_timeline), in time order."""
    import io

    from engine.file_metadata import named_markers
    from engine.tagging import tag_timeline
    from engine.query_span import clock
    try:
        upload = io.BytesIO(data)
        upload.name = example.name      # an embedded cue sheet naming several files: this one's tracks
        markers = named_markers(upload)
    except (ValueError, OSError) as e:          # a damaged marker chunk
        st.caption(f"The file's markers could not be read ({e}); its windows alone are tagged.")
        markers = []
    spans, _ = tag_timeline(example.waveform, labels, index=index, top=top, sample_rate=example.sample_rate,
                            markers=markers)
    takes = sum(s.marker is not None for s in spans)
    st.markdown(f"**{plain_markdown(example.name)}** over time: {count(len(spans), 'segment')}"
                + (f", {takes} of them marked takes" if takes else "") + ":")
    st.dataframe([{"time": f"{clock(s.start)}–{clock(s.end)}", "take": s.marker or "",
                   "tags": timeline_tags(s.tags)} for s in spans],
                 hide_index=True, width="stretch")
    _show_notes(labels, example)

