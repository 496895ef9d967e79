"""The engine's voices, in mixing order: where a voice registers.

Each entry builds one :class:`~device.dsp.voice.Voice` from the engine's
:class:`~device.dsp.voice.VoiceContext`. A new voice is a new module with its class, its
level field ``<name>_db`` in ``device/dsp/targets.py`` (``SoundTargets`` and ``CHECKS``),
and one line here (see ``docs/sound.md``).
"""

from __future__ import annotations

from device.dsp.noise import NoiseBed
from device.dsp.pad import PadVoice
from device.dsp.tones import ToneVoice
from device.dsp.voice import VoiceContext, VoiceFactory
from device.music.composer.voice import ComposerVoice


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
