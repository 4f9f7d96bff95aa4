"""Subcommands of `cofrida` other than benchmarks: one module each, with ``main(argv) -> int``.

They are registered in `cofrida.cli.COMMANDS` and imported only when chosen.
"""

from __future__ import annotations

import argparse


def parser_from_doc(prog: str, doc: str) -> argparse.ArgumentParser:
    """A parser whose description is the module docstring's first line and whose epilog (shown
    verbatim by ``--help``) is the rest of it: the examples."""
    return argparse.ArgumentParser(
        prog=prog,
        description=doc.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(doc.splitlines()[2:]),
    )
