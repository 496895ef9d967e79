"""The engine's voices, in mixing order: where a voice registers.

Each entry builds one :class:`~device.sound.voice.Voice` from the engine's
:class:`~device.sound.voice.VoiceContext`. A new voice is a new module with its class, its
level field ``<name>_db`` in ``device/sound/targets.py`` (``SoundTargets`` and ``CHECKS``),
and one line here (see ``docs/sound.md``).
"""

from __future__ import annotations

from device.music.composer.voice import ComposerVoice
from device.sound.voice import VoiceContext, VoiceFactory
from device.sound.voices.noise import NoiseBed
from device.sound.voices.pad import PadVoice
from device.sound.voices.tones import ToneVoice


def _tones(ctx: VoiceContext) -> ToneVoice:
    return ToneVoice(ctx.entrainment)


def _pad(ctx: VoiceContext) -> PadVoice:
    return PadVoice(ctx.swell, ctx.seed)


def _noise(ctx: VoiceContext) -> NoiseBed:
    return NoiseBed(ctx.seed)


def _composer(ctx: VoiceContext) -> ComposerVoice:
    return ComposerVoice(ctx.swell, ctx.seed)


#: The voices every engine plays unless it is given others.
BUILTIN_VOICES: tuple[VoiceFactory, ...] = (_tones, _pad, _noise, _composer)
