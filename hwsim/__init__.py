"""Hardware configs and presets, energy tables, the discrete-event engine, results, the CLI."""

__version__ = "0.1.0"
