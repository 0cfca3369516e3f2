"""Entry for a `pulumi up` run by hand in the project folder (see docs/provisioning.md).

The suite runs the same program inline through the Automation API (`basisit deploy`). Here
the stack is named after the AGS and its config names the desired state file:
`pulumi config set basisit:desiredState path/to/desired-state.yaml` (and optionally
`basisit:target`).
"""

from pathlib import Path

import pulumi

from basisit.provision import operations, sources

config = pulumi.Config("basisit")
desired = sources.load_file(Path(config.require("desiredState")))
target = operations.check_target(config.get("target") or operations.default_target())
operations.build_program(
    pulumi.get_stack(), desired, target, persist=not pulumi.runtime.is_dry_run()
)()
