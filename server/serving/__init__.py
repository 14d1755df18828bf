"""Using a trained federated model outside the federation: the prediction service,
batch scoring, raw-record encoding through the feature contract, drift of served
records, the model card, ONNX export and the MLflow pyfunc (docs/guides/serving.md)."""
