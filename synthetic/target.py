"""Find the stack a command probes: a deployed one or the embedded one."""

from __future__ import annotations

import argparse

from system import embedded
from system.aws_options import settings_from_args, targets_deployed_stack
from system.errors import EmbeddedStackError
from system.settings import Settings
from system.stack import StackResources, describe_stack


def resolve_target(args: argparse.Namespace) -> tuple[Settings, StackResources]:
    """Return the settings and resources named by the target options.

    With ``--stack`` or ``--endpoint-url`` the stack's CloudFormation outputs
    are read with the usual AWS credential chain (``--profile``, environment,
    shared files). Otherwise the embedded stack started by ``boxoffice up``
    is used.
    """
    if targets_deployed_stack(args):
        settings = settings_from_args(args)
    else:
        state = embedded.running_state(args.home)
        if state is None:
            raise EmbeddedStackError(
                "No embedded stack is running. Start one with `boxoffice up`, or "
                "pass --stack NAME (with --region and --profile) for a deployed "
                "stack."
            )
        settings = state.settings
    return settings, describe_stack(settings)
