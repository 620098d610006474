"""A result card's own tags: shown as badges, edited in a popover (indexer.user_tags)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import streamlit as st

from engine.errors import SoundsiftError
from ui.components.markdown_text import plain_markdown

ERROR_KEY = "user_tags_error"


@dataclass(frozen=True)
class CardTags:
    """What one card needs to show and edit the user's tags of its file."""

    index_root: Path
    file_id: int
    tags: tuple[str, ...] = ()
    known: tuple[str, ...] = field(default=())      # every user tag of the library, to pick from
    name: str = ""                                  # the file's name, as its card shows it


def save_tags(card: CardTags, key: str) -> None:
    """The popover's selection changed: store what was added and take off what was removed."""
    from indexer.user_tags import add_tags, remove_tags

    chosen = [str(t) for t in st.session_state.get(key) or []]
    added = [t for t in chosen if t not in card.tags]
    removed = [t for t in card.tags if t not in chosen]
    try:
        changes = [change(card.index_root, [card.file_id], tags)
                   for change, tags in ((add_tags, added), (remove_tags, removed)) if tags]
    except SoundsiftError as e:
        st.session_state[ERROR_KEY] = f"Tags not saved: {e}"
        return
    if any(c.not_indexed for c in changes):         # stored nothing: the file left the index meanwhile
        st.session_state[ERROR_KEY] = not_indexed_message(card)


def not_indexed_message(card: CardTags) -> str:
    """What the page says when a card's tags could not be stored because its file is no longer in
    the index: the library was re-indexed since the card was drawn (the file moved, renamed or
    deleted), and indexer.user_tags stores nothing for a file id it no longer holds."""
    named = f"{plain_markdown(card.name)} (file id {card.file_id})" if card.name else f"file id {card.file_id}"
    return (f"Tags not saved: {named} is no longer in the index: the library was re-indexed since the "
            "results were shown, and the file was moved, renamed or deleted. Search again.")


def tag_choices(card: CardTags) -> list[str]:
    """The popover's choices, A–Z: the file's tags as it carries them, then the library's others,
    one per tag (indexer.user_tags.tag_key: a file's "Keeper" stands for the library's "keeper")."""
    from indexer.user_tags import tag_key

    own = {tag_key(t) for t in card.tags}
    return sorted([*card.tags, *(t for t in dict.fromkeys(card.known) if tag_key(t) not in own)], key=str.lower)


def render_card_tags(card: CardTags, rank: int) -> None:
    """The file's tags as badges, and a "Tags" popover to add or remove them."""
    badges = st.container()     # always drawn: the popover keeps its place when the first tag is added
    if card.tags:
        badges.markdown(" ".join(f":green-badge[:material/sell: {plain_markdown(t)}]" for t in card.tags))
    key = f"user_tags_{rank}_{card.file_id}_{len(card.tags)}_{hash(card.tags)}"
    with st.popover("Tags", icon=":material/sell:", help="Your own tags on this file: searches find it by "
                    "them, and the sidebar's Tagged filter keeps only files with them (soundsift tags add)"):
        st.multiselect("Tags of this file", tag_choices(card),
                       default=list(card.tags), key=key, accept_new_options=True,
                       placeholder="type a tag and press Enter", on_change=save_tags, args=(card, key))


def show_tag_error() -> None:
    """Say once that the last tag edit could not be stored (e.g. an index run holds the index)."""
    message = st.session_state.pop(ERROR_KEY, None)
    if message:
        st.toast(message, icon=":material/error:")
