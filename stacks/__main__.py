"""Entry for a `pulumi up` run by hand in the project folder (see docs/provisioning.md).

The suite runs the same program inline through the Automation API (`basisit deploy`). Here
the stack is named after the AGS and its config names everything the program needs (the
desired state file, the SSH public key, the ports; see stacks.standalone): a hand run never
allocates ports, creates keys or touches the suite's records.
"""

import pulumi

from stacks.standalone import program_from_config

program_from_config(pulumi.Config("basisit").get)()
