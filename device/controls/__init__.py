"""The box's own hardware on GPIO: buttons, the status LED and the amplifier enable."""
