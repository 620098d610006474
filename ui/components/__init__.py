"""Pieces of the Streamlit page (ui/app.py), importable and testable without Streamlit.

library     catalog look-ups by file id (the only way a path reaches the page)
thumbnails  waveform PNGs
player      what the audio player is given for a file and a start time
uploads     query-by-example uploads: size check, decode in memory
library_map 2-D projection of file vectors
links       shareable search addresses (?q=…)
server      starting `streamlit run ui/app.py` on an index
keyboard    the result cards' Tab stops and j / k between results (a script in the browser)
"""
