"""The health-aware resilience strategies: circuit breaker and retry budget (issue 12)."""
