"""Subcommands of `cofrida` other than benchmarks: one module each, with ``main(argv) -> int``.

They are registered in `cofrida.cli.COMMANDS` and imported only when chosen.
"""
