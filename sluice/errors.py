"""One exception family for Sluice.

Two marker classes decide what the platform does: a ``PermanentError`` is a problem with the
input (a bad file, a bad contract) that a retry cannot fix, so it is logged, recorded and
acknowledged; a ``TransientError`` (an API 5xx, a held lock) is raised so the platform retries.
Messages say what was expected and what was found.
"""


class SluiceError(Exception):
    """Base class of every error Sluice raises on purpose."""


class PermanentError(SluiceError):
    """The input is wrong; retrying the same input cannot succeed."""


class TransientError(SluiceError):
    """A dependency failed for now; retrying may succeed."""


class ConfigError(PermanentError):
    """A setting or command-line argument is invalid."""


class ContractError(PermanentError):
    """A contract file is invalid, or no contract matches."""


class FileRejected(PermanentError):
    """A landing file cannot be ingested (bad encoding, header, quoting, ...)."""

    def __init__(self, message: str, *, code: str = "rejected", line: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        """Machine-readable reason, e.g. ``header`` or ``unterminated_quote``."""
        self.line = line
        """1-based physical line the problem is on, when known."""


class WarehouseError(SluiceError):
    """The warehouse refused an operation for a reason other than a transient fault."""


class MissingTable(WarehouseError):
    """A query named a table the warehouse does not have (yet): not cooked, never loaded."""
