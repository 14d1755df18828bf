"""Wire contracts: one pydantic model per message between the ClientApp and the ServerApp.

Both sides build and read their records through these models (``messages``); each field
declares its privacy class (``privacy``), and the table of what a site discloses is
derived from them (``table``).
"""
