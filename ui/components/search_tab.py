"""The Search tab: text query (bound to ?q=), query by example, results, "more like this".

What is searched is held in ``st.session_state``:
  q          the text box, bound to the address's ``?q=`` (shareable searches)
  search_by  None (text), {"kind": "similar", "file_id", "name", "start", "end"},
             {"kind": "example", "widget"} or {"kind": "picked"} (more like the picked files)
  picked     file id → name of the results picked as examples (kept across searches)
  keywords   the "also match names" toggle (keyword search fused with the sound match), bound
             to the address's ``?keywords=`` like q
  not        sounds not wanted in a text search (comma-separated), bound to ``?not=``
  shown      how many results are shown (grows by PAGE with "Show more")
"""
from __future__ import annotations

import os
from contextlib import closing
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import streamlit as st

from engine.errors import InvalidQuery, SoundsiftError
from engine.file_metadata import cut_at_word
from engine.filters import Filters
from ui.components import resources
from ui.components.downloads import downloads, gone_note, left_out_note, results_download
from ui.components.folder_names import card_folder
from ui.components.keyboard import KEYS_HELP, card_key, render_card_keys
from ui.components.library import Library
from ui.components.markdown_text import plain_markdown
from ui.components.player import EXCERPT_SECONDS
from ui.components.result_tags import HitTags, is_section
from ui.components.times import (excerpt_note, marker_text, player_label, player_length_note, seconds_text,
                                 span_text)
from ui.components.uploads import MAX_UPLOAD_MB, UPLOAD_TYPES, read_example
from ui.components.user_tags import CardTags, render_card_tags, show_tag_error

PAGE = 10
EXAMPLES = ("rain on a window", "dog barking", "door knock", "birds chirping")
#: characters of a text query the results' heading repeats (a pasted page of text filled the screen)
HEADING_CHARS = 120
UPLOAD_KEY = "example_upload"
RECORD_KEY = "example_recording"


@dataclass
class Search:
    """The search to run this time: its heading (Markdown), a function of k, and what it asked in
    plain words (the export manifest's query)."""

    title: str
    run: Callable[[int], list[Any]]
    query: str = ""
    by_file: tuple[int, float | None, float | None] | None = None    # "more like" one file: its id, span
    by: str | None = None        # what a search not by text is by, in words ("example"); None: by text


def _reset_page() -> None:
    st.session_state["shown"] = PAGE


def on_text_change() -> None:
    st.session_state["search_by"] = None
    _reset_page()


def on_example_change(widget: str) -> None:
    has_audio = st.session_state.get(widget) is not None
    st.session_state["search_by"] = {"kind": "example", "widget": widget} if has_audio else None
    _reset_page()


def more_like(file_id: int, name: str, start: float | None = None, end: float | None = None) -> None:
    """Search by an indexed file; with ``start``/``end``, by that moment of it."""
    st.session_state["search_by"] = {"kind": "similar", "file_id": int(file_id), "name": name,
                                     "start": start, "end": end}
    _reset_page()


def card_facts(record: Any, hit: Any) -> str:
    """A result card's facts after its folder: duration, format, rate, channels beyond stereo,
    levels; then the match's span and score, and in a search that also matched names (the
    keywords toggle) its words score, the BM25 the CLI's "words" column shows: a file found by
    name ranks above files of a higher score, which read as a wrong order without it."""
    channels = f" · {record.channels} ch" if record.channels > 2 else ""
    levels = f" · {record.levels}" if record.levels else ""
    span = span_text(hit.start, hit.end)
    words = getattr(hit, "keywords", None)
    return (f"{seconds_text(record.duration)} · {record.format} · {record.sample_rate / 1000:g} kHz{channels}{levels}"
            f"  \nmatch {span} · score {hit.score:.3f}" + (f" · words {words:.2f}" if words is not None else ""))


