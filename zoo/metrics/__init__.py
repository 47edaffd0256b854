"""Metrics that compare the zoo's models with their papers."""

from zoo.metrics.parzen import parzen_estimate, parzen_log_likelihoods, select_sigma

__all__ = ["parzen_estimate", "parzen_log_likelihoods", "select_sigma"]
