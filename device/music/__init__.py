"""The music room: the listener's tracks measured, indexed, chosen, decoded, played; and the
music the box composes itself (``device.music.composer``)."""
