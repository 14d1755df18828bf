"""What a site releases and what it costs.

The privacy ledger, DP releases, replayed updates and the egress log.
"""
