"""Errors the jobs raise on purpose; all are `SignalsError`, so the CLI prints them plainly."""

from __future__ import annotations

from features.errors import SignalsError


class SnapshotNotFoundError(SignalsError):
    """No catalog snapshot at the given URI."""

    hint = "create one with `signals sample`, or pass --snapshot URI"


class QuarantineThresholdError(SignalsError):
    """Too many rows failed (over the share threshold, and at least the minimum count): a
    systematic failure lands nothing in the signal table."""


class NotServedError(SignalsError):
    """A content ID the online store has no values for."""


class OnlineStoreError(SignalsError):
    """The online store or the Feast registry could not be reached or read."""


class CommitConflictError(SignalsError):
    """Concurrent writers kept winning the race for a table's next version."""


class CredentialInJobError(SignalsError):
    """A credential would travel in a Ray job's runtime environment, which anyone who can read
    the cluster's job info (the dashboard, `ray job list`) reads as well."""

    hint = (
        "give the cluster its own credentials instead: a Kubernetes Secret mounted on the head "
        "and every worker (envFrom, as infra/k8s/raycluster.yaml mounts content-signals-s3), the "
        "nodes' IAM role or workload identity, or variables set where each `ray start` runs; as "
        "AWS_* variables, not in the cluster's SIGNALS_STORAGE_OPTIONS, which a submitted job's "
        "own options replace"
    )
