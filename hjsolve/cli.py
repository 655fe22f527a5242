"""The ``hjsolve`` command line (DESIGN §4): run, validate, figures, cases.

A user's mistake (any `HJSolveError`, a usage error) ends with one line on stderr,
``hjsolve: error: <reason>``, and exit status 2; Ctrl-C ends with status 130.
"""
import argparse
import os
import shutil
import sys
import tempfile
import tomllib
import warnings
from pathlib import Path

from . import __version__
from .case import load_case
from .errors import CaseError, HJSolveError
from .solution import SUMMARY_KEYS
from .solvers import METHODS, solve
from .validate import format_table, format_value, validate_case

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line (and exit status 2, as usual)."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {_one_line(message)} (see '{self.prog} --help')\n")


def build_parser():
    """The ``hjsolve`` argument parser with its four subcommands."""
    parser = _Parser(prog="hjsolve", description="Reward fine-tuning of diffusion models as stochastic control.")
    parser.add_argument("--version", action="version", version=f"hjsolve {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="solve a case; write solution.npz, summary.json and figures")
    _case_arguments(run)
    run.add_argument("--method", help=f"solver (default: the case's [solver] method); one of {', '.join(METHODS)}")
    run.add_argument("--out", metavar="DIR", help="output folder (default: the case's [output] dir)")
    run.set_defaults(handler=command_run)

    check = commands.add_parser("validate", help="check every method of a case against the exact solution")
    _case_arguments(check)
    check.add_argument("--methods", metavar="M[,M...]", type=_method_list, default=list(METHODS),
                       help=f"comma-separated methods to check (default: all of {', '.join(METHODS)})")
    check.set_defaults(handler=command_validate)

    figures = commands.add_parser("figures", help="regenerate the figures of the figures/ folder")
    figures.add_argument("--out", metavar="DIR", default="figures", help="output folder (default: figures)")
    figures.set_defaults(handler=command_figures)

    cases = commands.add_parser("cases", help="list the bundled case files")
    cases.set_defaults(handler=command_cases)
    return parser


def _method_list(text):
    """The methods of a comma-separated ``--methods`` value (an argparse type)."""
    methods = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in methods if name not in METHODS]
    if unknown or not methods:
        raise argparse.ArgumentTypeError(f"unknown method(s) {unknown or text!r} (expected some of {', '.join(METHODS)})")
    return methods


def _case_arguments(parser):
    parser.add_argument("case", metavar="CASE", help="case file (TOML, see cases/)")
    parser.add_argument("--set", metavar="KEY=VALUE", action="append", default=[], dest="overrides",
                        help="override a case value, e.g. --set finetune.alpha=0.2 (repeatable)")


def main(argv=None):
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors (already printed)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            return args.handler(args)
        except HJSolveError as exc:
            return _fail(str(exc))
        except KeyboardInterrupt:
            print("hjsolve: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED


# --------------------------------------------------------------------------- commands


def command_run(args):
    """Solve the case, print its summary, write the solution and figures into the output folder."""
    case = load_case(args.case, overrides=args.overrides)
    method = _checked_method(args.method or case.method, case.source)
    out = _checked_output(Path(args.out or case.output_dir))
    solution = solve(case, method=method)
    print(format_summary(solution.summary))
    write_run_outputs(solution, out)
    print(f"\nwrote {out}")
    return 0


def command_validate(args):
    """Print the validation table of the case."""
    case = load_case(args.case, overrides=args.overrides)
    print(format_table(validate_case(case, methods=args.methods)))
    return 0


def command_figures(args):
    """Regenerate the figures folder (`hjsolve.figures.regenerate`) and list what was written."""
    from .figures import regenerate

    for path in regenerate(args.out):
        print(path)
    return 0


def command_cases(args):
    """List the case files of the bundled cases/ folder and of ./cases, with their titles."""
    folders = case_folders()
    files = [path for folder in folders for path in sorted(folder.glob("*.toml"))]
    if not files:
        searched = ", ".join(str(folder) for folder in _candidate_case_folders())
        print(f"no case files found (searched {searched})")
        return 0
    width = max(len(_display_path(path)) for path in files)
    for path in files:
        print(f"{_display_path(path):<{width}}  {case_title(path)}")
    return 0


# --------------------------------------------------------------------------- run helpers


def _checked_method(method, source):
    """``method`` if hjsolve has it, else a CaseError naming ``--method``."""
    if method in METHODS:
        return method
    raise CaseError(source, "--method", f"unknown method '{method}' (expected one of {', '.join(METHODS)})")


def _checked_output(out):
    """``out`` unless it exists and is not a folder (checked before the work starts)."""
    if out.exists() and not out.is_dir():
        raise HJSolveError(f"{out}: the output path exists and is not a folder")
    return out


def format_summary(summary):
    """``key: value`` lines, the DESIGN §3 keys first, keys aligned, floats with 6 significant digits."""
    keys = [key for key in SUMMARY_KEYS if key in summary] + [key for key in summary if key not in SUMMARY_KEYS]
    width = max((len(key) for key in keys), default=0)
    return "\n".join(f"{key + ':':<{width + 1}} {format_value(summary[key])}" for key in keys)


def write_run_outputs(solution, out):
    """Write solution.npz, summary.json and the figures into ``out``, all or nothing.

    Everything is first written into a temporary folder beside ``out`` and moved in only
    when all of it succeeded; a failure leaves ``out`` as it was.
    """
    from .plots import write_run_figures

    out = Path(out)
    parent = out.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name or 'hjsolve'}.", dir=parent))
    except OSError as exc:
        raise HJSolveError(f"{out}: cannot create the output folder ({exc.strerror or exc})") from None
    try:
        solution.save(staging)
        write_run_figures(solution, staging)
        out.mkdir(exist_ok=True)
        for item in sorted(staging.iterdir()):
            os.replace(item, out / item.name)
    except OSError as exc:
        raise HJSolveError(f"{out}: cannot write the results ({exc.strerror or exc})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


# --------------------------------------------------------------------------- cases helpers


def _candidate_case_folders():
    """The repository's cases/ folder and, if different, ./cases."""
    bundled = Path(__file__).resolve().parents[1] / "cases"
    local = Path.cwd().resolve() / "cases"
    return [bundled] if local == bundled else [bundled, local]


def case_folders():
    """The candidate case folders that exist."""
    return [folder for folder in _candidate_case_folders() if folder.is_dir()]


def case_title(path):
    """The ``title`` of a case file, or ``(unreadable: reason)``."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return f"(unreadable: {_one_line(exc)})"
    title = data.get("title")
    return _one_line(title) if isinstance(title, str) else "(no title)"


def _display_path(path):
    """``path`` relative to the current folder when inside it, else absolute."""
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------- messages


def _fail(message):
    print(f"hjsolve: error: {_one_line(message)}", file=sys.stderr)
    return EXIT_USAGE


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """Warnings as one line: ``hjsolve: warning: <message>``."""
    print(f"hjsolve: warning: {_one_line(message)}", file=sys.stderr if file is None else file)


def _one_line(text):
    return " ".join(str(text).split())


if __name__ == "__main__":
    sys.exit(main())
