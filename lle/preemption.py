"""Preemption: a run that gets a stop signal finishes its current step, saves a checkpoint and exits
with `EXIT_CODE`, so that a requeueing script can tell "resume me" from success and failure.

One process: a Python handler sets a flag that the trainer reads after every step. Several processes
(jax.distributed): JAX's preemption sync manager already listens for SIGTERM and agrees, without a
blocking collective, on the first step that every process reaches after the notice; other signals
(e.g. SLURM's `--signal=USR1@120`) are forwarded to it as SIGTERM.
"""
import os
import signal

from jax._src import distributed
from jax.experimental import multihost_utils

# EX_TEMPFAIL in sysexits.h: "a temporary failure; the user is invited to retry".
EXIT_CODE = 75
DEFAULT_SIGNALS = ("SIGTERM", "SIGUSR1")


class Preempted(Exception):
  """Raised by the trainer after the checkpoint of `step` is saved and the logs are flushed."""

  def __init__(self, step: int, signal_name: str):
    super().__init__(f"preempted by {signal_name}: stopped after step {step}, checkpoint saved")
    self.step = step
    self.signal_name = signal_name


def parse_signals(names) -> tuple[signal.Signals, ...]:
  out = []
  for name in names:
    name = name.strip().upper()
    name = name if name.startswith("SIG") else "SIG" + name
    if not hasattr(signal, name):
      raise ValueError(f"unknown preemption signal {name!r}; expected names such as SIGTERM, SIGUSR1")
    out.append(getattr(signal, name))
  return tuple(out)


def _multi_process() -> bool:
  return distributed.global_state.client is not None


class Watcher:
  """Installs the handlers for `signals` while the trainer runs; `should_stop(step)` after each step."""

  def __init__(self, signals=DEFAULT_SIGNALS):
    self.signals = parse_signals(signals)
    self.received = None
    self._previous = {}

  def __enter__(self):
    for sig in self.signals:
      if _multi_process() and sig == signal.SIGTERM:
        continue  # JAX's own SIGTERM handler drives the cross-process agreement; keep it
      self._previous[sig] = signal.signal(sig, self._handle)
    return self

  def __exit__(self, *exc):
    for sig, previous in self._previous.items():
      signal.signal(sig, previous)
    self._previous = {}

  def _handle(self, signum, frame):
    self.received = signal.Signals(signum).name
    if _multi_process():
      os.kill(os.getpid(), signal.SIGTERM)  # hand over to JAX's preemption sync manager

  def should_stop(self, step: int) -> bool:
    if _multi_process():
      if multihost_utils.reached_preemption_sync_point(step):
        self.received = self.received or "SIGTERM"
        return True
      return False
    return self.received is not None
