"""Code written as a typed application would write it: type-checked by mypy --strict in CI."""
