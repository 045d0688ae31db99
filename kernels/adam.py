"""Adam update of one tile, in ``torch.optim.Adam``'s formula (as ``reference.masked_adam_``)."""

import triton
import triton.language as tl


@triton.jit
def adam_update(x, m, v, grad, beta1, beta2, step_size, bias2_sqrt, eps):
    """``(x_new, m_new, v_new)`` for fp32 tiles; all scalars fp32.

    ``step_size`` = lr / (1 - beta1**t) and ``bias2_sqrt`` = sqrt(1 - beta2**t), computed
    once per step on the host in float64, as ``torch.optim.Adam`` does.
    """
    m_new = beta1 * m + (1.0 - beta1) * grad
    v_new = beta2 * v + (1.0 - beta2) * grad * grad
    denom = tl.sqrt(v_new) / bias2_sqrt + eps
    return x - step_size * m_new / denom, m_new, v_new
