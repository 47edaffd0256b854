"""Metrics that compare the zoo's models with their papers."""

from zoo.metrics.callbacks import FIDCallback, MAPCallback, NLLCallback
from zoo.metrics.classifier import domain_classifier
from zoo.metrics.fid import FeatureExtractor, InceptionExtractor, fid_kid, frechet_distance, kernel_distance, statistics
from zoo.metrics.loglik import ais_log_likelihood, grid_log_likelihood, iwae_log_likelihood
from zoo.metrics.parzen import parzen_estimate, parzen_log_likelihoods, select_sigma
from zoo.metrics.retrieval import (
    mean_average_precision, precision_at_k, precision_recall_curve, precision_within_radius,
)

__all__ = [
    "FeatureExtractor", "InceptionExtractor", "fid_kid", "frechet_distance", "kernel_distance", "statistics",
    "parzen_estimate", "parzen_log_likelihoods", "select_sigma",
    "mean_average_precision", "precision_at_k", "precision_recall_curve", "precision_within_radius",
    "ais_log_likelihood", "iwae_log_likelihood", "grid_log_likelihood",
    "FIDCallback", "MAPCallback", "NLLCallback", "domain_classifier",
]
