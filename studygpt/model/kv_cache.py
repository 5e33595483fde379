"""KV 缓存 (KV cache)：生成时记住每层已经算过的 key/value（课程第 8 章）。

生成第 t 个词元时，前面 t-1 个词元的 key/value 和上一步算的一模一样：存起来，每步只算新词元的，
不必把整个前文重算一遍。形状 (B, nh, max_len, hs) 的张量一次分配好，新词元写进下一个位置。
model/transformer.py 的 Attention.forward 收到 cache 时读写它；generation/ 建它（config 是模型的 ModelConfig）。
"""
from __future__ import annotations

import torch


class KVCache:
    """生成时缓存每层已算过的 key/value：每步只需算新词元，不必把整个前文重算一遍。"""

    def __init__(self, config, batch_size: int, device, dtype):
        shape = (batch_size, config.n_head, config.max_len, config.head_size)
        self.k = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layers)]
        self.v = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layers)]
        self.length = 0  # 已缓存的词元数 (tokens cached so far)

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """写入新词元的 k/v（形状 (B, nh, T_new, hs)），返回到目前为止的全部 k/v。"""
        start, end = self.length, self.length + k.shape[2]
        self.k[layer][:, :, start:end] = k
        self.v[layer][:, :, start:end] = v
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]
