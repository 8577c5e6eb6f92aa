"""`hgpt data fetch` against a local mirror on loopback: downloads, verifies checksums, skips what is there, and
leaves nothing behind when a file is corrupt."""

import functools
import http.server
import threading

import pytest

from humanoid_gpt.data.fetch import DownloadError, fetch_lafan1, lafan1_checksums


@pytest.fixture
def mirror(tmp_path, lafan1_dir):
    root = tmp_path / "mirror"
    root.mkdir()
    for name in lafan1_checksums():
        (root / name).symlink_to(lafan1_dir / name)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_fetch_downloads_and_verifies(tmp_path, mirror):
    _, url = mirror
    dest = tmp_path / "data"
    files = fetch_lafan1(dest, base_url=url)
    assert len(files) == 40 and all(f.is_file() for f in files)
    # A second run finds every file verified and downloads nothing (the mirror is gone).
    assert fetch_lafan1(dest, base_url="http://127.0.0.1:9") == files


def test_corrupt_download_is_rejected_and_not_kept(tmp_path, mirror):
    root, url = mirror
    victim = sorted(lafan1_checksums())[0]
    (root / victim).unlink()
    (root / victim).write_text("0,0,0\n")
    dest = tmp_path / "data"
    with pytest.raises(DownloadError, match=f"{victim}: sha256 .* does not match"):
        fetch_lafan1(dest, base_url=url)
    assert not (dest / victim).exists()
    assert not [p for p in dest.iterdir() if p.name.startswith(".")]


def test_unreachable_server_names_the_fix(tmp_path):
    with pytest.raises(DownloadError, match="HGPT_LAFAN1_URL"):
        fetch_lafan1(tmp_path, base_url="http://127.0.0.1:9", timeout=2)
