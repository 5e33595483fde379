"""画图 (plotting)：训练的损失曲线 loss_curve.png，以及让图里的汉字显示成字的中文字体设置。

损失曲线 (plot_loss_curves)：训练损失与验证损失画在同一张图上，虚线标出每个 epoch 的结束，
星号标出验证损失最低的点（best/ 保存的就是它）。两条线分开的地方，就是模型开始背训练集的地方。

中文字体 (setup_cjk_font)：让图里的汉字显示成字，而不是一个个方框 (tofu)。

matplotlib 只认识"建字体缓存 (font cache) 那一刻"已经装好的字体。先装 matplotlib、后装中文字体
（例如 `apt-get install fonts-wqy-microhei`）时，缓存里没有这个字体，汉字就画成方框。
这里的做法：把系统里缓存之外的字体文件逐个 `fontManager.addfont(path)` 补登记，
再把找到的中文字体放到 `font.sans-serif` 的最前面。只改当前进程的设置，不动缓存文件。
一个中文字体都没有时，图照样画（汉字是方框）：matplotlib 会为每个画不出的字警告一次（英文的 "Glyph … missing"），
这里把这些警告关掉，改为在本进程里只打印一次中文的安装提示 INSTALL_HINT。
"""
from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path

# 常见的中文字体名（按优先顺序）：Linux 的文泉驿、Noto/思源，macOS 与 Windows 自带的黑体
CJK_FONT_NAMES = ["WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Noto Sans CJK SC", "Noto Sans SC",
                  "Source Han Sans SC", "PingFang SC", "Heiti SC", "Microsoft YaHei", "SimHei"]
# 已知的字体文件位置：即使系统字体目录扫描不到，也先试这些
KNOWN_FONT_FILES = ["/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
                    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
                    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"]
FONT_INSTALL_COMMAND = "sudo apt-get install -y fonts-wqy-microhei"  # `studygpt doctor` 给的也是这一条
INSTALL_HINT = ("没有找到中文字体，图里的汉字会显示成方框 (no CJK font)；安装一个："
                f"{FONT_INSTALL_COMMAND}（macOS / Windows 自带中文字体）。")


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
    """让 matplotlib 用中文字体。返回用上的字体名；一个都没有时返回 None，并关掉逐字的警告（quiet_missing_glyphs）。

    names：按优先顺序的候选字体名，默认 CJK_FONT_NAMES。每个画图的地方在画之前调用它。
    """
    from matplotlib import font_manager, rcParams
    names = CJK_FONT_NAMES if names is None else names
    available = {f.name for f in font_manager.fontManager.ttflist}
    if not any(n in available for n in names):
        _register_new_font_files()
        available = {f.name for f in font_manager.fontManager.ttflist}
    found = [n for n in names if n in available]
    if not found:
        quiet_missing_glyphs()
        return None
    rcParams["font.family"] = "sans-serif"
    rcParams["font.sans-serif"] = found + [f for f in rcParams["font.sans-serif"] if f not in found]
    rcParams["axes.unicode_minus"] = False  # 中文字体里常常没有数学负号 U+2212，用普通减号
    return found[0]


class _NoFindfont(logging.Filter):
    """丢掉 matplotlib.font_manager 的 "findfont: Font family … not found" 日志（找不到字体的另一种说法）。"""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("findfont")


def quiet_missing_glyphs() -> None:
    """没有中文字体时：不再为每个画不出的字警告 ("Glyph … missing from font(s)")，也不记 findfont 日志；
    本进程第一次调用时在标准错误 (stderr) 打印一行 INSTALL_HINT——一行能照着做的中文提示，代替几十行英文警告。"""
    warnings.filterwarnings("ignore", message=r"Glyph .* missing from", category=UserWarning)  # 重复调用不会重复添加
    logger = logging.getLogger("matplotlib.font_manager")
    if not any(isinstance(f, _NoFindfont) for f in logger.filters):  # 过滤器还没装上：本进程第一次
        logger.addFilter(_NoFindfont())
        print(INSTALL_HINT, file=sys.stderr)


def plot_loss_curves(history: list[dict], path: str | Path) -> Path | None:
    """history 是 metrics.jsonl 的记录；画训练损失（细线）、验证损失（圆点）、epoch 边界（竖虚线）。

    没有训练损失的记录时不画，返回 None。
    """
    train = [(h["step"], h["loss"]) for h in history if "loss" in h]
    if not train:
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    val = [(h["step"], h["val_loss"]) for h in history if "val_loss" in h]
    epoch_ends = sorted({h["step"] for h in history if h.get("epoch_end")})
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for i, step in enumerate(epoch_ends):
        ax.axvline(step, color="grey", ls=":", lw=0.8, label="epoch end" if i == 0 else None)
    ax.plot(*zip(*train), lw=1.0, label="train loss")
    if val:
        ax.plot(*zip(*val), "o-", ms=3, label="val loss")
        best_step, best_loss = min(val, key=lambda sv: sv[1])
        ax.plot([best_step], [best_loss], "*", ms=12, color="tab:red", label=f"best val {best_loss:.3f}")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy (nats)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_metric_panels(history: list[dict], path: str | Path, panels: list[tuple[str, str]]) -> Path | None:
    """metrics.jsonl 里的几项指标各画一张小图（横轴是优化步），并排存成一张 PNG。

    panels: [(指标名, 标题)]；某项一条记录都没有时那张小图留空。history 里没有任何一项时不画，返回 None。
    """
    series = {key: [(h["step"], h[key]) for h in history if key in h] for key, _ in panels}
    if not any(series.values()):
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    setup_cjk_font()
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.2), squeeze=False)
    for ax, (key, title) in zip(axes[0], panels):
        points = sorted(series[key])
        if points:
            ax.plot(*zip(*points), "o-" if len(points) < 40 else "-", ms=3, lw=1.0)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_runs(runs: dict[str, list[dict]], path: str | Path, title: str = "") -> Path | None:
    """几次训练的损失曲线画在同一张图上（break-it 实验：对照组与实验组）。runs: {图例名: metrics.jsonl 的记录}。

    每次训练一种颜色：训练损失是细线，验证损失是同色的圆点。没有中文字体时图例与标题里的汉字会是方框，
    所以这时只留括号里的英文（图例名写成 "对照组 (baseline)" 这样）。一条训练损失都没有时不画，返回 None。
    """
    if not any("loss" in h for history in runs.values() for h in history):
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    has_font = setup_cjk_font() is not None

    def text(label: str) -> str:
        return label if has_font or "(" not in label else label[label.index("(") + 1:label.rindex(")")]

    fig, ax = plt.subplots(figsize=(7, 3.8))
    for (label, history), color in zip(runs.items(), ["tab:blue", "tab:red", "tab:green", "tab:purple"]):
        train = [(h["step"], h["loss"]) for h in history if "loss" in h]
        val = [(h["step"], h["val_loss"]) for h in history if "val_loss" in h]
        if train:
            ax.plot(*zip(*train), lw=1.0, color=color, label=f"{text(label)} train")
        if val:
            ax.plot(*zip(*val), "o", ms=3, color=color, label=f"{text(label)} val")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy (nats)")
    ax.set_title(text(title) if title else "", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
