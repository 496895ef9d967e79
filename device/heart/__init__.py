"""The heart room: the PPG sample block, beats, heart rate, HRV, breathing, signal quality."""
