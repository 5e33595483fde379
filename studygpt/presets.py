"""预设 (presets)：模型大小与训练超参数的几套搭配。`--preset NAME` 选一套，`--key value` 再逐项覆盖。

- tiny：CPU 上几分钟就能学会内置语料（快速上手 quickstart 用），约 0.6M 参数；
- small：更大的 CPU/GPU 练习模型；
- study：原项目 StudyTinyModel 的结构 512/8/4/256、10000 字词表，适合 GPU 上训练完整语料。
"""
from __future__ import annotations

from studygpt.errors import StudyGPTError

PRESETS: dict[str, dict] = {
    "tiny": {
        "model": {"d_model": 128, "n_head": 4, "n_layers": 2, "max_len": 192},
        "train": {"lr": 3e-3, "batch_size": 16, "seq_len": 192, "weight_decay": 0.1, "warmup_ratio": 0.03},
        "max_vocab_size": 10000,
    },
    "small": {
        "model": {"d_model": 256, "n_head": 4, "n_layers": 4, "max_len": 256},
        "train": {"lr": 2e-3, "batch_size": 16, "seq_len": 256, "weight_decay": 0.1, "warmup_ratio": 0.03},
        "max_vocab_size": 10000,
    },
    "study": {
        "model": {"d_model": 512, "n_head": 8, "n_layers": 4, "max_len": 256},
        # 原项目的 lr=5e-3 对这个模型偏大；有预热与梯度裁剪也能训，但 1e-3 更稳
        "train": {"lr": 1e-3, "batch_size": 16, "seq_len": 256, "weight_decay": 0.1, "warmup_ratio": 0.03},
        "max_vocab_size": 10000,
    },
}


def get_preset(name: str) -> dict:
    if name not in PRESETS:
        raise StudyGPTError(f"未知的预设 (preset) {name!r}；可选：{', '.join(PRESETS)}。")
    return PRESETS[name]
