"""Activations and their derivatives from what the forward pass saved.

Activation codes are ``tl.constexpr`` ints so every kernel is specialised to one
activation; :data:`revml.ops.plan.ACTIVATION_CODES` maps the names of
:data:`revml.model.ACTIVATIONS` to them. What backward needs from the forward pass:

- ``RELU``, ``LEAKY_RELU``: a 1-byte mask ``z > 0`` (int8), never a float;
- ``TANH``, ``SIGMOID``: the layer's output ``a`` (the derivative is a function of it);
- ``IDENTITY``: nothing.
"""

import triton
import triton.language as tl

IDENTITY: tl.constexpr = tl.constexpr(0)
RELU: tl.constexpr = tl.constexpr(1)
LEAKY_RELU: tl.constexpr = tl.constexpr(2)
TANH: tl.constexpr = tl.constexpr(3)
SIGMOID: tl.constexpr = tl.constexpr(4)


@triton.jit
def tanh(z):
    """tanh in fp32 to a few ulp, from ``exp`` alone.

    Triton 3.6-3.8 have no portable ``tl.tanh`` (libdevice is CUDA-only and the
    interpreter cannot run it). ``(1 - t) / (1 + t)`` with ``t = exp(-2|z|)`` loses
    relative accuracy near 0 by cancellation, so ``|z| < 1/8`` uses the odd Taylor series,
    whose first omitted term is below 2e-10 there.
    """
    a = tl.abs(z)
    t = tl.exp(-2.0 * a)
    far = (1.0 - t) / (1.0 + t)
    a2 = a * a
    near = a * (
        1.0 + a2 * (-0.3333333333333333 + a2 * (0.13333333333333333 + a2 * -0.05396825396825397))
    )
    y = tl.where(a < 0.125, near, far)
    return tl.where(z < 0.0, -y, y)


@triton.jit
def activate(z, slope, ACTIVATION: tl.constexpr):
    """``act(z)`` for an fp32 tile; ``slope`` is LeakyReLU's negative slope (fp32)."""
    if ACTIVATION == RELU:
        return tl.where(z > 0.0, z, 0.0)
    elif ACTIVATION == LEAKY_RELU:
        return tl.where(z > 0.0, z, z * slope)
    elif ACTIVATION == TANH:
        return tanh(z)
    elif ACTIVATION == SIGMOID:
        return tl.sigmoid(z)
    else:
        return z


@triton.jit
def activation_grad(grad, saved, slope, ACTIVATION: tl.constexpr):
    """``grad * act'(z)`` from what the forward pass saved.

    ``saved``: the int8 mask ``z > 0`` for RELU / LEAKY_RELU, the output ``act(z)`` for
    TANH / SIGMOID, ignored for IDENTITY. Matches PyTorch's backward formulas, including
    the derivative 0 (ReLU) or ``slope`` (LeakyReLU) at ``z == 0``.
    """
    if ACTIVATION == RELU:
        return tl.where(saved != 0, grad, 0.0)
    elif ACTIVATION == LEAKY_RELU:
        return tl.where(saved != 0, grad, grad * slope)
    elif ACTIVATION == TANH:
        return grad * (1.0 - saved * saved)
    elif ACTIVATION == SIGMOID:
        return grad * ((1.0 - saved) * saved)
    else:
        return grad
