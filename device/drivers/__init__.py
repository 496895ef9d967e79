"""Hardware drivers. Each takes an injected backend (I2C bus, GPIO, audio sink, serial port);
the real backends import their libraries lazily, the simulated ones ship here as product code."""
