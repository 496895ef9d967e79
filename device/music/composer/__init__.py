"""The composer: music the box writes as it plays, to the listener's heart and breath.

``theme`` (the listener's motif), ``timing`` (tempo from the heart, phrases on the breath),
``harmony`` (modes in just intonation on the pad's tuning, voice leading), ``melody``
(phrases from motifs along the breath's arc), ``form`` (sections and the theme's returns),
``styles`` (instruments, mode, registers), ``score`` (the composer: phrases as note events),
``synth`` (FluidSynth behind a Protocol, imported lazily) and ``voice`` (the engine voice).
See ``docs/sound.md``.
"""
