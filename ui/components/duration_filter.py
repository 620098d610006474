"""The sidebar's duration filter: a slider fine where a sound designer needs it.

Up to a minute it moves in half seconds. A library holding longer files gets stops that grow with
the length (``0.5 s``, ``1 s`` … ``45 s``, ``1:00``, ``1:30`` … ``1:00:00``): a linear slider to an
hour moved in 14-second jumps on a sidebar's width, so "shorter than 2 s" could not be chosen.
"""
from __future__ import annotations

import streamlit as st

from ui.components.times import stop_text

KEY = "f_duration"
HELP = "Only files whose length lies in this range."
#: the longest library (slider_top, seconds) the slider runs through in even half seconds
LINEAR_UP_TO = 60.0
#: the stops below the longest file, seconds
STOPS = (0.5, 1, 1.5, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 45,
         *(60 * m for m in (1, 1.5, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 45)),
         *(3600 * h for h in (1, 1.5, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24)))


def duration_stops(top: float) -> list[float]:
    """The slider's stops up to ``top`` (the longest file rounded up, sidebar.slider_top): 0, the
    :data:`STOPS` below it, and ``top``."""
    return [0.0, *(float(s) for s in STOPS if s < top), float(top)]


def render_duration(top: float) -> tuple[float, float]:
    """Draw the filter for a library whose longest file rounds up to ``top`` s; the range chosen."""
    if top <= LINEAR_UP_TO:         # half seconds, written "12.5" (not Streamlit's "12.50")
        return st.slider("Duration (s)", 0.0, top, (0.0, top), step=0.5, format="%.1f", key=KEY, help=HELP)
    stops = duration_stops(top)
    return st.select_slider("Duration", stops, (stops[0], stops[-1]), format_func=stop_text, key=KEY,
                            help=f"{HELP} The stops grow with the length: half seconds at the short end.")
