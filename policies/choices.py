"""Choices for configuration profiles, compliance policies, assignments and their evaluation."""
