"""The device agent: a reference client of the portal's agent protocol (``/agent/v1/``).

Plain Python standard library only, so it runs on a bare Linux host; it never imports Django or
anything from the portal. ``client`` speaks the protocol, ``inventory`` reads the real Linux host,
``executor`` runs commands on it, ``state`` persists the enrolment, and ``simulator`` emulates a
fleet of devices of every platform for tests and benchmarks.
"""

__version__ = "0.1.0"
