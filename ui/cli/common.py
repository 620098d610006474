"""What every CLI command shares: JSON output, logging to stderr, error reporting."""
from __future__ import annotations

import contextlib
import errno
import functools
import io
import json
import logging
import os
import select
import stat
import sys
from pathlib import Path
from typing import Annotated, Any, Callable, Iterable, Iterator, Optional, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from engine.errors import SoundsiftError
from engine.layout import READ_ONLY_ERRNOS
from engine.wording import count  # noqa: F401 - the commands' count(n, noun): one helper for every layer

#: logs, progress and tables for humans; stdout is kept for --json output. Neither reads rich
#: markup in what it prints: file names hold brackets ("hit [v2].wav", "[sfx] doors/", "mix[/]…")
#: that markup would eat or choke on; a styled label goes through :func:`labelled`.
err_console = Console(stderr=True, markup=False)
#: soft_wrap: a one-line message on stdout (``wrote 4 files to PATH``) stays one line in a pipe or at
#: a narrow $COLUMNS, where rich would break it (a path too) at the width; tables still fit it
out_console = Console(markup=False, soft_wrap=True)


def labelled(label: str, style: str, text: object) -> Text:
    """``label`` in ``style``, a space, then ``text`` exactly as it is."""
    return Text.assemble((label, style), " ", str(text))


F = TypeVar("F", bound=Callable[..., Any])

log = logging.getLogger(__name__)

INDEX_HELP = ("Index name (a folder under `$SOUNDSIFT_INDEX_HOME`, else under indexes/ in the current "
              "folder) or path to an index folder.")
MODEL_HELP = ("Model: 'soundsift-base', 'soundsift-fast' (about 4× faster, less accurate), a local model "
              "folder, or a laion/* CLAP id.")

#: ``--index/-i`` as most commands take it (an option declaration shared by their signatures)
IndexOption = Annotated[Optional[str], typer.Option("--index", "-i", help=INDEX_HELP)]
#: ``--verbose/-v``: debug logging, in every command
VerboseOption = Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")]
#: ``--progress/--no-progress`` of the commands that show progress bars; None: :func:`shows_progress`
ProgressOption = Annotated[Optional[bool], typer.Option(
    "--progress/--no-progress", help="Progress bars on stderr (default: when stderr is a terminal).")]
#: ``--host`` of the commands that listen (`soundsift ui`, `soundsift serve`)
HostOption = Annotated[str, typer.Option("--host", help="Address to bind; 0.0.0.0 answers anyone on your network.")]


def shows_progress(flag: Optional[bool]) -> bool:
    """``--progress/--no-progress`` as given, else bars only when stderr is a terminal (a log file
    or a pipe would fill with their redraws)."""
    return sys.stderr.isatty() if flag is None else flag


def warn_if_shared(host: str, what: str) -> None:
    """Say on stderr that ``what`` is open to the network when ``host`` is not this machine's own."""
    from ui.http_origins import names_this_machine
    if not names_this_machine(host):
        err_console.print(labelled("warning:", "yellow", f"serving on {host}: anyone who can reach this address can {what}"),
                          soft_wrap=True)


class TerminalSafeFormatter(logging.Formatter):
    r"""Log lines with control characters shown as escapes (``\x1b``, ``\u202e``), line breaks and
    tabs kept: a file named ``esc\x1b[2Jbad.wav`` must not clear the user's terminal when a warning
    names it, nor one named ``invoice\u202eVAW.exe`` read reversed (:data:`CONTROL_ESCAPES`)."""

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).translate(CONTROL_ESCAPES)


#: Unicode's bidirectional controls (marks U+200E, U+200F, U+061C; embeddings and overrides
#: U+202A–U+202E; isolates U+2066–U+2069), which make ``invoice\u202eVAW.exe`` read as
#: ``invoiceexe.WAV``, and its line and paragraph separators U+2028, U+2029
UNICODE_CONTROLS = (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x2028, 0x2029)

#: C0 and C1 control characters, DEL and :data:`UNICODE_CONTROLS` (line break and tab kept) →
#: their escapes
CONTROL_ESCAPES = {c: chr(c).encode("unicode_escape").decode("ascii")
                    for c in (*range(0x20), *range(0x7F, 0xA0), *UNICODE_CONTROLS) if chr(c) not in "\n\t"}


