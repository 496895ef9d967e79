"""The keys of the store's preferences: what the box learns of each listener profile.

One prefix per thing learnt, followed by the profile's name; every room that reads or
writes a preference takes its key from here.
"""

from __future__ import annotations

#: The personalisation's bandit state (which sounds work): ``bandit:<profile>``.
BANDIT_PREFIX = "bandit:"
#: The track chooser's learnt taste in the listener's music: ``tracks:<profile>``.
TRACKS_PREFIX = "tracks:"
#: The resonance estimate (the breathing rate the heart swings most at): ``resonance:<profile>``.
RESONANCE_PREFIX = "resonance:"


def bandit_key(profile: str) -> str:
    """The preference key of ``profile``'s bandit state."""
    return BANDIT_PREFIX + profile


def tracks_key(profile: str) -> str:
    """The preference key of ``profile``'s taste in tracks."""
    return TRACKS_PREFIX + profile


def resonance_key(profile: str) -> str:
    """The preference key of ``profile``'s resonance estimate."""
    return RESONANCE_PREFIX + profile