def copies_caption(hit: Any, root: str) -> str | None:
    """A card's line naming the other names of its recording (``copies``: hard links,
    byte-identical copies), each as its folder is shown (:func:`card_folder`); None when none."""
    copies = getattr(hit, "copies", None) or ()
    if not copies:
        return None
    names = (plain_markdown(os.path.join(card_folder(os.path.dirname(p), root), os.path.basename(p)))
             for p in copies)
    return ":material/content_copy: also at " + " · ".join(names)


def cut_short_caption(hit: Any) -> str | None:
    """A card's line for a file cut short when it was indexed (its audio ends before its header
    says: an interrupted copy or download), as the CLI notes it after the name; None for a whole file."""
    said = getattr(hit, "header_duration", None)
    if said is None:
        return None
    return (f":material/content_cut: cut short: holds {seconds_text(hit.duration)} of the "
            f"{seconds_text(said)} its header says (an interrupted copy or download?)")


def moment(hit: Any, duration: float) -> tuple[float | None, float | None]:
    """The span "more like this" should search by: the hit's match when it is only part of a
    longer file (what the card shows and plays), else the whole file (None, None)."""
    if is_section(hit.start, hit.end, duration):
        return float(hit.start), float(hit.end)
    return None, None


def is_query_file(hit: Any, by_file: tuple[int, float | None, float | None] | None) -> bool:
    """Whether ``hit`` is the file a "more like" search was by (``by_file``: its id and span):
    its card is marked "this file", as `soundsift similar` lists the file itself first."""
    return by_file is not None and int(hit.file_id) == int(by_file[0])


def more_like_span(hit: Any, duration: float,
                   by_file: tuple[int, float | None, float | None] | None = None) -> tuple[float | None, float | None]:
    """The span a card's "more like this" searches by. On the card of the file a "more like"
    search was by (``by_file``: its id and span), the span that search was by, as
    ``soundsift similar FILE --start --end`` takes it: that card shows the stored segment holding
    most of the moment (a 1 s slam's 10 s window), not the moment chosen. Else :func:`moment`."""
    if by_file is not None and is_query_file(hit, by_file):
        return by_file[1], by_file[2]
    return moment(hit, duration)


def more_like_help(hit: Any, span: tuple[float | None, float | None]) -> str:
    """A card's "More like this" tooltip: which sound it searches by."""
    start, end = span
    if start is None or end is None:        # the page searches by a whole file or a start–end
        return "Sounds like this file"
    if (start, end) == (float(hit.start), float(hit.end)):
        return "Sounds like the match shown here"
    return f"Sounds like the moment searched by ({span_text(start, end)})"


def toggle_pick(file_id: int, name: str) -> None:
    """A card's "Pick" box changed: add the file to the examples, or take it out."""
    picked = st.session_state.setdefault("picked", {})
    if st.session_state.get(f"pick_{file_id}"):
        picked[int(file_id)] = name
    else:
        picked.pop(int(file_id), None)


def more_like_picked() -> None:
    st.session_state["search_by"] = {"kind": "picked"}
    _reset_page()


def clear_picks() -> None:
    for file_id in st.session_state.get("picked", {}):
        # set, not dropped: only a value set is sent to the browser, whose box stayed ticked and
        # picked the file again with the next search
        st.session_state[f"pick_{file_id}"] = False
    st.session_state["picked"] = {}
    if (st.session_state.get("search_by") or {}).get("kind") == "picked":
        st.session_state["search_by"] = None
    _reset_page()


def back_to_text() -> None:
    st.session_state["search_by"] = None
    _reset_page()


def show_more() -> None:
    st.session_state["shown"] = st.session_state.get("shown", PAGE) + PAGE


def use_example(text: str) -> None:
    st.session_state["q"] = text
    on_text_change()


@st.cache_data(show_spinner=False, max_entries=32)
def _copies(query: str, candidates: list[tuple[str, float, float]]) -> dict[str, float]:
    """engine.duplicates.copies_of, kept across reruns (it decodes audio)."""
    from engine.duplicates import copies_of
    return copies_of(query, candidates)


def unwanted_sounds(text: str | None) -> list[str]:
    """The "Without" box's sounds: comma-separated (engine.vocabulary.split_list), stripped,
    empty ones dropped."""
    from engine.vocabulary import split_list
    return split_list(text)


