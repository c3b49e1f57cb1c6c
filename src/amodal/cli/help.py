"""The argparse commands' help from their module docstring: its first paragraph is the description, the
rest the examples shown under it."""

from __future__ import annotations

import argparse
import textwrap


def documented_parser(prog: str, doc: str) -> argparse.ArgumentParser:
    """A parser whose ``--help`` says ``doc``'s first paragraph, rewrapped, then ``examples:`` and the rest."""
    description, _, examples = doc.partition("\n\n")
    return argparse.ArgumentParser(prog=prog, description=textwrap.fill(" ".join(description.replace("``", "").split()),
                                                                        width=88),
                                   epilog="examples:\n" + examples.rstrip(),
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
