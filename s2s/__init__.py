"""s2s: source-to-source automatic differentiation for numpy-style Python."""
__version__ = "0.1.0"

from .api import grad, source_of as source, value_and_grad  # noqa: E402
from .errors import S2SError  # noqa: E402

__all__ = ["grad", "value_and_grad", "source", "S2SError", "__version__"]