def exit_without_collecting() -> None:
    """Let this process's exit skip collecting its whole heap: ``gc.freeze`` as an exit handler
    (every command, :func:`ui.cli.main`). The interpreter's finalization garbage-collected the
    hundreds of thousands of objects torch and transformers make: 2–3 s at the end of every
    command that loaded a model (perf: gc_collect_main; ``soundsift search`` on a 40,000-file
    index, soundsift-fast: 2.4–2.7 s of its 11–13 s). Frozen, they are freed with the process.
    Every exit handler still runs, and files are still flushed and closed as modules are torn
    down (by reference counts); only garbage in reference cycles is left uncollected, whose
    finalizers Python does not promise to run at exit anyway."""
    import atexit
    import gc
    atexit.unregister(gc.freeze)        # registered once, however often this is called
    atexit.register(gc.freeze)


#: the exit status of a command whose stdout or stderr closed before it finished writing
#: (``soundsift search … | head -1``): the shell's 128 + SIGPIPE, the status cat or grep end with
#: there (as Ctrl-C's is 128 + SIGINT, :data:`INTERRUPTED_EXIT`), so it is told apart from a
#: failure (1), and a ``set -o pipefail`` script sees what it sees for them
CLOSED_OUTPUT_EXIT = 141


class _WatchedOutput(io.RawIOBase):
    """The file under a standard stream (:func:`_watched`): each write is written whole or
    raises, and a write its reader was gone for (BrokenPipeError) is remembered
    (:attr:`reader_gone`), whoever caught the error (logging and warnings swallow it).

    Unbuffered (``PYTHONUNBUFFERED``, ``python -u``), CPython's text stream writes straight to
    the file and drops what a short write left (a pipe whose reader closed mid-write): the
    command went on as if all was printed and exited 0, or 141, by the timing."""

    def __init__(self, file: io.FileIO) -> None:
        super().__init__()
        self._file = file
        self.reader_gone = False

    @property
    def name(self) -> Any:
        return self._file.name

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._file.fileno()

    def isatty(self) -> bool:
        return self._file.isatty()

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        done = 0
        try:
            while done < len(view):
                written = self._file.write(view[done:])
                if written is None:                       # a non-blocking file, full: wait
                    select.select([], [self._file], [])
                    continue
                done += written
        except BrokenPipeError:
            self.reader_gone = True
            raise
        return done


def _watched(stream: Any) -> Any:
    """``sys.stdout`` or ``sys.stderr`` anew over a :class:`_WatchedOutput` of its file, buffered,
    line-buffered and written through as it was; a stream that is no file's (a test's capture, a
    stream already watched) as it is."""
    buffer = getattr(stream, "buffer", None)
    raw = buffer.raw if isinstance(buffer, io.BufferedWriter) else buffer
    if not isinstance(raw, io.FileIO):
        return stream
    stream.flush()
    watched = _WatchedOutput(raw)
    anew = io.TextIOWrapper(io.BufferedWriter(watched) if raw is not buffer else watched,
                            encoding=stream.encoding, errors=stream.errors,
                            line_buffering=stream.line_buffering, write_through=stream.write_through)
    anew.mode = getattr(stream, "mode", "w")           # as Python's own standard streams say
    return anew


def _reader_gone(stream: Any) -> bool:
    """Whether the reader of ``stream`` (stdout or stderr) is gone: flushing it fails, or a write
    to it did (:class:`_WatchedOutput`)."""
    if stream is None:
        return False
    try:
        stream.flush()
    except BrokenPipeError:
        return True
    except (OSError, ValueError):               # not a pipe's error; a stream closed
        return False
    watch = _watch_of(stream)
    return watch is not None and watch.reader_gone


def _closed_outputs() -> list[Any]:
    """Those of stdout and stderr whose reader is gone (:func:`_reader_gone`)."""
    return [s for s in (sys.stdout, sys.stderr) if _reader_gone(s)]


def _unwatched_pipes() -> list[Any]:
    """Those of stdout and stderr whose reader may be gone unseen: a pipe or socket written to
    without :class:`_WatchedOutput` (a command run in-process, not by :func:`run_command_line`),
    whose failed write an unbuffered stream leaves no trace of. A test's capture, a file or a
    terminal has no reader to lose, and a watched stream says whether it lost it."""
    return [s for s in (sys.stdout, sys.stderr) if s is not None and _watch_of(s) is None and _on_pipe(s)]


