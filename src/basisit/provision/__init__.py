"""Provisioning: Pulumi stacks per Kommune driven through the Automation API.

environment  the Pulumi CLI, its environment, the dynamic-provider shim
secrets      the passphrase of the secrets provider, the SSH key pair per Kommune
allocation   host numbers and 127.0.0.1 ports, allocated once and kept
locking      a lock per AGS, stale-lock detection and recovery of Pulumi's lock and state
sources      where desired states come from (request DB or files)
outputs      contract 2 files, checked against their schema
status       a status record per deployment
operations   plan / deploy / drift / destroy of one Kommune
fleet        many Kommunen in separate processes
"""
