"""Typed errors of the build tool; ``bundler.cli`` maps them to messages and exit codes once."""

from __future__ import annotations

import signal


class BundleError(Exception):
    """Base of every error a user can fix; the message must say what would be valid.

    Raise a subclass: each has its own documented exit code (README, "Exit codes"). The
    base's code is the internal-error one, so a bare ``BundleError`` is never exit 1.
    """

    exit_code = 70


class UsageError(BundleError):
    """The command line names a path that does not exist, or gives a bad option value."""

    exit_code = 2


class SpecError(BundleError):
    """The bundle spec (TOML) is malformed, names an unknown key or a missing file."""

    exit_code = 2


class ArtifactError(BundleError):
    """An artifact is missing, its hash does not match, or it cannot be loaded."""

    exit_code = 3


class UnsupportedEstimatorError(BundleError):
    """The compiler has no converter for an estimator (or one of its options)."""

    exit_code = 4


class ParityError(BundleError):
    """The compiled plan scored differently from scikit-learn."""

    exit_code = 5


class GateError(BundleError):
    """The release gate failed: an end-to-end row or the confidence metric."""

    exit_code = 6


class ToolchainError(BundleError):
    """A build tool the stage needs (C compiler, PyInstaller) is missing or failed."""

    exit_code = 7


class FreezeError(BundleError):
    """Freezing or the frozen binary's own self-test failed."""

    exit_code = 8


class InputError(BundleError):
    """Input rows given to ``bundle score`` are malformed."""

    exit_code = 9


class ImportRefusedError(BundleError):
    """The release engineer's application imports what its bundle must not ship."""

    exit_code = 12


class PackRefusedError(BundleError):
    """``bundle pack`` will not make a pack of this model: it has no plan (passthrough), its
    model version is not numbers and dots (the app could not order it against the one it
    serves), or the signing key is not the spec's ``[updates]`` release key (every app built
    from the spec would refuse the pack)."""

    exit_code = 13


class Interrupted(BaseException):
    """SIGINT (Ctrl-C) or SIGTERM stopped the command: exit 128 + the signal's number, so
    130 for SIGINT and 143 for SIGTERM, as a shell reports a process the signal killed.

    A ``BaseException``, as ``KeyboardInterrupt`` is: no ``except Exception`` in a stage
    swallows it, and click does not turn it into its own "Aborted!". ``detail`` says what
    became of the output (``bundler.build`` fills it in), for the one line ``bundler.cli``
    prints.
    """

    def __init__(self, signum: int = signal.SIGINT, detail: str = "") -> None:
        super().__init__(signum, detail)
        self.signum = int(signum)
        self.detail = detail

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @property
    def signal_name(self) -> str:
        try:
            return signal.Signals(self.signum).name
        except ValueError:
            return f"signal {self.signum}"

    @classmethod
    def of(cls, exc: BaseException, detail: str) -> Interrupted:
        """``exc`` (an Interrupted, or a plain KeyboardInterrupt: SIGINT) with ``detail``."""
        return cls(exc.signum if isinstance(exc, Interrupted) else signal.SIGINT, detail)
