"""axhw: hardware/software co-design for approximate multipliers in Vision Transformers.

Subpackages: :mod:`axhw.emulator` (quantization, approximate layers, kernels,
retraining) and :mod:`axhw.search` (sensitivity, surrogate, MCTS, baselines).
"""

from axhw._version import __version__
from axhw.errors import AxhwError

__all__ = ["__version__", "AxhwError"]
