"""Fetch Debian packages once and unpack them without installing: ``apt-get download`` + ``dpkg -x``."""
from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

from engine.errors import CorpusError

log = logging.getLogger(__name__)


class PackageUnavailable(CorpusError):
    """A Debian package of the corpus recipe could not be downloaded or unpacked."""


def download_command(package: str) -> list[str]:
    """The command that downloads ``package``'s .deb into the current directory."""
    return ["apt-get", "download", package]


def extract_command(deb: Path, dest: Path) -> list[str]:
    """The command that unpacks ``deb`` under ``dest`` (no install, no scripts)."""
    return ["dpkg", "-x", str(deb), str(dest)]


def _run(cmd: list[str], cwd: Path | None = None) -> None:
    if shutil.which(cmd[0]) is None:
        raise PackageUnavailable(f"{cmd[0]} not found: the corpus recipe needs a Debian system "
                                 "with apt-get and dpkg")
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise PackageUnavailable(f"{' '.join(cmd)} failed ({tail[0]}); check the package name "
                                 "with `apt-cache search` and the network")


def fetch_package(package: str, cache: Path) -> Path:
    """Unpacked tree of ``package`` under ``cache/pkgs/<package>``; downloads at most once."""
    debs = cache / "debs"
    tree = cache / "pkgs" / package
    done_flag = tree / ".unpacked"
    if done_flag.exists():
        return tree
    debs.mkdir(parents=True, exist_ok=True)
    found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        log.info("downloading %s", package)
        _run(download_command(package), cwd=debs)
        found = sorted(debs.glob(f"{package}_*.deb"))
        if not found:
            raise PackageUnavailable(f"apt-get download {package} wrote no .deb into {debs}")
    tree.mkdir(parents=True, exist_ok=True)
    log.info("unpacking %s", found[-1].name)
    _run(extract_command(found[-1], tree))
    done_flag.touch()
    return tree
