"""chaos: the fault-injection harness that proves the runtime statistically (``python -m chaos``).

See ``chaos/README.md``.
"""
