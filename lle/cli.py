"""How lle's commands end on a user's mistake: one `error: ...` line on stderr and exit status 1 (2 for a
bad config or command line), without a traceback. `LLE_TRACEBACK=1` shows the traceback instead.

A mistake is an exception of the kinds that bad input raises (a missing or unwritable file or folder, a
bad value, a foreign file); anything else is a fault of lle and keeps its traceback.
"""
import contextlib
import functools
import logging
import os
import sys

USER_ERRORS = (OSError, ValueError)


class UsageError(ValueError):
  """A bad config value or command line: exit status 2."""
  exit_code = 2


def _message(error: BaseException) -> str:
  if isinstance(error, OSError) and error.filename is not None and error.strerror:
    return f"{error.filename}: {error.strerror}"
  return str(error) or type(error).__name__


def reports_errors(main=None, *, also: tuple = ()):
  """Decorates a command's `main`: a user's mistake (USER_ERRORS, and `also`) raised inside becomes one
  `error:` line, and `main` returns the exit status (absl's `app.run` and `sys.exit(main())` exit with it)."""
  if main is None:
    return functools.partial(reports_errors, also=also)

  @functools.wraps(main)
  def wrapped(*args, **kwargs):
    try:
      return main(*args, **kwargs)
    except USER_ERRORS + tuple(also) as e:
      if os.environ.get("LLE_TRACEBACK", "0") not in ("", "0"):
        raise
      print(f"error: {_message(e)}", file=sys.stderr, flush=True)
      return getattr(e, "exit_code", 1)

  return wrapped


def check_output_folder(path, flag: str) -> None:
  """Stops before any work when `path` (a folder the command will create or write into) cannot be:
  a file of that name, or an existing folder that is not writable."""
  path = os.path.abspath(os.path.expanduser(str(path)))
  if os.path.exists(path) and not os.path.isdir(path):
    raise NotADirectoryError(f"{flag} {path} is a file, not a folder")
  existing = path
  while not os.path.exists(existing):
    existing = os.path.dirname(existing)
  if not os.path.isdir(existing):
    raise NotADirectoryError(f"{flag} {path}: {existing} is a file, not a folder")
  if not os.access(existing, os.W_OK | os.X_OK):
    raise PermissionError(f"{flag} {path}: {existing} is not writable")


def _drop_closed_loop_callbacks(unraisable):
  """After a failed Orbax read, a TensorStore callback may still reach the event loop that Orbax has
  closed; Python would print that harmless `RuntimeError('Event loop is closed')` with its traceback,
  whenever it happens. Other unraisable exceptions are printed as Python does."""
  if isinstance(unraisable.exc_value, RuntimeError) and str(unraisable.exc_value) == "Event loop is closed":
    return
  sys.__unraisablehook__(unraisable)


@contextlib.contextmanager
def quiet_library_logs():
  """Keeps libraries' own notices out of the user's output while inside: absl warnings and errors (Orbax
  and TFDS log through absl, e.g. about a checkpoint that lle then reports itself in one line) and the
  tracebacks that asyncio logs for the tasks of a failed Orbax read (and, from then on, the late callbacks
  of such a read: `_drop_closed_loop_callbacks`)."""
  from absl import logging as absl_logging
  if sys.unraisablehook is sys.__unraisablehook__:  # not where another hook is set (pytest's)
    sys.unraisablehook = _drop_closed_loop_callbacks
  asyncio_logger = logging.getLogger("asyncio")
  asyncio_level, absl_verbosity = asyncio_logger.level, absl_logging.get_verbosity()
  asyncio_logger.setLevel(logging.CRITICAL)
  absl_logging.set_verbosity(absl_logging.FATAL)
  try:
    yield
  finally:
    asyncio_logger.setLevel(asyncio_level)
    absl_logging.set_verbosity(absl_verbosity)
