"""The sound room: the engine, its mixer and master stage, and the targets it plays.

The voices live in :mod:`device.sound.voices`.
"""
