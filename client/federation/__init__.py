"""The site in a federation.

DP training, the global model, assessment, site statistics, the records and releases
that go into replies (``site_replies``), mods and ``join``.
"""
