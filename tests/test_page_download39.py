"""The page's "File" download of a result reads the file's header first: a file overwritten since
it was indexed by something that is not audio (a web page saved over it) is refused by name, as
``soundsift search --export`` refuses it, instead of being handed out as the result."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from engine.errors import UnreadableAudio
from ui.components.downloads import file_bytes


def test_file_download_of_audio_is_the_file_byte_for_byte(tmp_path):
    path = tmp_path / "dog.flac"
    sf.write(path, (0.1 * np.sin(np.arange(8000) / 5)).astype(np.float32), 16000)
    assert file_bytes(str(path)) == path.read_bytes()


def test_file_download_of_a_file_overwritten_by_no_audio_is_refused(tmp_path):
    path = tmp_path / "dog.flac"
    path.write_text("<html>404 not found</html>\n")
    with pytest.raises(UnreadableAudio) as e:
        file_bytes(str(path))
    assert str(path) in str(e.value) and "not readable as audio" in str(e.value)
