"""On-demand diagnostics and safe L1 remediation on this machine: named actions, nothing else.

registry.py lists the actions; runner.py refuses, runs, caps and records a request;
history.py keeps what ran. The collector imports registry.catalog() and validate_args().
"""
