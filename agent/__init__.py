"""remdiag-agent: gathers a PC's health, runs preventive checks and streams results to the collector."""

__version__ = "0.1.0"
