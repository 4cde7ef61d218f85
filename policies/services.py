"""Writes for configuration profiles, compliance policies, assignments and their evaluation. Each
service audits itself and takes an actor.
"""
