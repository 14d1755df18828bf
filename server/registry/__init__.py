"""The model registry: checkpoints with lineage, models trained on erased data, and unlearning."""
