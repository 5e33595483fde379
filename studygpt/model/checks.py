"""加载之前先体检 (checks before loading)：陌生人给的检查点，坏在哪里都只得到一句话。

model/checkpoint.py 加载一个检查点之前，这里先用很少的内存核对三件事：
    1. config.json 说的模型有多大 —— 和 model.safetensors 的文件大小比，荒唐的数字在分配内存之前就被拒绝；
    2. model.safetensors 的文件头 (header) —— 头的长度、每个张量的类型、形状、在文件里的位置都要说得通；
    3. 文件头里的张量名字和形状 —— 和按配置"搭"出来的模型逐个对上。
"搭"模型用的是 meta 设备 (meta device)：张量只有形状、没有数据，一个字节也不分配。
所以一个伪造的文件头（说自己有 1 TB、或者偏移指到文件外面）最多让我们读几个字节的头，然后一句话拒绝。
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from studygpt.errors import StudyGPTError
from studygpt.model.lora import build_model
from studygpt.model.transformer import Block, ModelConfig

# safetensors 的数据类型 → 每个元素几字节
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
MAX_HEADER_BYTES = 100 * 2**20  # safetensors 自己也拒绝超过 100 MB 的文件头
SLACK_BYTES = 64 * 2**20        # 加载时允许超出文件大小两倍的余量（位置编码表、各种小开销）


def _broken(path: Path, what: str) -> StudyGPTError:
    return StudyGPTError(f"{path}: {what}；文件被截断、改坏或伪造了，拒绝加载 (refused)。请重新保存或重新下载这个检查点。")


# ===== 1. 配置说的大小 vs 文件大小 =====
def load_bytes_estimate(config: ModelConfig) -> int:
    """按配置估算加载时要分配多少字节：fp32 参数 + 位置编码表 (RoPE cos/sin)。

    只"搭"一个 Block（在 meta 设备上，不占内存）数它的参数，再乘层数：
    即使配置说有十亿层，这里也是一瞬间。
    """
    with torch.device("meta"):
        block = Block(config)
    per_block = sum(p.numel() for p in block.parameters())
    params = config.vocab_size * config.d_model + config.n_layers * per_block + config.d_model
    rope = 2 * config.max_len * (config.head_size // 2)  # cos 和 sin 两张 (max_len, hs/2) 的表
    return 4 * (params + rope)


def check_size(config: ModelConfig, weights: Path) -> None:
    """配置说的模型比 model.safetensors 大得离谱 → 在分配之前拒绝。"""
    need, size = load_bytes_estimate(config), weights.stat().st_size
    if need > 2 * size + SLACK_BYTES:
        raise _broken(weights.parent / "config.json",
                      f"配置说加载要分配约 {need / 2**30:,.1f} GB，而 model.safetensors 只有 {size / 2**20:,.1f} MB")


# ===== 2. safetensors 文件头 =====
def read_header(path: Path) -> dict[str, tuple[int, ...]]:
    """只读文件头，核对每个张量的类型、形状、位置。出: {张量名: 形状}。

    safetensors 的格式：8 字节小端整数 N，N 字节 JSON 头，然后是数据区。
    JSON 头里每个张量：{"dtype": "F32", "shape": [...], "data_offsets": [起, 止]}（相对数据区）。
    """
    size = path.stat().st_size
    with open(path, "rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise _broken(path, f"只有 {size} 字节，连 safetensors 的文件头长度都不完整")
        n = int.from_bytes(prefix, "little")
        if n > min(size - 8, MAX_HEADER_BYTES):
            raise _broken(path, f"文件头说自己有 {n:,} 字节，而整个文件只有 {size:,} 字节")
        try:
            header = json.loads(f.read(n))
        except (ValueError, RecursionError):  # ValueError 包括 JSONDecodeError 和 UTF-8 解码错误
            header = None
    if not isinstance(header, dict):
        raise _broken(path, "文件头不是一个 JSON 对象")
    data_bytes = size - 8 - n
    shapes = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        shape, offsets = (info.get("shape"), info.get("data_offsets")) if isinstance(info, dict) else (None, None)
        dtype_ok = isinstance(info, dict) and info.get("dtype") in DTYPE_BYTES
        if not (dtype_ok and _ints(shape) and _ints(offsets) and len(offsets) == 2):
            raise _broken(path, f"张量 {name!r} 的描述缺少或写错了 dtype / shape / data_offsets")
        start, end = offsets
        if not 0 <= start <= end <= data_bytes or end - start != math.prod(shape) * DTYPE_BYTES[info["dtype"]]:
            raise _broken(path, f"张量 {name!r} 的位置 {offsets} 超出数据区（{data_bytes:,} 字节）或与形状 {shape} 不符")
        shapes[name] = tuple(shape)
    return shapes


def _ints(values) -> bool:
    return isinstance(values, list) and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values)


# ===== 3. 名字和形状与配置一一对上 =====
def check_weights(ckpt: Path, config: ModelConfig, lora: dict | None = None) -> None:
    """加载 model.safetensors 之前的全部核对；任何一处不对都是一句 StudyGPTError。lora：没合并的适配器的配置。"""
    weights = ckpt / "model.safetensors"
    check_size(config, weights)
    found = read_header(weights)
    with torch.device("meta"):  # 只要形状：meta 设备上的模型不占内存
        expected = {k: tuple(v.shape) for k, v in build_model(config, lora).state_dict().items()}
    missing, unexpected = set(expected) - set(found), set(found) - set(expected)
    if missing or unexpected:
        raise StudyGPTError(f"{weights} 与模型结构不符：缺少 {sorted(missing)}，多出 {sorted(unexpected)}。")
    wrong = [f"{k} 是 {list(found[k])}、配置要 {list(expected[k])}" for k in expected if found[k] != expected[k]]
    if wrong:
        raise StudyGPTError(f"{weights}: 张量形状与 config.json 不符（{'; '.join(wrong[:3])}）；"
                            "权重和配置不是同一个模型的，请用同一次训练保存的整个检查点文件夹。")
