"""Labels at a site.

Manual labels, imports, weak supervision, the label model, active learning, label
quality and ``fedlife-site label``.
"""
