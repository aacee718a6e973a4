"""Evaluation: protocols, metrics, traces, reports."""
