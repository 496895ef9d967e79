"""Simulated hardware and a simulated listener: product code, so the whole box runs on a laptop."""
