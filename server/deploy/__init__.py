"""A real federation.

Provisioning, the SuperLink coordinator, node allow-lists, launching runs, and their
CLI.
"""
