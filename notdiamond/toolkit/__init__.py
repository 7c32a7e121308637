"""Compatibility with the original SDK's module layout (``notdiamond.toolkit._retry``)."""