def without_note(search: Search | None, unwanted: Sequence[str]) -> str | None:
    """The caption under the "Without" box when the sounds in it change nothing (they apply to
    text searches only: ``soundsift search --not``); None when they do, or there are none."""
    if not unwanted or (search is not None and search.by is None):
        return None
    if search is None:
        return ":material/info: Applies to a text search: describe the sound too."
    return f":material/info: Applies to text searches only, not to this search by {search.by}."


def check_still_indexed(index: Any, files: dict[int, str], then: str = "Search again.") -> None:
    """InvalidQuery in the page's words when a file searched by ("More like this", the picks) has
    left the index since its card was shown (re-indexed after it was moved, renamed or deleted);
    the engine's own message names a bare file id and the command line."""
    gone = []
    for file_id, name in files.items():
        try:
            index.get_file(int(file_id))
        except InvalidQuery:
            gone.append(f"**{plain_markdown(name)}** (file id {int(file_id)})")
    if gone:
        raise InvalidQuery(
            f"{', '.join(gone)} {'is' if len(gone) == 1 else 'are'} no "
            "longer in the index: the library was re-indexed since the results were shown, and the file was "
            f"moved, renamed or deleted. {then}")


def current_search(index: Any, filters: Filters) -> Search | None:
    """What to search for, from the session state; None when nothing is asked yet."""
    by = st.session_state.get("search_by")
    picked = dict(st.session_state.get("picked", {}))
    if by and by.get("kind") == "picked" and picked:
        names = " + ".join(f"**{plain_markdown(n)}**" for n in picked.values())

        def more_like_picks(k: int) -> list[Any]:
            check_still_indexed(index, picked, "Clear the picks and pick again.")
            return index.similar_to_files(list(picked), k=k, filters=filters)
        return Search(f"More like {names}", more_like_picks,
                      "similar to " + ", ".join(picked.values()), by="the picked files")
    if by and by.get("kind") == "similar":
        fid, start, end = by["file_id"], by.get("start"), by.get("end")
        part = f" {span_text(start, end)}" if start is not None and end is not None else ""   # as its card

        def more_like_it(k: int) -> list[Any]:
            check_still_indexed(index, {fid: by["name"]})
            hits = index.similar_to_file(fid, k=k, filters=filters, start=start, end=end)
            if start is not None or end is not None:
                return hits
            from engine.duplicates import mark_copies
            return mark_copies(index.get_file(fid)["path"], hits, copies=_copies)
        return Search(f"More like **{plain_markdown(by['name'])}**{part}", more_like_it,
                      f"similar to {by['name']}{part}", by_file=(int(fid), start, end), by="a file")
    if by and by.get("kind") == "example":
        upload = st.session_state.get(by["widget"])
        if upload is not None:
            example = read_example(upload.name or "recording", upload.getvalue())
            for note in example.notes:          # an upload cut short: searched by the audio before the break
                st.info(f"**Note:** {plain_markdown(note)}", icon=":material/info:")

            def like_example(k: int) -> list[Any]:
                from engine.duplicates import copies_of_waveform, mark_copies
                hits = index.search_audio(example.waveform, k=k, filters=filters, per_file=True,
                                          sample_rate=example.sample_rate)
                return mark_copies(None, hits, copies=lambda _none, candidates: copies_of_waveform(
                    example.waveform, example.sample_rate, candidates))    # the upload's very recording
            return Search(f"Sounds like **{plain_markdown(example.name)}** ({seconds_text(example.duration)})",
                          like_example, f"sounds like {example.name}", by="example")
        st.session_state["search_by"] = None
    text = (st.session_state.get("q") or "").strip()
    if text:
        keywords = bool(st.session_state.get("keywords"))
        unwanted = unwanted_sounds(st.session_state.get("not"))
        without = " without " + ", ".join(f"**{plain_markdown(u)}**" for u in unwanted) if unwanted else ""
        shown = plain_markdown(cut_at_word(text, HEADING_CHARS))
        return Search(f"Results for **{shown}**{without}" + (" (sound + names)" if keywords else ""),
                      lambda k: index.search_text(text, k=k, filters=filters, per_file=True,
                                                  keywords=keywords, exclude=unwanted),
                      text + "".join(f" not {u!r}" for u in unwanted))
    return None