def _watch_of(stream: Any) -> _WatchedOutput | None:
    """The :class:`_WatchedOutput` ``stream`` writes through (:func:`_watched`); None for another."""
    buffer = getattr(stream, "buffer", None)
    raw = getattr(buffer, "raw", buffer)
    return raw if isinstance(raw, _WatchedOutput) else None


def _on_pipe(stream: Any) -> bool:
    """Whether ``stream`` writes to a pipe or a socket (whose reader can go)."""
    try:
        mode = os.fstat(stream.fileno()).st_mode
    except (OSError, ValueError):               # no file under it (a test's capture), or closed
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def _broken_pipe_failure(e: BrokenPipeError) -> typer.Exit:
    """A BrokenPipeError neither stdout nor stderr accounts for (a socket's, a subprocess's pipe
    that closed at the other end) said as the failure it is, in one line on stderr (its traceback
    in the debug log: ``--verbose``), and the Exit ending the command with status 1."""
    log.debug("a broken pipe not stdout's or stderr's", exc_info=e)
    where = f"{e.filename}: " if e.filename else ""
    err_console.print(labelled("error:", "bold red", f"{where}broken pipe: what this command wrote to (not its "
                               "stdout or stderr: a socket, another process's pipe) was closed at the other end"),
                      highlight=False, soft_wrap=True)
    return typer.Exit(1)


def _stop_writing(streams: list[Any]) -> typer.Exit:
    """After a write to a closed stdout or stderr: point each of ``streams`` at /dev/null, so what
    is still buffered, and what is written there later (a log line, an exit handler's), goes
    nowhere instead of failing again ("Exception ignored … BrokenPipeError", or exit status 120
    where stderr's last flush fails; as Python's docs on SIGPIPE advise), and the Exit ending
    the command with CLOSED_OUTPUT_EXIT."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for stream in streams:
            os.dup2(devnull, stream.fileno())
    finally:
        os.close(devnull)
    for stream in streams:
        stream.flush()                          # what a failed write left buffered: to /dev/null
    return typer.Exit(CLOSED_OUTPUT_EXIT)


@contextlib.contextmanager
def stops_quietly_when_output_closes() -> Iterator[None]:
    """Run a command (:meth:`ui.cli.app.FlagsGroup.invoke`), stdout and stderr flushed at the end,
    so that a reader of either that stopped early (``| head -1``) ends it quietly: no traceback,
    nothing more on stderr, exit status :data:`CLOSED_OUTPUT_EXIT` (Click's own handling exited
    1, a failure's status, saying nothing, or Python said "Exception ignored … BrokenPipeError"
    at exit). Under :func:`run_command_line` a write that failed is remembered even where it
    was caught (a log line to a closed stderr), so the status is 141 whether or not the
    streams are buffered (``PYTHONUNBUFFERED``), and a BrokenPipeError that neither stream
    accounts for (a socket's, a subprocess's pipe) is a failure: one line, status 1
    (:func:`_broken_pipe_failure`). Where a stream cannot tell (a pipe written to unwatched,
    :func:`_unwatched_pipes`) such an error is still taken for its reader's, stdout's first."""
    try:
        yield
    except BrokenPipeError as e:
        closed = _closed_outputs() or _unwatched_pipes()[:1]
        if not closed:
            raise _broken_pipe_failure(e) from e
        raise _stop_writing(closed) from e
    except BaseException as e:                  # an Exit(1) after partial output, too: flushed here
        closed = _closed_outputs()
        if closed:
            raise _stop_writing(closed) from e
        raise
    closed = _closed_outputs()
    if closed:
        raise _stop_writing(closed)


def _raise_broken_pipe(console: Console) -> None:
    """rich's hook for a closed output (:meth:`rich.console.Console.on_broken_pipe`), which by default
    exits 1 silently: the BrokenPipeError is raised on, to :func:`stops_quietly_when_output_closes`."""
    raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))


def run_command_line(command: Any, args: Optional[list[str]] = None, prog_name: Optional[str] = None) -> None:
    """Run a Click ``command`` as a program (``soundsift``, ``python -m trainer.corpus``): its exit
    skips collecting the heap (:func:`exit_without_collecting`), stdout and stderr are watched
    for a reader that is gone (:func:`_watched`), and every rich console, help's too, leaves a
    closed stdout or stderr to :func:`stops_quietly_when_output_closes`."""
    exit_without_collecting()
    sys.stdout, sys.stderr = _watched(sys.stdout), _watched(sys.stderr)
    Console.on_broken_pipe = _raise_broken_pipe      # type: ignore[method-assign]
    try:
        command.main(args=args, prog_name=prog_name)
    except OSError as e:        # --help or a usage text, written before any command's reports_errors
        if e.errno not in _REFUSED_WRITES:
            raise
        _say_refused_write(e)
        _discard_output(sys.stdout)
        raise SystemExit(1) from e


def _discard_output(stream: Any) -> None:
    """Point ``stream`` (stdout) at /dev/null and drop what it holds unwritten, so that the exit's
    flush does not fail again ("Exception ignored …") after the one line said why."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, stream.fileno())
        finally:
            os.close(devnull)
        stream.flush()
    except (OSError, ValueError) as e:      # no file under it (a test's capture): nothing to drop
        log.debug("stdout left as it is: %s", e)


