"""Argument types for the agent's command line: a wrong value is a one-line usage error, not a traceback."""

from __future__ import annotations

import argparse
import math

from agent.client import check_server_url


def positive(value: str) -> float:
    """A number of seconds, 0 or more (argparse type)."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{value}' is not a number") from None
    if not math.isfinite(number) or number < 0:
        raise argparse.ArgumentTypeError(f"'{value}' must be a number, 0 or more")
    return number


def timeout(value: str) -> float:
    """A number of seconds, more than 0 (argparse type)."""
    number = positive(value)
    if number == 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return number


def count(value: str) -> int:
    """A whole number, 1 or more (argparse type)."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{value}' is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"'{value}' must be 1 or more")
    return number


def rate(value: str) -> float:
    """A chance between 0 and 1 (argparse type)."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{value}' is not a number") from None
    if not 0 <= number <= 1:
        raise argparse.ArgumentTypeError(f"'{value}' must be between 0 and 1")
    return number


def server_url(value: str) -> str:
    """A portal URL, http(s)://host[:port] (argparse type)."""
    try:
        check_server_url(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value
