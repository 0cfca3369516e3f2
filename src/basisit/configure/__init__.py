"""Configuration: the Ansible inventory from the stack outputs, the encrypted secrets store and
the ansible-runner driver that applies the roles (issue 5)."""
