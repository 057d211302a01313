"""Errors of ``boxoffice deploy``, each with the value at fault and the fix."""

from __future__ import annotations

from system.errors import BoxOfficeError


class DeployError(BoxOfficeError, RuntimeError):
    """A deploy or rollback could not be done; nothing after the failed step ran."""


class InvalidDeployRequestError(DeployError, ValueError):
    """An environment name, build number or commit is not valid."""


class BuildConflictError(DeployError, ValueError):
    """A build number is already recorded with another commit or template."""


class BuildNotFoundError(DeployError, LookupError):
    """A build was never published, and no commit was given to publish it."""


class NothingToRollBackError(DeployError, LookupError):
    """The environment has no earlier release to go back to."""


class StackUpdateError(DeployError):
    """CloudFormation failed to create or update a stack and rolled it back."""
