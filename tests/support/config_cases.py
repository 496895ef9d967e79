"""Hostile configuration files of issue #16 item 6, each with the key its error must name."""

from __future__ import annotations

#: ``(file text, section.key)``: each must fail ``config check`` naming that key.
HOSTILE = [
    ("[therapy]\nprogram = 'sleeep'\n", "therapy.program"),
    ("[therapy]\nprogram = '" + "x" * 300 + "'\n", "therapy.program"),
    ("[sensor]\nsample_rate_sps = 800\naveraging = 8\n", "sensor.pulse_width_us"),
    ("[audio]\nvolume_db = -1" + "0" * 400 + "\n", "audio.volume_db"),
    ("[audio]\nvolume_db = " + "[" * 50_000 + "]" * 50_000 + "\n", "audio.volume_db"),
    ("[audio]\nbuffer_blocks = " + "9" * 5000 + "\n", "audio.buffer_blocks"),
    ('[console]\nport = "a\\nb"\n', "console.port"),
]
