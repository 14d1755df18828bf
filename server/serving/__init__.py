"""Using a trained federated model outside the federation: encoding raw records."""
