"""What a run leaves for people.

The HTML report and its figures, PNG plots, the summary and TensorBoard scalars.
"""
