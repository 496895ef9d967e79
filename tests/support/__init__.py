"""Helpers the tests share: doubles, fixtures' machinery, generated signals and tracks."""