def render_search_tab(index: Any, lib: Library, filters: Filters, root: str,
                      tags_of: Callable[[list[Any]], dict[int, HitTags]], known_tags: Sequence[str] = ()) -> None:
    """Draw the tab: inputs, then the results of the current search. ``tags_of``: the tags of the
    hits shown, by file id; ``known_tags``: every tag of the user's in the library (the sidebar's
    choices), offered on each card. The cards' waveforms and audio are read a few at once
    (resources.cards_media) and drawn in rank order."""
    st.session_state.setdefault("shown", PAGE)
    st.session_state.setdefault("search_by", None)
    describe, without = st.columns([3, 1])
    describe.text_input("Describe the sound", key="q", bind="query-params", on_change=on_text_change,
                        placeholder="e.g. heavy rain on a tin roof", icon=":material/search:")
    without.text_input("Without", key="not", bind="query-params", on_change=on_text_change,
                       placeholder="e.g. thunder, wind", icon=":material/block:",
                       help="Sounds you don't want: results that sound like them rank lower "
                            "(soundsift search --not). Comma-separate several. Text searches only.")
    without_caption = without.container()      # says so when this search is not by text
    st.toggle("Also match names, descriptions, tags and captions", key="keywords", bind="query-params",
              on_change=_reset_page,
              help="Words of the query found in a file's path, the description it carries, its tags "
                   "or captions rank it up, fused with the sound match (soundsift search --keywords).")
    with st.expander("Search by example: upload or record a sound",
                     expanded=(st.session_state["search_by"] or {}).get("kind") == "example"):
        up, rec = st.columns(2)
        with up:
            st.file_uploader(f"Audio file (up to {MAX_UPLOAD_MB} MB)", type=UPLOAD_TYPES,
                             key=UPLOAD_KEY, on_change=on_example_change, args=(UPLOAD_KEY,),
                             max_upload_size=MAX_UPLOAD_MB)
        with rec:
            st.audio_input("Record with the microphone", key=RECORD_KEY, sample_rate=48000,
                           on_change=on_example_change, args=(RECORD_KEY,))

    try:
        search = current_search(index, filters)
        note = without_note(search, unwanted_sounds(st.session_state.get("not")))
        if note:
            without_caption.caption(note)
        if search is None:
            st.caption("Type what you hear in your head, or try one of these:")
            cols = st.columns(len(EXAMPLES))
            for col, text in zip(cols, EXAMPLES):
                col.button(text, key=f"try_{text}", on_click=use_example, args=(text,),
                           icon=":material/north_east:", type="tertiary")
            return
        shown = int(st.session_state["shown"])
        hits = search.run(shown + 1)
    except SoundsiftError as e:         # the picks and the way back stay: the message may ask for them
        render_picks()
        st.error(str(e), icon=":material/error:")
        render_back_to_text(st)
        return

    render_picks()
    head, side = st.columns([4, 1], vertical_alignment="center")
    head.markdown(f"{search.title} · {min(len(hits), shown)} shown", help=KEYS_HELP)
    render_back_to_text(side)
    if not hits and not root:      # no indexed file: no folder either (ui/app.py's choices)
        st.info(empty_index_note(index.info()["errors"]), icon=":material/search_off:")   # a count, not every row
        return
    if not hits:
        st.info("Nothing found. Loosen the filters in the sidebar or describe the sound differently.",
                icon=":material/search_off:")
        return
    # a take's marker at the time its badge says, in its card's list too (an old catalog: to the tenth)
    records = lib.files([h.file_id for h in hits[:shown]],
                        takes={int(h.file_id): (h.marker, float(h.marker_at)) for h in hits[:shown]
                               if getattr(h, "marker", None)})
    # the index changed under us: a hit the catalog lacks gets no card; never play what it lacks
    cards = [(rank, hit, records[hit.file_id]) for rank, hit in enumerate(hits[:shown], start=1)
             if hit.file_id in records]
    own = lib.user_tags([h.file_id for h in hits[:shown]])
    tags = tags_of([hit for _, hit, _ in cards])
    known = tuple(known_tags)
    show_tag_error()
    listed = []
    media = resources.cards_media([(record, hit.start, hit.end, play_from(hit)) for _, hit, record in cards])
    with closing(media):        # a rerun stopping the page here drops the cards not yet read
        for (rank, hit, record), card in zip(cards, media):
            render_result(rank, hit, record, root, tags.get(int(hit.file_id), HitTags()),
                          CardTags(lib.layout.root, hit.file_id, tuple(own.get(hit.file_id, ())), known,
                                   name=record.name),
                          more=more_like_span(hit, record.duration, search.by_file), media=card,
                          itself=is_query_file(hit, search.by_file))
            listed.append((hit, record))
    with st.container(horizontal=True, gap="small"):
        if len(hits) > shown:
            st.button("Show more", on_click=show_more, icon=":material/expand_more:", key="show_more")
        st.download_button(key="download_results", on_click="ignore", icon=":material/folder_zip:",
                           **results_download(listed, search.query))
        left_out = left_out_note(listed)        # files gone since they were indexed: not zipped
        if left_out:
            st.caption(left_out)
        render_card_keys()          # Tab through a card's actions only; j / k to the next / previous


