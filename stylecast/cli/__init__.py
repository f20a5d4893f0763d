"""The `stylecast` command. Each module in this package that defines `register(subparsers)`
adds its subcommands; they are discovered, so adding a command touches no shared file.

Exit codes: 0 success, 1 unexpected failure, 2 bad input or usage, 3 a missing or failing
system dependency, 4 refused for capacity, 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from stylecast import __version__
from stylecast.engine.errors import BackendError, CapacityError, InputError, StylecastError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_INPUT = 2
EXIT_BACKEND = 3
EXIT_CAPACITY = 4
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stylecast",
        description="Stylized talking-head avatars, live: portrait + speaking style + speech "
        "-> a face that speaks, at 30 FPS.",
    )
    parser.add_argument("--version", action="version", version=f"stylecast {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return EXIT_INPUT
    try:
        return int(func(args) or EXIT_OK)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INPUT
    except BackendError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BACKEND
    except CapacityError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_CAPACITY
    except StylecastError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
