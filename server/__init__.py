"""The coordinator: ServerApp, strategy assembly, run directory, reports, fedlife-coord."""
