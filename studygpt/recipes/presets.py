"""预设 (presets)：模型大小与训练超参数的几套搭配。`--preset NAME` 选一套，`--key value` 再逐项覆盖。

每套只写和默认值不同的几项，其余由 ModelConfig / TrainConfig 的默认值给出：
- tiny：CPU 上几分钟就能学会内置语料（快速上手 quickstart 用），约 0.6M 参数；
- small：更大的 CPU/GPU 练习模型；
- study：就是默认值，512/8/4/256、10000 字词表，适合 GPU 上训练完整语料；
- auto：按时间预算（--max-minutes）在这台机器上实测后定大小（见 sizing.py），上下文 256。
训练的每行长度 seq_len 没写时等于模型的 max_len。
"""
from __future__ import annotations

import dataclasses

from studygpt.errors import StudyGPTError
from studygpt.model.transformer import ModelConfig

DEFAULT_MAX_VOCAB_SIZE = 10000  # 词表上限（含特殊词元）；预设里写了 max_vocab_size 时以预设为准

PRESETS: dict[str, dict] = {
    "tiny": {"model": {"d_model": 128, "n_head": 4, "n_layers": 2, "max_len": 192}, "train": {"lr": 3e-3}},
    "small": {"model": {"d_model": 256, "n_head": 4}, "train": {"lr": 2e-3}},
    "study": {"model": {}, "train": {}},
    "auto": {"model": {}, "train": {}},  # 训练前由 sizing.py 按预算换掉模型大小与学习率，写进运行设置
}


def get_preset(name: str) -> dict:
    """一套预设的完整设置：{"model": 全部模型设置（除 vocab_size）, "train": 与默认不同的训练设置（含 seq_len）,
    "max_vocab_size": 词表上限}。"""
    if name not in PRESETS:
        raise StudyGPTError(f"未知的预设 (preset) {name!r}；可选：{', '.join(PRESETS)}。")
    preset = PRESETS[name]
    defaults = {f.name: f.default for f in dataclasses.fields(ModelConfig) if f.name != "vocab_size"}
    model = {**defaults, **preset["model"]}
    return {"model": model, "train": {"seq_len": model["max_len"], **preset["train"]},
            "max_vocab_size": preset.get("max_vocab_size", DEFAULT_MAX_VOCAB_SIZE)}
