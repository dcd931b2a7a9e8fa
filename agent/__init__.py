"""remdiag-agent: watches a PC's health with preventive checks, streams results to the collector."""

__version__ = "0.1.0"
