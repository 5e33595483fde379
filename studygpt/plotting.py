"""画图用的中文字体 (CJK fonts for matplotlib)：让图里的汉字显示成字，而不是一个个方框 (tofu)。

matplotlib 只认识"建字体缓存 (font cache) 那一刻"已经装好的字体。先装 matplotlib、后装中文字体
（例如 `apt-get install fonts-wqy-microhei`）时，缓存里没有这个字体，汉字就画成方框。
这里的做法：把系统里缓存之外的字体文件逐个 `fontManager.addfont(path)` 补登记，
再把找到的中文字体放到 `font.sans-serif` 的最前面。只改当前进程的设置，不动缓存文件。
"""
from __future__ import annotations

import os

# 常见的中文字体名（按优先顺序）：Linux 的文泉驿、Noto/思源，macOS 与 Windows 自带的黑体
CJK_FONT_NAMES = ["WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Noto Sans CJK SC", "Noto Sans SC",
                  "Source Han Sans SC", "PingFang SC", "Heiti SC", "Microsoft YaHei", "SimHei"]
# 已知的字体文件位置：即使系统字体目录扫描不到，也先试这些
KNOWN_FONT_FILES = ["/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
                    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
                    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"]
INSTALL_HINT = ("没有找到中文字体，图里的汉字会显示成方框 (no CJK font)；安装一个：sudo apt-get install -y "
                "fonts-wqy-microhei（macOS / Windows 自带中文字体）。")


def _register_new_font_files() -> None:
    """把缓存之后才装上的字体文件登记给 matplotlib（已登记的跳过，坏文件忽略）。"""
    from matplotlib import font_manager
    known = {f.fname for f in font_manager.fontManager.ttflist}
    candidates = [p for p in KNOWN_FONT_FILES if os.path.exists(p)] + font_manager.findSystemFonts()
    for path in dict.fromkeys(candidates):  # 去重且保持顺序
        if path not in known:
            try:
                font_manager.fontManager.addfont(path)
            except (OSError, RuntimeError, ValueError):
                continue  # 读不了的字体文件：跳过它，不影响其他字体


def setup_cjk_font(names: list[str] | None = None) -> str | None:
    """让 matplotlib 用中文字体。返回用上的字体名；一个都没有时返回 None（调用者打印 INSTALL_HINT）。

    names：按优先顺序的候选字体名，默认 CJK_FONT_NAMES。
    """
    from matplotlib import font_manager, rcParams
    names = CJK_FONT_NAMES if names is None else names
    available = {f.name for f in font_manager.fontManager.ttflist}
    if not any(n in available for n in names):
        _register_new_font_files()
        available = {f.name for f in font_manager.fontManager.ttflist}
    found = [n for n in names if n in available]
    if not found:
        return None
    rcParams["font.family"] = "sans-serif"
    rcParams["font.sans-serif"] = found + [f for f in rcParams["font.sans-serif"] if f not in found]
    rcParams["axes.unicode_minus"] = False  # 中文字体里常常没有数学负号 U+2212，用普通减号
    return found[0]
