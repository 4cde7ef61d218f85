"""Writes for retire and wipe requests, verification evidence, cleanup rules and offboarding. Each
service audits itself and takes an actor.
"""
