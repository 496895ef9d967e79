"""Bedside: a bedside box that reads the listener's pulse and plays calming, heart-aware sound.

``import device`` is cheap and works on any machine: hardware libraries (smbus2, pyaudio,
RPi.GPIO) and numpy are imported only by the parts that need them, when they need them.
"""

__version__ = "0.1.0"

#: Product name reported by ``ID?`` and ``bedside --version``.
PRODUCT = "Bedside"
