"""The technician console: a line protocol over a serial port."""
