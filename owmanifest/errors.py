"""The one exception hierarchy of owmanifest.

Every error raised on purpose by owmanifest is an :class:`Error`. There are two families, after
python-tuf: :class:`ManifestError` ("the data is bad": malformed, unsigned, not trusted, a digest
that does not match) and :class:`TransportError` ("we could not get it": a failed download, a
stall, a server answering with an error). Each error names the path or URI it is about and, where
it makes sense, the expected and the observed value.

The command line maps errors to exit codes through :attr:`Error.exit_code`: 1 when verification
failed, 2 for bad usage or unreadable/malformed input.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for annotations only: errors.py imports nothing of owmanifest at run time
    from .verify.result import ProofOutcome, TreeReport

__all__ = [
    "CanonicalizationError",
    "DependencyError",
    "DigestMismatchError",
    "Error",
    "ExpiredError",
    "FetchError",
    "FileVerificationError",
    "InvalidManifestError",
    "KeyFileError",
    "LocalFileError",
    "ManifestError",
    "MissingFileError",
    "PathError",
    "PolicyError",
    "RollbackError",
    "SignatureError",
    "SizeExceededError",
    "SizeMismatchError",
    "StallError",
    "TransportError",
    "UsageError",
    "VerificationError",
]

EXIT_OK = 0
EXIT_VERIFICATION_FAILED = 1
EXIT_BAD_INPUT = 2


class Error(Exception):
    """Base class of every error owmanifest raises on purpose.

    Args:
        message: what went wrong, in one sentence.
        path: the local file or directory concerned, if any.
        uri: the URI concerned (manifest id, mirror URL, peer), if any.
        expected: what the manifest, policy or protocol required.
        observed: what was found instead.
    """

    exit_code: int = EXIT_BAD_INPUT

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        uri: str | None = None,
        expected: Any = None,
        observed: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = None if path is None else str(path)
        self.uri = uri
        self.expected = expected
        self.observed = observed

    def __str__(self) -> str:
        parts = [self.message]
        where = self.path if self.path is not None else self.uri
        if where is not None and not _names(self.message, where):
            parts.insert(0, f"{where}:")
        return " ".join(parts) + self.contrast()

    def contrast(self) -> str:
        """``" (expected ..., observed ...)"``, of what is known (never "expected None"); or
        ``""``."""
        contrast = (("expected", self.expected), ("observed", self.observed))
        said = [f"{name} {value}" for name, value in contrast if value is not None]
        return f" ({', '.join(said)})" if said else ""

    def diagnostics(self) -> str:
        """A longer, multi-line explanation for people, used by the CLI."""
        lines = [str(self)]
        for name in ("path", "uri", "expected", "observed"):
            value = getattr(self, name)
            if value is not None:
                lines.append(f"  {name}: {value}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """A JSON-serializable description, used by ``--json`` output."""
        out: dict[str, Any] = {"error": type(self).__name__, "message": self.message}
        for name in ("path", "uri", "expected", "observed"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value if isinstance(value, (int, float, bool)) else str(value)
        return out


def _names(message: str, where: str) -> bool:
    """Whether ``message`` already names ``where`` as a whole (the path ``e`` is not named by
    "cannot read manifest", nor ``data`` by "not a directory")."""
    import re

    edge = r"[\w./~-]"
    return re.search(f"(?<!{edge}){re.escape(where)}(?!{edge})", message) is not None


class UsageError(Error):
    """The caller asked for something that cannot be done (bad option, bad argument)."""


class DependencyError(Error):
    """An optional dependency needed for this operation is not installed."""


class LocalFileError(Error):
    """A local file or directory could not be read or written (a missing directory,
    permissions, a full disk): what the command line reports for an ``OSError`` that no
    other error explains."""


class KeyFileError(Error):
    """A key file cannot be read, decrypted or parsed."""


# --- the data is bad -----------------------------------------------------------------------------


class ManifestError(Error):
    """Something is wrong with a manifest or with data described by it."""


class InvalidManifestError(ManifestError):
    """The manifest is malformed: not parseable, fails the schema, or breaks a structural rule."""


class PathError(InvalidManifestError):
    """A file path is not acceptable (absolute, ``..``, not NFC, case collision, ...)."""


class CanonicalizationError(InvalidManifestError):
    """The RDF cannot be canonicalized safely (e.g. a blank-node poison graph)."""


class VerificationError(ManifestError):
    """Verification failed: the manifest or the data cannot be trusted.

    Attributes:
        outcomes: for proof failures, what happened to each proof.
        report: for data failures, the :class:`~owmanifest.verify.result.TreeReport`.
    """

    exit_code = EXIT_VERIFICATION_FAILED
    outcomes: tuple[ProofOutcome, ...] = ()
    report: TreeReport | None = None


class SignatureError(VerificationError):
    """A proof is malformed, uses an unsupported suite, or its signature does not verify."""


class PolicyError(VerificationError):
    """The proofs are valid but do not satisfy the trust policy (threshold, trust, revocation)."""


class RollbackError(PolicyError):
    """The manifest is older than (or conflicts with) a version already trusted."""


class ExpiredError(PolicyError):
    """The manifest has expired."""


class FileVerificationError(VerificationError):
    """A file does not match the manifest."""


class DigestMismatchError(FileVerificationError):
    """Content hash differs from the one in the manifest."""


class SizeMismatchError(FileVerificationError):
    """File size differs from the one in the manifest."""


class MissingFileError(FileVerificationError):
    """A file listed in the manifest is missing (or is not a regular file)."""


# --- we could not get it -------------------------------------------------------------------------


class TransportError(Error):
    """Bytes could not be obtained through a transport."""

    exit_code = EXIT_VERIFICATION_FAILED


class FetchError(TransportError):
    """A download failed (connection, HTTP status, peer error, ...)."""


class SizeExceededError(TransportError):
    """A source sent more bytes than the manifest declares."""


class StallError(TransportError):
    """No verified progress within the stall timeout."""
