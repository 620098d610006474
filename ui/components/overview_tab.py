"""The Overview tab: model, counts, the library map (click a point to play), duplicates on
request, and failed files. The page runs it only while the tab is open (ui/app.py), and the
map, the one costly part (seconds for tens of thousands of files), is drawn last."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import streamlit as st

from engine.layout import index_option
from ui.components import resources
from ui.components.downloads import library_sheet_download
from ui.components.library import Library, relative_to_root
from ui.components.library_map import (MAP_COLOURS, MAP_SCHEME, colour_by_folder, map_rows, pca_2d,
                                       selected_file_id)
from ui.components.markdown_text import plain_markdown
from ui.components.times import seconds_text

TAB_KEY = "tab"                 # session key of the page's tabs: the label of the open one
OVERVIEW = "Overview"           # this tab's label
MAP_KEY = "library_map"
MAP_PICK = "map_file_id"        # file id of the point last picked on the map
MAX_MAP_POINTS = 20_000
#: rows of the Failed files table: the latest ones; `soundsift info --errors N --json` lists them all
FAILED_SHOWN = 200
DUPLICATES = "duplicates"       # session key: (generation, rows, files compared, unreadable) of the last search


def on_map_select() -> None:
    fid = selected_file_id(st.session_state.get(MAP_KEY))
    if fid is not None:
        st.session_state[MAP_PICK] = fid


def render_overview_tab(index: Any, lib: Library, root: str, map_data: Callable[[], list[dict]]) -> None:
    """Draw model facts, counts, the map and the failed files. ``map_data`` gives the map's
    points (ui/app.py caches them per index generation); it is called after the rest is drawn,
    so the counts, duplicates and failed files show while the map is computed."""
    info = index.info()
    n_failed = int(info.get("errors") or 0)
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Files", f"{int(info.get('files') or 0):,}")
    c2.metric("Segments", f"{int(info.get('segments') or 0):,}")
    c3.metric("Failed files", f"{n_failed:,}")
    c4.metric("Dimensions", f"{info.get('dim', '?')}")
    st.caption(f"Model **{info.get('model', '?')}** · {info.get('sample_rate', '?')} Hz · "
               f"{info.get('index_type', '?')} · generation {info.get('generation', '?')} · "
               f"index at `{info.get('index', lib.layout.root)}`")
    st.download_button(**library_sheet_download(str(lib.layout.root), int(info.get("files") or 0)),
                       key="download_library_sheet")

    st.subheader("Library map")
    map_box = st.container()

    render_duplicates(index, lib, root)

    render_failed(index, n_failed, str(info.get("index") or lib.layout.root))

    with map_box:
        rows = map_data()
        if len(rows) < 2:
            st.caption("The map needs at least two indexed files.")
        else:
            render_map(rows)
            pick = st.session_state.get(MAP_PICK)
            if pick is not None:
                play_picked(lib, root, int(pick))


def render_failed(index: Any, n_failed: int, index_dir: str) -> None:
    """The files that could not be indexed, newest first: the latest :data:`FAILED_SHOWN` of
    ``n_failed`` (a library of thousands of broken files was one table of every row), and the
    command listing them all."""
    st.subheader(f"Failed files ({n_failed:,})")
    if not n_failed:
        st.caption("Every file was indexed.")
        return
    failed = index.errors(limit=FAILED_SHOWN)
    st.dataframe([{"path": f["path"], "reason": f["reason"]} for f in failed], hide_index=True, width="stretch")
    note = failed_note(len(failed), n_failed, index_dir)
    if note:
        st.caption(note)


def failed_note(shown: int, n_failed: int, index_dir: str) -> str | None:
    """The caption under a Failed files table showing ``shown`` of ``n_failed`` rows: how many more
    there are and the command listing every one; None when all are shown."""
    rest = n_failed - shown
    if rest <= 0:
        return None
    return (f"The latest {shown:,} shown; {rest:,} more {'is' if rest == 1 else 'are'} listed by "
            f"`soundsift info --index {index_option(index_dir)} --errors {n_failed} --json`.")


def map_chart(rows: list[dict]) -> Any:
    """The map's Altair chart: the files, coloured by folder, or by top-level folder where there
    are more folders than colours (library_map.colour_by_folder, the legend title saying so);
    hover names a file and its folder in full, clicking picks one."""
    import altair as alt
    import pandas as pd

    title, entries = colour_by_folder(rows)
    frame = pd.DataFrame(rows)
    pick = alt.selection_point(name="pick", fields=["file_id"], on="click")
    return (alt.Chart(frame).mark_circle(size=70, opacity=0.85)
            .encode(x=alt.X("x:Q", axis=None), y=alt.Y("y:Q", axis=None),
                    color=alt.Color("colour:N", sort=entries, scale=alt.Scale(scheme=MAP_SCHEME),
                                    legend=alt.Legend(title=title, orient="right")),
                    tooltip=[alt.Tooltip("name:N", title="File"), alt.Tooltip("folder:N", title="Folder")],
                    size=alt.condition(pick, alt.value(140), alt.value(60)))
            .add_params(pick).properties(height=380))


def render_map(rows: list[dict]) -> None:
    """The map (:func:`map_chart`) and how to read it."""
    chart = map_chart(rows)
    st.altair_chart(chart, key=MAP_KEY, on_select=on_map_select, selection_mode="pick",
                    width="stretch")
    grouped = any(r["colour"] != r["folder"] for r in rows)
    st.caption("Files that sound alike lie close together (PCA of the file vectors). "
               + (f"Coloured by top-level folder: more folders than the {MAP_COLOURS} colours. " if grouped else "")
               + "Hover a point for its name and folder; click it to listen.")


def play_picked(lib: Library, root: str, file_id: int) -> None:
    """Play the file picked on the map, looked up by id in the catalog."""
    from engine.errors import SoundsiftError
    try:
        record = lib.file(file_id)
        src = resources.player(record, 0.0)
    except SoundsiftError as e:
        st.warning(str(e), icon=":material/warning:")
        return
    st.markdown(f"**{plain_markdown(record.name)}** · {seconds_text(record.duration)}")
    st.audio(src.data, format=src.mime, start_time=src.start_time)


def render_duplicates(index: Any, lib: Library, root: str) -> None:
    """Groups of files holding the same recording (engine.duplicates), found on request: it
    decodes the candidate pairs, seconds for a few thousand files, minutes for tens of thousands."""
    from engine.duplicates import find_duplicates

    st.subheader("Duplicates")
    generation = lib.generation()
    done = st.session_state.get(DUPLICATES)
    if st.button("Find duplicates", key="find_duplicates", icon=":material/content_copy:",
                 help="Copies, and the same recording in another format, at another gain or rate: "
                      "proposed by the stored vectors, confirmed on the audio."):
        fv = index.file_vectors()
        bar = st.progress(0.0, text="comparing files")

        def progress(i: int, n: int) -> None:          # about a hundred updates, not one a pair
            if i == n or i % max(1, n // 100) == 0:
                bar.progress(i / n if n else 1.0, text=f"comparing pair {i:,} of {n:,}")
        report = find_duplicates(fv.paths, fv.vectors, fv.durations, fv.sizes, progress=progress)
        bar.empty()
        rows = [{"group": n, "file": relative_to_root(path, root), "format": form, "duration (s)": round(d, 2),
                 "difference (dB)": round(g.difference_db, 2), "identical bytes": g.identical,
                 "keep": path == g.keep, "hard link": g.is_link(path)}
                for n, g in enumerate(report.groups, 1)
                for path, d, form in zip(g.paths, g.durations, g.formats)]
        unread = [f"{relative_to_root(e.path, root)}: {e.reason}" for e in report.unreadable]
        done = st.session_state[DUPLICATES] = (generation, rows, report.files, unread)
    if done is None or done[0] != generation:
        st.caption("Look for files that hold the same recording twice.")
        return
    if not done[1]:
        st.caption(f"No duplicates among {done[2]:,} files.")
    else:
        groups = done[1][-1]["group"]
        st.caption(f"{groups} {'group' if groups == 1 else 'groups'} of duplicates among {done[2]:,} files, "
                   "closest first.")
        st.dataframe(done[1], hide_index=True, width="stretch")
    if done[3]:
        n = len(done[3])
        st.warning(plain_markdown(f"{n} {'file' if n == 1 else 'files'} could not be read to compare "
                                  f"{'it' if n == 1 else 'them'}: {done[3][0]}" + (" …" if n > 1 else "")),
                   icon=":material/warning:")


def build_map_data(file_ids: Sequence[int], vectors: Any, paths: Sequence[str], root: str) -> list[dict]:
    """Map points for the files (at most MAX_MAP_POINTS, evenly picked): ``file_ids``,
    ``vectors`` and ``paths`` as SoundIndex.file_vectors gives them, read from one catalog
    snapshot (so no look-up by id is needed)."""
    import numpy as np

    vectors = np.asarray(vectors, dtype=np.float32)
    ids, paths = list(file_ids), list(paths)
    if len(ids) > MAX_MAP_POINTS:
        keep = np.linspace(0, len(ids) - 1, MAX_MAP_POINTS).round().astype(int)
        ids = [ids[i] for i in keep]
        paths = [paths[i] for i in keep]
        vectors = vectors[keep]
    xy = pca_2d(vectors) if ids else np.zeros((0, 2), np.float32)
    return map_rows(ids, paths, xy, root=root)
