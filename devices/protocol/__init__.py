"""The device agent protocol (``/agent/v1/``); documented in ``docs/agent-protocol.md``."""
