"""下载真实语料 (download a real corpus)：`studygpt data download xiaohuangji`。

小黄鸡 (Xiaohuangji) 50 万句闲聊语料是公开的 zip 包。下载做到：
- 进度条；
- 断点续传 (resume)：没下完的部分存为 `*.part`，再次运行时用 HTTP Range 请求从断处接着下；
- 校验 (check)：必须是完整的 zip、里面有 .conv 文件；坏的包给出一行错误，`.part` 文件删掉，绝不拿来用；
- 解压，并打印下一步的训练命令。
网址可以用 --url 或环境变量 STUDYGPT_XIAOHUANGJI_URL 覆盖（例如换成镜像）。
"""
from __future__ import annotations

import os
import shutil
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from tqdm.auto import tqdm

from studygpt.errors import StudyGPTError

DATASETS = {
    "xiaohuangji": {
        "urls": [
            "https://github.com/aceimnorstuvwxz/dgk_lost_conv/raw/master/results/xiaohuangji50w_nofenci.conv.zip",
            "https://github.com/fateleak/dgk_lost_conv/raw/master/results/xiaohuangji50w_nofenci.conv.zip",  # 镜像
        ],
        "env": "STUDYGPT_XIAOHUANGJI_URL",
        "file": "xiaohuangji50w_nofenci.conv.zip",
    },
}
CHUNK = 1 << 16


def fetch(url: str, dest: Path, progress: bool = True, timeout: float = 30) -> Path:
    """把 url 下载到 dest；dest.part 已存在时从它的末尾续传。返回 dest。"""
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # 服务器说"范围不对"：上次其实已经下完了
            os.replace(part, dest)
            return dest
        raise StudyGPTError(f"下载 {url} 失败：HTTP {err.code}；请检查网址或用 --url 换一个镜像。") from None
    except (urllib.error.URLError, OSError) as err:
        raise StudyGPTError(f"连不上 {url}（{getattr(err, 'reason', err)}）；请检查网络，或用 --url 换一个镜像。"
                            f"已下载的部分保存在 {part}，再次运行会接着下载。") from None
    with response:
        resumed = response.status == 206
        if have and not resumed:
            have = 0  # 服务器不支持续传：从头下载
        total = response.headers.get("Content-Length")
        total = int(total) + have if total is not None else None
        with open(part, "ab" if resumed else "wb") as out, \
                tqdm(total=total, initial=have, unit="B", unit_scale=True, disable=not progress,
                     desc=dest.name) as bar:
            try:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    bar.update(len(chunk))
            except (OSError, urllib.error.URLError) as err:
                raise StudyGPTError(f"下载 {url} 中断（{err}）；已下载部分保存在 {part}，再次运行会接着下载。") from None
    if total is not None and part.stat().st_size != total:
        raise StudyGPTError(f"下载 {url} 不完整：{part.stat().st_size}/{total} 字节；再次运行会接着下载。")
    os.replace(part, dest)
    return dest


def extract_conv(archive: Path, out_dir: Path) -> list[Path]:
    """检查 zip 完整、含 .conv，再解压。坏包删除并报错，不留下半个文件。"""
    try:
        with zipfile.ZipFile(archive) as zf:
            bad = zf.testzip()  # 逐个文件校验 CRC
            if bad is not None:
                raise zipfile.BadZipFile(f"{bad} 的校验和不对")
            names = [n for n in zf.namelist() if n.endswith(".conv") and not n.startswith("__MACOSX")]
            if not names:
                raise zipfile.BadZipFile("里面没有 .conv 文件")
            paths = []
            for name in names:
                target = out_dir / Path(name).name  # 只取文件名，防止包里的 ../ 路径写到别处
                with zf.open(name) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                paths.append(target)
            return paths
    except zipfile.BadZipFile as err:
        archive.unlink(missing_ok=True)
        raise StudyGPTError(f"{archive}: 下载的压缩包损坏（{err}），已删除；请重新运行下载命令。") from None


def download(name: str, out_dir: str | Path = "data", url: str | None = None, progress: bool = True) -> list[Path]:
    """下载并解压一个语料，返回解压出的 .conv 路径。"""
    if name not in DATASETS:
        raise StudyGPTError(f"不认识的语料 {name!r}；可选：{', '.join(DATASETS)}。")
    spec = DATASETS[name]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    archive = out_dir / spec["file"]
    urls = [url] if url else ([os.environ[spec["env"]]] if os.environ.get(spec["env"]) else spec["urls"])
    errors = []
    for candidate in urls:
        if archive.exists():
            break
        try:
            fetch(candidate, archive, progress)
        except StudyGPTError as err:
            errors.append(str(err))
    if not archive.exists():
        raise StudyGPTError(" / ".join(errors))
    return extract_conv(archive, out_dir)
