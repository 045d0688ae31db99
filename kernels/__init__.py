"""Triton kernels of one reverse step, shipped as ``revml.kernels``.

Pure ``@triton.jit`` code, one idea per file; the launchers that allocate buffers and pick
tile sizes live in :mod:`revml.ops`, the maths they reproduce in :mod:`revml.reference`.

- :mod:`.rng`: the counter-based dropout hash, bit-exact with ``reference.dropout_keep``.
- :mod:`.activations`: each activation and its derivative from what the forward saved.
- :mod:`.linear_forward`: ``act(x @ W.T + b)`` with optional fused input dropout.
- :mod:`.output_loss`: the last layer fused with the gradient of the reconstruction loss.
- :mod:`.linear_backward`: input-only backward through one layer (no weight gradient),
  with the spherical-bottleneck gradient fused at the code.
- :mod:`.input_update`: the first layer's backward fused with the loss's direct term, the
  masked Adam update and the clamp, in place on ``x``, ``m``, ``v``.
"""
