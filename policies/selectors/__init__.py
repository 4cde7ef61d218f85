"""Reads of the configuration and compliance stage, each restricted to what the person asking may see."""
