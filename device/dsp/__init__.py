"""Signal primitives shared by the rooms: filters, glides, oscillators, the limiter, true peak."""
