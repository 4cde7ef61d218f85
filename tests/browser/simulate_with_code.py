"""``python -m agent simulate`` for one device that enrols with a Company Portal code, not a token.

The simulator enrols with a bulk token; a person enrolling their own device gets a one-time code
in the Company Portal instead. This runs the same simulator (same devices, check-ins, commands,
drift) and hands the code to the agent client's enrolment where the simulator gives its token.
Usage: ``python -m tests.browser.simulate_with_code --code K7QM-P2XD --server URL --devices 1 ...``
"""

from __future__ import annotations

import sys

from agent import __main__ as cli
from agent.client import AgentClient

_enroll = AgentClient.enroll


def _enroll_with_code(self, token=None, code=None, **kwargs):
    return _enroll(self, code=token if code is None else code, **kwargs)


def main(argv: list[str]) -> int:
    if "--code" not in argv:
        print("Give --code (the enrolment code the Company Portal shows).", file=sys.stderr)
        return cli.EXIT_USAGE
    argv = ["simulate", *["--token" if arg == "--code" else arg for arg in argv]]
    AgentClient.enroll = _enroll_with_code
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
