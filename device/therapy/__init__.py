"""Therapy programs (timelines) and the heart-aware closed loop."""
