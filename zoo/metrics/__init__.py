"""Metrics that compare the zoo's models with their papers."""

from zoo.metrics.fid import FeatureExtractor, fid_kid, frechet_distance, kernel_distance, statistics
from zoo.metrics.parzen import parzen_estimate, parzen_log_likelihoods, select_sigma

__all__ = [
    "FeatureExtractor", "fid_kid", "frechet_distance", "kernel_distance", "statistics",
    "parzen_estimate", "parzen_log_likelihoods", "select_sigma",
]