def empty_index_note(failed: int) -> str:
    """What the Search tab says over an index holding no file, of which ``failed`` files could not be
    indexed: "index a library first" read wrong when one was, and none of its files could be read."""
    if not failed:
        return ("The index holds no files yet: index a library first (soundsift index PATH --index NAME), "
                "then search again.")
    return (f"The index holds no files: the {'file' if failed == 1 else f'{failed:,} files'} indexed could not "
            "be read (the Overview tab's Failed files says why). Index a library of audio files, then search again.")


def render_back_to_text(where: Any) -> None:
    """The "Back to text search" button in ``where`` (st or a column), while the search is by a file,
    the picks or an example."""
    if st.session_state.get("search_by"):
        where.button("Back to text search", on_click=back_to_text, icon=":material/arrow_back:",
                     key="back_to_text")


def render_picks() -> None:
    """The files picked as examples, and "More like these" once there are any. Its place is kept
    while there are none: the first pick drew the row above the cards, moving every card down the
    page's element tree, and the browser stopped and rewound the player being listened to."""
    row = st.container()
    picked = st.session_state.get("picked", {})
    if not picked:
        return
    with row.container(horizontal=True, vertical_alignment="center", gap="small"):
        st.caption(f":material/playlist_add_check: Picked: {', '.join(plain_markdown(n) for n in picked.values())}")
        st.button(f"More like {f'these ({len(picked)})' if len(picked) > 1 else 'this one'}",
                  on_click=more_like_picked, icon=":material/graph_3:", key="more_like_picked",
                  help="Sounds like all the picked files together (soundsift similar A B …)")
        st.button("Clear picks", on_click=clear_picks, key="clear_picks", type="tertiary")


def play_from(hit: Any) -> float:
    """Where a card's player starts: the take's marker when the hit names one, else the match."""
    return hit.marker_at if getattr(hit, "marker", None) else hit.start


def tag_badges(tags: Sequence[dict], colour: str = "blue") -> str:
    """Tags as badges of ``colour``, best first, their labels shown as written."""
    return " ".join(f":{colour}-badge[{plain_markdown(t['label'])}]" for t in tags)


def render_model_tags(tags: HitTags) -> None:
    """A card's model tags: on a match on part of a longer file, "this section:" (blue) and
    "whole file:" (grey) each labelled, as the file's tags describe its whole length, not the
    moment found; else the file's tags alone (blue)."""
    if tags.section is None:
        if tags.whole_file:
            st.markdown(tag_badges(tags.whole_file))
        return
    if tags.section:
        st.markdown(f"this section: {tag_badges(tags.section)}",
                    help="The model's tags of the matched section alone (soundsift tag FILE --timeline --index)")
    if tags.whole_file:
        st.markdown(f"whole file: {tag_badges(tags.whole_file, 'gray')}",
                    help="Tags of the whole recording, which may be about other sounds than the match")


