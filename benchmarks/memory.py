"""Peak memory as the benchmarks report it."""
import resource


def peak_memory_mb() -> tuple[float, str]:
  """The devices' peak bytes in use where the backend reports it (GPU/TPU), else the process's peak RSS."""
  import jax
  stats = [d.memory_stats() or {} for d in jax.local_devices()]
  peaks = [s.get("peak_bytes_in_use") for s in stats if s.get("peak_bytes_in_use")]
  if peaks:
    return max(peaks) / 2**20, "device"
  return host_peak_rss_mb(), "host RSS"


def host_peak_rss_mb() -> float:
  """This process's peak resident set (VmHWM). Not getrusage's ru_maxrss: that survives exec, so a process
  started by a large parent reports the parent's size at fork time."""
  try:
    with open("/proc/self/status") as f:
      for line in f:
        if line.startswith("VmHWM:"):
          return int(line.split()[1]) / 1024
  except OSError:
    pass
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def compiled_memory_mb(compiled) -> float | None:
  """The device memory one run of a compiled jax function holds, as XLA assigned its buffers: arguments,
  outputs and temporaries, less the outputs that reuse donated arguments. Per executable, so several
  measured in one process each get their own (the backend's peak counts the whole process). None where the
  backend gives no analysis."""
  try:
    m = compiled.memory_analysis()
  except (NotImplementedError, AttributeError, RuntimeError):
    return None
  if m is None:
    return None
  used = m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes - m.alias_size_in_bytes
  return used / 2**20
