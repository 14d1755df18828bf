"""Shared by sites and coordinator: config models, errors, features, models, message keys.

This package imports nothing else of fedlife's, so both sides can depend on it.
"""