def render_result(rank: int, hit: Any, record: Any, root: str, tags: HitTags,
                  own_tags: CardTags | None = None,
                  more: tuple[float | None, float | None] | None = None,
                  media: resources.CardMedia | None = None, itself: bool = False) -> None:
    """One result card: name, folder, facts, tags (the model's, ``tags``: :func:`render_model_tags`;
    the user's, editable, with ``own_tags``), thumbnail, player, downloads, "more like this" (by
    the span ``more``, by default the card's own: :func:`moment`). ``media``: its thumbnail and audio when already
    read (resources.cards_media), else read here. ``itself``: the card is of the file a "more
    like" search was by, badged "this file"."""
    with st.container(border=True, key=card_key(rank)):       # its keyboard stops: ui.components.keyboard
        info, side = st.columns([5, 6], vertical_alignment="center")
        with info:
            st.markdown(f"**{rank}. {plain_markdown(record.name)}**")
            folder = card_folder(record.folder, root)
            st.caption(f":material/folder: {plain_markdown(folder)} · {card_facts(record, hit)}")
            cut = cut_short_caption(hit)
            if cut:
                st.caption(cut)
            if record.about:
                st.caption(plain_markdown(record.about))
            also = copies_caption(hit, root)
            if also:
                st.caption(also, help="Other names of this recording (hard links, byte-identical copies), "
                                      "one result for all of them")
            if getattr(hit, "marker", None):
                st.markdown(f":violet-badge[:material/bookmark: {plain_markdown(hit.marker)} "
                            f"at {marker_text(hit.marker_at)}]",
                            help="A marker in the file whose name has the query's words; playback starts there")
            if itself:
                st.markdown(":gray-badge[:material/my_location: this file]",
                            help="The file you asked for more like: it matches itself best")
            if getattr(hit, "same_recording", None):
                st.markdown(":orange-badge[:material/content_copy: same recording]",
                            help="A copy of the file you asked for more like: the same recording, "
                                 "maybe in another format or at another level")
            render_model_tags(tags)
            if own_tags is not None:
                render_card_tags(own_tags, rank)
            span = more if more is not None else moment(hit, record.duration)
            st.checkbox("Pick", value=hit.file_id in st.session_state.get("picked", {}), key=f"pick_{hit.file_id}",
                        on_change=toggle_pick, args=(hit.file_id, record.name),
                        help="Pick several results, then search for more like all of them together")
            st.button("More like this", key=f"more_{rank}_{hit.file_id}", on_click=more_like,
                      args=(hit.file_id, record.name, *span),
                      help=more_like_help(hit, span), icon=":material/graph_3:", type="secondary")
        with side:
            if media is None:
                media = resources.card_media(record, hit.start, hit.end, play_from(hit))
            if media.png is not None:
                st.image(media.png, width="stretch")
            if media.error is not None:         # the file cannot be drawn or played now: it says why
                st.warning(media.error, icon=":material/warning:")
                return
            src = media.player
            played = src.seconds(record.duration)
            st.audio(src.data, format=src.mime, start_time=src.start_time, alt=player_label(record.name, played))
            for note in (excerpt_note(src.excerpt_offset, EXCERPT_SECONDS, record.duration),
                         player_length_note(played)):      # its clock says 0:00 / 0:00 under a second
                if note:
                    st.caption(note)
            with st.container(horizontal=True, gap="small"):
                gone = gone_note(record)        # a download of it would fail in the browser unexplained
                if gone:
                    st.caption(gone)
                for n, button in enumerate(downloads(hit, record) if not gone else []):
                    st.download_button(key=f"download_{n}_{rank}_{hit.file_id}", on_click="ignore",
                                       icon=":material/download:", type="tertiary", **button)
