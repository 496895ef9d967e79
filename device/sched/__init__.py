"""The cooperative loop paced by the audio sink, and its clocks."""
