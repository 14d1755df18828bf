"""Raw files to clean rows.

Ingest, validate, clean, prepare, profile, schema inference and ``init``.
"""
