"""Benchmarks of notdiamond: success-path overhead and behaviour against the alternatives.

Run ``python -m benchmarks`` (or ``nox -s bench``); see ``benchmarks/README.md``. This package
imports nothing heavy: the original SDK's runner imports its modules from another virtualenv.
"""
