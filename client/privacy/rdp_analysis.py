"""Opacus's RDP analysis (``opacus.accountants.analysis.rdp``), loaded on its own.

Importing it the usual way runs ``opacus/__init__``, which loads the privacy engine,
its grad samplers and ``torch.distributed`` (with sympy and scipy.stats): seconds of
CPU that every process paid which only checks or records a budget. A deployed site pays
them per message, since Flower starts one ClientApp process for each, and so does every
``fedlife-site budget``. The analysis module itself needs only numpy and scipy.special:
it is loaded from Opacus's own file, the same code the accountant runs.
"""

from __future__ import annotations

import importlib.util
import sys
from functools import cache
from types import ModuleType

from common.package_files import package_file

_OWN_NAME = "client.privacy._opacus_rdp_analysis"


@cache
def rdp_analysis() -> ModuleType:
    """The module ``opacus.accountants.analysis.rdp``: ``compute_rdp``, ``get_privacy_spent``."""
    if "opacus" in sys.modules:  # training loaded Opacus anyway: use its module
        from opacus.accountants.analysis import rdp

        return rdp
    missing = ImportError("the privacy accounting needs Opacus's RDP analysis: pip install opacus")
    path = package_file("opacus", "accountants", "analysis", "rdp.py")
    if path is None:
        raise missing
    module_spec = importlib.util.spec_from_file_location(_OWN_NAME, path)
    if module_spec is None or module_spec.loader is None:
        raise missing
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module
