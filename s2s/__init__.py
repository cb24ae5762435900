"""s2s: source-to-source automatic differentiation for numpy-style Python."""
__version__ = "0.1.0"

from .api import grad, show, source_of as source, value_and_grad  # noqa: E402
from .custom import custom_vjp  # noqa: E402
from .decorators import differentiable  # noqa: E402
from .errors import GradientMismatch, MergeConflict, S2SError, StaleDerivative  # noqa: E402
from .higher import elementwise_grad, hessian, hvp, jacobian, jvp, vjp  # noqa: E402

__all__ = ["grad", "value_and_grad", "source", "show", "differentiable", "custom_vjp", "S2SError", "StaleDerivative",
           "MergeConflict", "GradientMismatch",
           "jvp", "vjp", "elementwise_grad", "jacobian", "hessian", "hvp", "__version__"]
