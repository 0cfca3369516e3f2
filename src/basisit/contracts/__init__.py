"""The contracts between the steps, one module each, with its versioned JSON Schema.

- `desired_state`: contract 1, what a Kommune's approved requests add up to (the one input of
  the stacks and the roles);
- `stack_outputs`: contract 2, what a deploy built (the one input of the Ansible inventory and
  the Prometheus scrape targets);
- `usage`: contract 3, a month of the usage ledger per Kommune, instance and unit (the one
  input of billing).

Every reader and writer of a contract document goes through its module: nothing else opens a
schema file, and every problem names the field the same way (`services.0.server.flavor`).
"""
