"""The box around the sound: systemd integration, buttons, LED and amplifier enable."""
