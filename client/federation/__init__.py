"""The site in a federation.

DP training, the global model, assessment, site statistics, mods and ``join``.
"""
