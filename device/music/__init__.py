"""The music room: the listener's tracks measured, indexed, chosen, decoded, played."""