def setup_logging(verbose: bool = False) -> None:
    """Log to stderr (:class:`TerminalSafeFormatter`); INFO by default, DEBUG with --verbose."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(TerminalSafeFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler], force=True)
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)


def print_json(obj: Any) -> None:
    """Write one JSON document to stdout."""
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, indent=2) + "\n")
    sys.stdout.flush()


def error_records(errors: Iterable[Any]) -> list[dict[str, str]]:
    """Files that could not be used, as every command's --json lists them (``"errors"``, as
    `index` does): ``{"path", "reason"}`` each, from errors carrying those two (UnreadableAudio)."""
    return [{"path": str(e.path), "reason": str(e.reason)} for e in errors]


def relays_decoder_output(fn: F) -> F:
    """Run a command that decodes audio in its own process inside
    :func:`engine.audio.relaying_decoder_output`: decoder libraries' stderr lines are logged
    under the file they are about (warnings; debug detail for a file that failed)."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from engine.audio import relaying_decoder_output

        with relaying_decoder_output():
            return fn(*args, **kwargs)
    return wrapper  # type: ignore[return-value]


#: what the machine refused when a command wrote (not a bug): said in one line like a SoundsiftError
_REFUSED_WRITES = READ_ONLY_ERRNOS | {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}    # EFBIG: over a size limit


#: the exit status of a command Ctrl-C stopped (the shell's 128 + SIGINT), in every command
INTERRUPTED_EXIT = 130


def reports_errors(fn: F) -> F:
    """Turn a SoundsiftError into one clear line on stderr and exit code 1; so too a write the
    machine refuses (permission denied, a read-only drive, a full disk), naming the file. A
    Ctrl-C (or a SIGTERM the indexer turned into one) the command did not handle itself is
    ``interrupted`` on stderr and exit status 130, as in the commands that do, whatever the
    installed Typer does (before its own 130, Click said "Aborted!" and exit 1, a failed run's)."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except KeyboardInterrupt as e:
            err_console.print("interrupted", style="bold yellow", highlight=False)
            raise typer.Exit(INTERRUPTED_EXIT) from e
        except SoundsiftError as e:
            err_console.print(labelled("error:", "bold red", e), highlight=False, soft_wrap=True)
            raise typer.Exit(1) from e
        except OSError as e:
            if e.errno not in _REFUSED_WRITES:
                raise
            _say_refused_write(e)
            raise typer.Exit(1) from e
    return wrapper  # type: ignore[return-value]


def _say_refused_write(e: OSError) -> None:
    """One line on stderr for a write the machine refused (:data:`_REFUSED_WRITES`), naming the file."""
    where = f"{e.filename}: " if e.filename else ""
    err_console.print(labelled("error:", "bold red", f"{where}{(e.strerror or str(e)).lower()}"),
                      highlight=False, soft_wrap=True)


def present_audio_files(paths: list[Path], logger: logging.Logger) -> tuple[list[Path], list[Path]]:
    """The audio files under ``paths`` and the paths that do not exist, each warned about once
    ("gone.wav: no such file or folder") while the rest go on (`soundsift tag`, `soundsift caption`).
    One path that does not exist is the command's error, as before; InvalidQuery too when no
    audio file is left."""
    from engine.audio import audio_files
    from engine.errors import InvalidQuery

    missing: list[Path] = []
    files = audio_files(paths, missing=missing if len(paths) > 1 else None)
    for p in missing:
        logger.warning("%s: no such file or folder", p)
    if not files:
        present = [p for p in paths if p not in missing]
        raise InvalidQuery(f"no audio files under {', '.join(map(str, present))}" if present else
                           f"none of the {len(paths)} paths exists (warnings above)")
    return files, missing
