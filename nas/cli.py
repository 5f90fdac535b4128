"""The ``nas`` command line: argument parsing and output formatting only; the work is elsewhere."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from search_spaces.errors import NasError

console = Console()
err_console = Console(stderr=True)


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        report_error(f"{message} (see '{self.prog} --help')")
        raise SystemExit(2)


def report_error(message: str) -> None:
    """One line on stderr; the message is shown verbatim (no rich markup, no wrapping)."""
    err_console.print(Text.assemble(("error: ", "bold red"), message), soft_wrap=True)


# -- commands -------------------------------------------------------------------------------------
def cmd_spaces(args: argparse.Namespace) -> int:
    from search_spaces.registry import list_spaces

    table = Table(title="search spaces")
    table.add_column("name", style="bold")
    table.add_column("size", justify="right")
    table.add_column("description")
    for space in list_spaces():
        table.add_row(space.name, f"{space.size:,}", space.description)
    console.print(table)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from nas.archs import describe, resolve_arch

    arch, space = resolve_arch(args.arch, args.space)
    info = describe(arch, space)
    if args.json:
        print(json.dumps(info))
        return 0
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in info.items():
        shown = f"{value:,}" if isinstance(value, int) and key in ("params", "macs") else str(value)
        table.add_row(key, Text(shown))
    console.print(table)
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    import random

    from nas.archs import describe
    from nas.config import parse_overrides
    from search_spaces.registry import load_space

    cfg = parse_overrides(args.overrides, {"space": "mbconv", "n": 5, "seed": 0, "json": False})
    if cfg.n < 1:
        raise NasError(f"n: must be >= 1, got {cfg.n}")
    space = load_space(cfg.space)
    rng = random.Random(cfg.seed)
    archs = [space.canonical(space.sample(rng)) for _ in range(cfg.n)]
    if cfg.json:
        for arch in archs:
            print(json.dumps(describe(arch, space)))
    else:
        for arch in archs:
            print(space.to_string(arch))
    return 0


# -- entry point ----------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nas", description="Hardware-aware neural architecture search for CNNs.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("spaces", help="list the shipped search spaces (name, size, description)")
    p.set_defaults(func=cmd_spaces)

    p = sub.add_parser("show", help="show an architecture: string, params, MACs")
    p.add_argument("arch", help="architecture string, reference model name, or path to an arch file")
    p.add_argument("--space", help="check membership in this space (name or YAML path)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser(
        "sample",
        help="sample architectures from a space: nas sample space=mbconv n=5 seed=0 [json=true]",
    )
    p.add_argument("overrides", nargs="*", metavar="key=value", help="space=S n=N seed=K json=BOOL")
    p.set_defaults(func=cmd_sample)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )
    try:
        return args.func(args)
    except NasError as exc:
        report_error(str(exc))
        return 2
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
