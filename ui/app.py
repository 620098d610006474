"""soundsift's search page (Streamlit). Start it with ``soundsift ui [--index NAME_OR_DIR]``.

The index comes from $SOUNDSIFT_UI_INDEX (set by ``soundsift ui``); the index and its
model are opened once per process and reopened only when the index gets a new
generation, or a new folder (``soundsift index --rebuild``) with its model. The tabs'
logic lives in ui/components/.

The first load reads only what the sidebar and the empty Search tab show. Every file's
vector (SoundIndex.file_vectors: seconds for tens of thousands of files) is read only for the
Overview tab's library map, and that tab runs only while it is open; a result card's tags
read its own file's vector (and, for a match on part of a longer file, that segment's). What they
compute is cached per index generation.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import streamlit as st

from engine.errors import SoundsiftError
from ui.components import resources
from ui.components.library import FilterChoices
from ui.components.overview_tab import OVERVIEW, TAB_KEY, build_map_data, render_overview_tab
from ui.components.page_icon import page_icon
from ui.components.result_tags import HitTags, ResultTagger, is_section, vector_tags
from ui.components.search_tab import render_search_tab
from ui.components.sidebar import FILTERED_TAB, render_filters
from ui.components.tag_tab import render_tag_tab

st.set_page_config(page_title="soundsift", page_icon=page_icon(), layout="wide")    # drawn here: no font fetched


@st.cache_data(show_spinner="Drawing the library map…", max_entries=4)
def _map_data(index_dir: str, generation: str, model: str | None, root: str) -> list[dict]:
    """The map's points; the file vectors they come from are not kept (140 MB at 40,000 files)."""
    fv = resources.sound_index(index_dir, model).file_vectors()
    return build_map_data(fv.file_ids.tolist(), fv.vectors, fv.paths, root)


@st.cache_data(show_spinner=False, max_entries=4)
def _choices(index_dir: str, generation: str, model: str | None) -> FilterChoices:
    """The filters' choices but the tags (:func:`_tag_choices`): every indexed path and the facets,
    read again only for a new generation or metadata."""
    facets = resources.sound_index(index_dir, model).facets()
    lib = resources.library(index_dir)
    return FilterChoices(facets["max_duration"], lib.folders(),
                         [str(f) for f in facets["formats"]], facets["sample_rates"], facets["categories"],
                         facets["channels"], facets["loudness"], silent_files=facets["silent_files"])


@st.cache_data(show_spinner=False, max_entries=4)
def _tag_choices(index_dir: str, tags_generation: str) -> list[str]:
    """The "Tagged" filter's choices: a tag added or taken off reads these again (2 ms at 40,000
    files), not every path and facet (:func:`_choices`: 0.1 s; benchmarks/page_tag_choices.py)."""
    return resources.library(index_dir).user_tag_names()


@st.cache_data(show_spinner=False, max_entries=2000)
def _zero_shot_tags(index_dir: str, generation: str, model: str | None, file_id: int) -> list[dict]:
    """A result's tags from its file's stored vector, read for that file alone (a millisecond;
    every file's vector, SoundIndex.file_vectors, takes seconds at tens of thousands of files)."""
    index = resources.sound_index(index_dir, model)
    try:
        vector = index.file_vector(int(file_id))
    except SoundsiftError:           # gone from the index since the search: no tags
        return []
    return ResultTagger(index, np.array([int(file_id)]), vector[None, :])(file_id)


@st.cache_data(show_spinner=False, max_entries=2000)
def _section_tags(index_dir: str, generation: str, model: str | None, segment_id: int) -> list[dict]:
    """The tags of the section a result matched, from that segment's stored vector (as
    ``soundsift tag FILE --timeline --index`` tags it)."""
    index = resources.sound_index(index_dir, model)
    try:
        vector = index.segment_vector(int(segment_id))
    except SoundsiftError:           # gone from the index since the search: no tags
        return []
    return vector_tags(index, vector)


def main() -> None:
    index_dir = resources.index_dir_from_env()
    model = resources.model_from_env()
    key = str(index_dir)
    try:
        index = resources.sound_index(key, model)  # says how to build a missing index
        index.refresh()        # follows a rebuild; a --model that no longer fits says so here
        lib = resources.library(key)
        generation = lib.generation()
    except SoundsiftError as e:
        st.title("soundsift")
        st.error(f"{e}", icon=":material/error:")
        st.stop()

    # categories come from metadata; tags change between generations, and the files they are on with one
    choices = replace(_choices(key, generation + lib.metadata_stamp(), model),
                      tags=_tag_choices(key, generation + lib.tags_stamp()))
    root = choices.folders[0] if choices.folders else ""
    filters = render_filters(choices, st.session_state.get(TAB_KEY))      # which tab they narrow, said

    def tags_of(hits) -> dict[int, HitTags]:
        """Each result's tags: its whole file's, those `soundsift caption` stored (one catalog
        query for the page), else its file vector's zero-shot ones; for a match on part of a
        longer file, that section's zero-shot ones too."""
        stored = lib.stored_tags([h.file_id for h in hits], top=3)
        return {int(h.file_id): HitTags(
                    stored.get(int(h.file_id)) or _zero_shot_tags(key, generation, model, h.file_id),
                    _section_tags(key, generation, model, h.segment_id)
                    if is_section(h.start, h.end, h.duration) else None)
                for h in hits}

    st.markdown("### :material/graphic_eq: soundsift")
    # on_change="rerun": the tabs report which one is open, so the Overview runs only then
    search, tag, overview = st.tabs([FILTERED_TAB, "Tag", OVERVIEW], key=TAB_KEY, on_change="rerun")
    with search:
        render_search_tab(index, lib, filters, root, tags_of, choices.tags)
    with tag:
        render_tag_tab(index)
    if overview.open:
        with overview:
            render_overview_tab(index, lib, root, lambda: _map_data(key, generation, model, root))


main()
