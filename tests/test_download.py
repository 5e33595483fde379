"""下载逻辑的测试：只连本机 (127.0.0.1) 上的测试服务器，从不连互联网。"""
import http.server
import io
import threading
import zipfile

import pytest

from studygpt.corpus.download import download, fetch
from studygpt.errors import StudyGPTError


def make_zip() -> bytes:
    text = "".join(f"E\nM 你好{i}\nM 你好！{i * 7919 % 10007}\n" for i in range(3000))  # 约 60 KB，压缩后仍有 10 KB 以上
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("results/xiaohuangji50w_nofenci.conv", text)
    return buf.getvalue()


class Server:
    """一个支持 Range 请求的极简 HTTP 服务器；可以设置"发到一半就断开"。"""

    def __init__(self, payload: bytes):
        self.payload, self.cut_after, self.requests = payload, None, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.requests.append(self.headers.get("Range"))
                start = 0
                if self.headers.get("Range"):
                    start = int(self.headers["Range"].split("=")[1].split("-")[0])
                    if start >= len(outer.payload):
                        self.send_response(416)
                        self.end_headers()
                        return
                    self.send_response(206)
                else:
                    self.send_response(200)
                body = outer.payload[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if outer.cut_after is not None:
                    body = body[:outer.cut_after]  # 声称的长度比实际发送的多：模拟断线
                    outer.cut_after = None
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/x.zip"

    def close(self):
        self.httpd.shutdown()


@pytest.fixture
def server():
    s = Server(make_zip())
    yield s
    s.close()


def test_download_extracts_conv(server, tmp_path):
    paths = download("xiaohuangji", tmp_path, url=server.url, progress=False)
    assert [p.name for p in paths] == ["xiaohuangji50w_nofenci.conv"]
    assert paths[0].read_text(encoding="utf-8").startswith("E\nM 你好0\n")


def test_interrupted_download_resumes_with_range(server, tmp_path):
    assert len(server.payload) > 5000
    server.cut_after = 1000
    with pytest.raises(StudyGPTError, match="再次运行会接着下载"):
        fetch(server.url, tmp_path / "a.zip", progress=False, timeout=5)
    part = tmp_path / "a.zip.part"
    assert part.stat().st_size == 1000  # 断点之前的部分保留着
    fetch(server.url, tmp_path / "a.zip", progress=False)
    assert server.requests[-1] == "bytes=1000-"
    assert (tmp_path / "a.zip").read_bytes() == server.payload and not part.exists()


def test_corrupt_archive_is_a_clear_error_and_removed(tmp_path):
    bad = bytearray(make_zip())
    bad[len(bad) // 2] ^= 0xFF  # 弄坏压缩数据中间的一个字节
    s = Server(bytes(bad))
    try:
        with pytest.raises(StudyGPTError, match="损坏"):
            download("xiaohuangji", tmp_path, url=s.url, progress=False)
    finally:
        s.close()
    assert not list(tmp_path.glob("*.zip*"))  # 坏包已删除，不会被悄悄拿来用
    assert not list(tmp_path.glob("*.conv"))


def test_unreachable_url_is_one_line(tmp_path):
    with pytest.raises(StudyGPTError, match="连不上") as err:
        download("xiaohuangji", tmp_path, url="http://127.0.0.1:9/none.zip", progress=False)
    assert "\n" not in str(err.value)
