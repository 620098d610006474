"""The page's favicon, drawn here: a ":material/…:" icon is fetched by the browser from
fonts.gstatic.com on every load, so a page meant to run on an offline studio machine (and
served to localhost only) reached out to Google for it."""
from __future__ import annotations

import functools
from typing import Any

from ui.components.thumbnails import WAVE

#: the bars' heights, as a share of the icon (the graphic_eq glyph's outline)
BARS = (0.35, 0.7, 1.0, 0.6, 0.3)


@functools.lru_cache(maxsize=4)
def page_icon(size: int = 64) -> Any:
    """A ``size``-pixel square PIL image of equaliser bars in the waveform colour, transparent
    around them (st.set_page_config serves it from the page's own server)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    slot = size / len(BARS)
    width = slot * 0.6
    for n, height in enumerate(BARS):
        left = n * slot + (slot - width) / 2
        half = height * size / 2 * 0.95
        draw.rounded_rectangle((left, size / 2 - half, left + width, size / 2 + half), radius=width / 2, fill=WAVE)
    return image
