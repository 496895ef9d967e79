"""The listener's music and the box's own: analysis, index, choice, playback, and the composer."""
