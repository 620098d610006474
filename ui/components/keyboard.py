"""The result cards' keyboard stops, set in the browser (Streamlit gives widgets no tabindex).

A card drew 12 stops in Chromium (the Tags popover, Pick, Pick's help, More like this, its
waveform's Fullscreen, six in the audio player's own controls, File; Match on a card matching part
of its file). Tab now stops on the card's actions only: Tags, Pick, More like this, the player
(once, as a whole), File and Match. Taken out of the tab order, still there for a mouse and a
screen reader: the help icons (Pick's, a badge's) and the waveform's Fullscreen, and the player's
inner controls (tabindex -1 on them, on its audio element). The box around the player takes
their place, one stop: Space or Enter plays and pauses, the arrows seek. ``j`` / ``k`` move to
the next / previous result's player from anywhere but a text field.
"""
from __future__ import annotations

import streamlit as st

#: a result card's container key (st.container(key=…)): Streamlit gives it the class st-key-<key>
CARD_KEY = "result_{rank}"
#: what the script does with the cards, in words, as the results' heading says it
KEYS_HELP = ("Keyboard: Tab stops on a result's Tags, Pick, More like this, player and downloads; "
             "on the player Space or Enter plays or pauses and ←/→ seek a second; "
             "j / k jump to the next / previous result's player.")
#: seconds an arrow key seeks the player in focus
SEEK_SECONDS = 1

_SCRIPT = """
<style>
[data-soundsift-player]:focus-visible { outline: 2px solid #6e56cf; outline-offset: 2px; border-radius: 1.5rem; }
</style>
<script>
(() => {
  if (window.soundsiftCardKeys) return;      // once per browser page: every rerun draws this again
  window.soundsiftCardKeys = true;
  const CARD = '[class*="st-key-result_"]';
  // help icons ("Help for Pick", a badge's "Help"), the waveform's Fullscreen, the player's controls
  const AUX = 'button[aria-label^="Help"], [data-testid="stBaseButton-elementToolbar"], audio';
  const EDITABLE = 'input:not([type=checkbox]):not([type=radio]), textarea, select, [role=combobox], '
      + '[contenteditable=""], [contenteditable=true]';      // where j and k are typed
  const cards = () => Array.from(document.querySelectorAll(CARD));
  const tidy = () => {
    for (const card of cards()) {
      for (const el of card.querySelectorAll(AUX)) {
        if (el.getAttribute('tabindex') !== '-1') el.setAttribute('tabindex', '-1');
      }
      for (const audio of card.querySelectorAll('audio')) {
        const box = audio.parentElement;
        if (!box) continue;
        const label = `Player: ${audio.getAttribute('aria-label') || 'audio'}`;
        if (box.getAttribute('aria-label') !== label) box.setAttribute('aria-label', label);
        if (!box.hasAttribute('data-soundsift-player')) {
          box.setAttribute('data-soundsift-player', '');
          box.setAttribute('tabindex', '0');
          box.setAttribute('role', 'group');
          box.setAttribute('aria-keyshortcuts', 'Space Enter ArrowLeft ArrowRight');
        }
      }
    }
  };
  let queued = false;
  new MutationObserver(() => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => { queued = false; tidy(); });
  }).observe(document.body, {childList: true, subtree: true});
  tidy();
  const stopOf = (card) => card.querySelector('[data-soundsift-player]')
      || card.querySelector('button:not([tabindex="-1"]), input:not([tabindex="-1"]), a[href]');
  document.addEventListener('keydown', (e) => {
    if (e.altKey || e.ctrlKey || e.metaKey || e.defaultPrevented) return;
    const target = e.target instanceof Element ? e.target : null;
    const box = target && target.matches('[data-soundsift-player]') ? target : null;
    const audio = box && box.querySelector('audio');
    if (audio && (e.key === ' ' || e.key === 'Enter')) {
      e.preventDefault();
      if (audio.paused) audio.play(); else audio.pause();
      return;
    }
    if (audio && (e.key === 'ArrowLeft' || e.key === 'ArrowRight')) {
      e.preventDefault();
      const to = audio.currentTime + (e.key === 'ArrowRight' ? __SEEK__ : -__SEEK__);
      audio.currentTime = Math.max(0, Math.min(to, audio.duration || to));
      return;
    }
    if ((e.key !== 'j' && e.key !== 'k') || (target && target.closest(EDITABLE))) return;
    const all = cards();
    if (!all.length) return;
    const at = target ? all.findIndex((c) => c.contains(target)) : -1;
    const next = e.key === 'j' ? (at < 0 ? 0 : at + 1) : (at < 0 ? all.length - 1 : at - 1);
    if (next < 0 || next >= all.length) return;
    const stop = stopOf(all[next]);
    if (!stop) return;
    e.preventDefault();
    stop.focus({preventScroll: true});
    all[next].scrollIntoView({block: 'center'});
  });
})();
</script>
"""


def card_key(rank: int) -> str:
    """The container key of the result card ranked ``rank`` (:data:`CARD_KEY`)."""
    return CARD_KEY.format(rank=int(rank))


def render_card_keys() -> None:
    """Draw the script that sets the result cards' keyboard stops (module docstring); it installs
    itself once per browser page, however often a rerun draws it."""
    st.html(_SCRIPT.replace("__SEEK__", str(SEEK_SECONDS)), width="content", unsafe_allow_javascript=True)
