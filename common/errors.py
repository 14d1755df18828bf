"""Every error a user can cause, each with its own type and a one-line message.

The CLIs catch :class:`FedlifeError` and print ``str(error)`` without a traceback.
"""


class FedlifeError(Exception):
    """Base of all user-facing errors; its message is one line."""

    exit_code = 2

    def __str__(self) -> str:
        return " ".join(super().__str__().split())


class StoppedByUser(FedlifeError):
    """The operator interrupted a command (Ctrl-C); the message says what was committed."""

    exit_code = 130  # the shell's convention for SIGINT


class ConfigError(FedlifeError):
    """A config file or option is missing, malformed or out of range."""


class DataError(FedlifeError):
    """Input data cannot be read or does not match its schema."""


class CsvLayoutError(DataError):
    """A CSV's header or delimiter does not fit: a repeated column name, a wrong delimiter."""


class StoreError(FedlifeError):
    """The site store (Delta tables, ledger) cannot be read or written."""


class IntegrityError(StoreError):
    """A store file does not match the checksum recorded when it was written."""


class SealError(StoreError):
    """A sealed (AES-GCM) file does not open: altered, cut short, or under another key."""


class OpenFileError(DataError):
    """``fedlife-site open``: no such file, not a sealed file, or an ``--out`` that exists."""


class KeyRotationError(StoreError):
    """A key rotation refused or stopped (a missing archive folder, a file no key opens,
    the pseudonym key); what was re-sealed stays readable."""


class BackupError(StoreError):
    """A backup cannot be written or read (its folder, its snapshots)."""


class BackupKeyError(BackupError):
    """The backup's passphrase is wrong, or its file is missing or empty."""


class BackupSiteError(BackupError):
    """The backup belongs to another site."""


class BackupTamperedError(BackupError):
    """A backup's file was altered or is missing: the restore is refused."""


class RestoreTargetError(BackupError):
    """A restore would overwrite a store that is not empty."""


class SubjectNotFoundError(DataError):
    """No row of the store belongs to the subject id the operator gave."""


class BudgetExceededError(FedlifeError):
    """Training would take a site past its privacy budget."""


class RunDirError(FedlifeError):
    """A run directory cannot be created, written or read."""


class CoordinatorError(FedlifeError):
    """The coordinator's SuperLink cannot be started, reached or stopped."""


class NodeKeyRefusedError(CoordinatorError):
    """The coordinator refused to activate a site's key (not registered, or still online)."""


class FederationError(FedlifeError):
    """The run cannot go on (too few sites, no agreeing schema, a node not provisioned)."""


class LedgerError(FedlifeError):
    """The coordinator's central-DP ledger cannot be read or written, or was edited."""


class WireError(FedlifeError):
    """A message between a site and the coordinator does not match its wire contract."""


class ServingError(FedlifeError):
    """A model cannot be served: its port is taken, or a served-records log is unreadable."""


class MissingExtraError(FedlifeError):
    """An optional dependency is not installed (the message names the extra to install)."""


class TriggerError(FedlifeError):
    """A ``--when`` expression does not parse or names a quantity that does not exist."""


class PromotionError(FedlifeError):
    """A model cannot be promoted or rolled back (unevaluated, no previous model)."""


class EncryptionError(FedlifeError):
    """An HE context or ciphertext is missing, mismatched, wrongly public, or tampered."""


class EncryptionIncompatibleError(ConfigError):
    """Encrypted aggregation was asked with a strategy or central DP that needs to read
    the sites' updates in the clear."""
