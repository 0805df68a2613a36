"""Peak memory as the benchmarks report it."""
import resource


def peak_memory_mb() -> tuple[float, str]:
  """The devices' peak bytes in use where the backend reports it (GPU/TPU), else the process's peak RSS."""
  import jax
  stats = [d.memory_stats() or {} for d in jax.local_devices()]
  peaks = [s.get("peak_bytes_in_use") for s in stats if s.get("peak_bytes_in_use")]
  if peaks:
    return max(peaks) / 2**20, "device"
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "host RSS"
