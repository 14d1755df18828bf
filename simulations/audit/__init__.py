"""Empirical privacy audits: membership inference on canaries, run as ``fedlife-sim audit``."""
