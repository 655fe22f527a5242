"""Exceptions that carry a one-line message for the user."""


class HJSolveError(Exception):
    """Base class: a user-facing error whose ``str`` is a single line."""


class CaseError(HJSolveError, ValueError):
    """A case file or override is invalid.

    The message names the file and the dotted key, e.g.
    ``cases/a.toml: finetune.alpha: must be > 0 (got -1)``.
    """

    def __init__(self, source, key, message):
        self.source = str(source)
        self.key = key
        self.reason = message
        where = f"{self.source}: " if source else ""
        super().__init__(f"{where}{key}: {message}")


class DomainError(HJSolveError, ValueError):
    """A divergence's domain condition fails (DESIGN §1, f-divergence table)."""


class NotApplicableError(HJSolveError, ValueError):
    """A method cannot treat this problem (dimension limit, reward kind, ...)."""


class HJSolveWarning(UserWarning):
    """A numerical caveat the user should see (approximate fallback, mass leak, ...)."""
