"""Signal processing: the sound engine and its voices, and the heart analysis of the PPG."""
