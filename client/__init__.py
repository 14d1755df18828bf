"""The partner site: data pipeline, site store, privacy ledger, DP training, ClientApp."""
