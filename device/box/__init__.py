"""The application core: the Box, its assembly, session runner, loop tasks, health, status."""
