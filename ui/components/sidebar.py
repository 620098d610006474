"""The sidebar's filters: duration, folder, format, sample rate, channels, loudness, category, tags →
engine.filters.Filters."""
from __future__ import annotations

import math
from typing import Sequence

import streamlit as st

from engine.filters import Filters, channel_name
from engine.loudness import ABSOLUTE_GATE
from ui.components.duration_filter import render_duration
from ui.components.library import FilterChoices, folder_prefix, relative_to_root
from ui.components.markdown_text import plain_markdown

ALL_FOLDERS = "(whole library)"
FILTERED_TAB = "Search"         # the page's tab the filters narrow (ui/app.py's first tab)
#: the sidebar's one line over an index holding no file (none indexed yet, or none readable)
NOTHING_TO_FILTER = "Nothing to filter yet: the index holds no files."


def filters_from_choices(duration: tuple[float, float] | None, longest: float, folder: str | None,
                         formats: list[str], rates: list[int], categories: Sequence[str] = (),
                         channels: Sequence[int] = (), loudness: tuple[float, float] | None = None,
                         loudness_range: tuple[float, float] | None = None, tags: Sequence[str] = (),
                         silent_files: int = 0) -> Filters:
    """Filters for the sidebar's values; a slider left at its full range filters nothing (the
    loudness slider's left end keeps the ``silent_files`` too: :func:`loudness_slider`)."""
    lo = hi = None
    if duration is not None:
        top = slider_top(longest)
        lo = float(duration[0]) if duration[0] > 0 else None
        hi = float(duration[1]) if duration[1] < top else None
    prefix = folder_prefix(folder) if folder and folder != ALL_FOLDERS else None
    quiet = loud = None
    if loudness is not None and loudness_range is not None:       # a slider end left where it was: no bound
        low, high = loudness_slider(loudness_range, silent_files)
        quiet = float(loudness[0]) if loudness[0] > low else None
        loud = float(loudness[1]) if loudness[1] < high else None
    return Filters(min_duration=lo, max_duration=hi, path_prefix=prefix,
                   formats=tuple(formats), sample_rates=tuple(int(r) for r in rates), categories=tuple(categories),
                   channels=tuple(int(c) for c in channels), min_loudness=quiet, max_loudness=loud,
                   tags=tuple(tags))


def loudness_slider(measured: tuple[float, float], silent_files: int = 0) -> tuple[float, float]:
    """The loudness slider's ends: the quietest and loudest measured file, to whole LU outwards,
    and one step further left when there are ``silent_files`` (silent or under the −70 LUFS gate,
    which a loudness filter counts below any range): the left end keeps them, its next stop,
    the quietest measured file's, leaves them out and nothing else."""
    return float(math.floor(measured[0]) - (1 if silent_files else 0)), float(math.ceil(measured[1]))


def loudness_help(silent_files: int) -> str:
    """The loudness slider's help: what it keeps, and where the ``silent_files`` go."""
    text = ("Only files whose loudness (ITU-R BS.1770, measured when indexed) lies "
            "in this range: quiet room tones at the left, hot takes at the right.")
    if silent_files:
        files = f"{silent_files} file{'' if silent_files == 1 else 's'}"
        text += (f" {files} silent or under {ABSOLUTE_GATE:.0f} LUFS count as quieter than any: the left end "
                 "keeps them, one step right leaves them out.")
    return text


def slider_top(longest: float) -> float:
    """The duration slider's upper end: the longest file, rounded up to a whole second."""
    return float(max(1, math.ceil(longest)))


def slider_format(step: float) -> str:
    """A slider's number format for its step: "%.1f" for half seconds, "%.0f" for whole seconds or LU
    (Streamlit's default writes every float with two decimals: "-29.00")."""
    return "%.0f" if float(step).is_integer() else "%.1f"


def filters_scope(open_tab: str | None) -> str:
    """The caption under the filters' header: which tab they narrow, and that the open one (the
    Tag tab, the Overview) is not, when it is another."""
    if open_tab is None or open_tab == FILTERED_TAB:
        return f"They narrow the {FILTERED_TAB} tab's results."
    return f":material/info: They narrow the {FILTERED_TAB} tab's results only: the {open_tab} tab is not filtered."


def folder_choices(folders: Sequence[str]) -> list[str]:
    """The Folder box's options: the whole library, then every folder below its root (the root,
    ``folders[0]``, is the whole library again)."""
    return [ALL_FOLDERS, *folders[1:]]


def render_filters(choices: FilterChoices, open_tab: str | None = None) -> Filters:
    """Draw the filters in the sidebar and return what they select; ``open_tab``: the label of the
    page's open tab (None: the first, Search)."""
    with st.sidebar:
        st.header("Filters")
        if not choices.folders:         # no indexed file: a 0–1 s slider and empty boxes said nothing
            st.caption(NOTHING_TO_FILTER)
            return Filters()
        st.caption(filters_scope(open_tab))
        duration = render_duration(slider_top(choices.max_duration))      # ui/components/duration_filter
        root = choices.folders[0] if choices.folders else ""
        folder = st.selectbox(
            "Folder", folder_choices(choices.folders), key="f_folder",
            format_func=lambda f: f if f == ALL_FOLDERS else relative_to_root(f, root),
            help="Only files inside this folder (and its subfolders)"
                 + (f"; the whole library is {plain_markdown(root)}." if root else "."))
        formats = st.multiselect("Format", choices.formats, key="f_formats",
                                 placeholder="any format")
        rates = st.multiselect("Sample rate", choices.sample_rates, key="f_rates",
                               format_func=lambda r: f"{r / 1000:g} kHz", placeholder="any rate")
        channels = (st.multiselect("Channels", choices.channels, key="f_channels", format_func=channel_name,
                                   placeholder="any", help="Only files with these channel counts.")
                    if len(choices.channels) > 1 else [])
        loudness = None
        if choices.loudness is not None:
            low, high = loudness_slider(choices.loudness, choices.silent_files)
            if high > low:
                loudness = st.slider("Loudness (LUFS)", low, high, (low, high), step=1.0, format=slider_format(1.0),
                                     key="f_loudness", help=loudness_help(choices.silent_files))
        categories = (st.multiselect("Category", choices.categories, key="f_categories", placeholder="any category",
                                     help="The library category files carry (UCS, from their iXML or FLAC metadata).")
                      if choices.categories else [])
        tags = (st.multiselect("Tagged", choices.tags, key="f_tags", placeholder="any file",
                               help="Only files carrying one of these tags of yours (a card's Tags button, or "
                                    "soundsift tags add).")
                if choices.tags else [])
        filters = filters_from_choices(duration, choices.max_duration, folder, formats, rates, categories, channels,
                                       loudness, choices.loudness, tags, choices.silent_files)
        if filters.active:
            st.caption("Filters are on: results come only from the files they keep.")
    return filters
