"""Data for virtual sites.

Bundled datasets, researchers' tables, partitions, dirt, site materialisation and
simulated annotators.
"""
