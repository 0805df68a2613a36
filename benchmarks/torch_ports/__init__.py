"""PyTorch re-implementations of lle's methods, for benchmarks/bench_vs_torch.py only (never imported by lle).

One module per method, each with the same five functions:

  build(config) -> torch.nn.Module
      Every network the method trains (a ModuleDict when there are several, e.g. {'gen', 'disc'}), with
      the same layers, widths, padding, norms and activations as lle's, in float32 on the CPU.
  load_from_lle(module, state) -> None
      Copies lle's initial parameters (and batch-norm statistics) from `lle_method.init(key)`'s state.
  make_step(config, module, *, use_compile) -> step
      `step(batch) -> loss`: one whole training iteration as lle's `train_step` does it (every network's
      forward, loss, backward and optimiser update, in the same order), on a batch of NCHW tensors.
  check_equal(config, lle_method, state, module) -> None
      Asserts that the two agree on a small input with the copied weights: outputs, losses and gradients
      (raises AssertionError with what differs).
  batch(config, rng) -> {name: float32 array NHWC}
      A random training batch with the shapes of the method's real training batch.

`common` holds what several of them need (TensorFlow 'SAME' padding, layout changes, weight copies).
"""
