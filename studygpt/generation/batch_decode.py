"""一批长短不同的提示一起逐词解码 (ragged batch decoding)：每行在自己的位置上，一步各出一个词元。

逐词解码时每一步都要把全部权重从内存读一遍，而每条提示只贡献一行向量：16 行和 1 行的一步差不多贵
（读内存为主, memory-bound）。所以要一起解码——可是提示长短不一，第 i 行的新词元在位置 P_i，不是同一个位置。
办法：
    - SlotCache：KV 缓存的每一行 (slot) 是一条提示，各有各的长度；
    - decode_rows：每行喂一个新词元，用自己的位置算 RoPE 的旋转角，掩码让第 i 行只看自己缓存里 0..P_i 的键。
用它的地方：考试与评估的批量贪心解码（本文件的 greedy_batch），服务器的连续批处理 (serve/batcher.py)。

形状记号：B 批大小（行数）· C 通道 (d_model) · nh 头数 · hs 每头维度 · L max_len · V 词表大小
"""
from __future__ import annotations

from typing import Sequence

import torch

from studygpt.generation.generate import prompt_budget
from studygpt.model.kv_cache import KVCache
from studygpt.model.scoring import eval_mode
from studygpt.model.transformer import DialogueModel
from studygpt.tokenizer.char import Tokenizer
from studygpt.tokenizer.chat_format import fit_prompt, parse_reply
from studygpt.tokenizer.specials import END


# ===== 1. 每行一条提示的 KV 缓存 =====
class SlotCache(KVCache):
    """KV 缓存 (rows, nh, L, hs)，每一行 (slot) 是一条提示，各有各的长度。

    正在解码的行总是占着前 n 行，每步只算前 n 行。update 把每行新词元的 k/v 写到这一行自己的位置上
    （positions 在每步之前设好），返回整行缓存——还没写过的位置由掩码挡住。
    """

    def __init__(self, model: DialogueModel, rows: int):
        super().__init__(model.config, rows, model.rope_cos.device, model.tok_embeddings.weight.dtype)
        self.positions = torch.zeros(0, dtype=torch.long)

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = k.shape[0]  # k, v: (n, nh, 1, hs)
        rows = torch.arange(n, device=k.device)
        self.k[layer][rows, :, self.positions] = k[:, :, 0]  # 第 i 行写在它自己的位置 positions[i]
        self.v[layer][rows, :, self.positions] = v[:, :, 0]
        return self.k[layer][:n], self.v[layer][:n]  # (n, nh, L, hs)

    def load(self, row: int, single: KVCache) -> None:
        """把一个单独 prefill 好的缓存（批大小 1）抄进第 row 行。"""
        self.load_rows([row], single)

    def load_rows(self, rows: Sequence[int], prefilled: KVCache) -> None:
        """把一起 prefill 好的几条等长提示（prefilled 的第 j 行）抄进第 rows[j] 行。"""
        index = torch.tensor(rows, device=self.k[0].device)
        for mine, theirs in zip(self.k + self.v, prefilled.k + prefilled.v):
            mine[index, :, :prefilled.length] = theirs[:, :, :prefilled.length]

    def move(self, src: int, dst: int) -> None:
        """第 src 行搬到第 dst 行（dst 的那条已经做完）。"""
        for t in self.k + self.v:
            t[dst] = t[src]

    def keep(self, rows: torch.Tensor) -> None:
        """只留下 rows 这几行，依次搬到最前面（做完的行不再陪着算）。"""
        for t in self.k + self.v:
            t[:len(rows)] = t[rows]


# ===== 2. prefill 与一起解码一步 =====
@torch.inference_mode()
def decode_rows(model: DialogueModel, tokens: torch.Tensor, positions: torch.Tensor, cache: SlotCache) -> torch.Tensor:
    """每行一个新词元，一起穿过模型：tokens, positions (B,) → logits (B, V)；k/v 写进 cache 的前 B 行。

    和 DialogueModel.forward 是同一串模块（嵌入 → 各层 Block → 归一化 → 输出层），只是每行有自己的位置，
    掩码让第 i 行只看自己缓存里 0..positions[i] 的键。
    """
    B, L = tokens.shape[0], model.config.max_len
    cos = model.rope_cos[positions[:, None]].unsqueeze(1)  # (B, 1, 1, hs/2)：每行自己的旋转角
    sin = model.rope_sin[positions[:, None]].unsqueeze(1)
    mask = (torch.arange(L, device=tokens.device) <= positions[:, None]).view(B, 1, 1, L)  # True = 可以看
    cache.positions = positions
    x = model.tok_embeddings(tokens[:, None])  # (B, 1, C)
    for i, layer in enumerate(model.layers):
        x = layer(x, cos, sin, mask, cache, i)
    return model.output(model.norm(x))[:, 0]  # (B, V)


@torch.inference_mode()
def prefill_rows(model: DialogueModel, prompts: Sequence[Sequence[int]], cache: SlotCache) -> torch.Tensor:
    """每条提示过一遍模型，k/v 抄进 cache 的第 0..B-1 行；返回每条最后一个位置的 logits (B, V)。

    等长的提示放在一起 prefill（同一个矩阵，不需要填充和掩码），输出层只算最后一个位置。
    """
    config, weights = model.config, model.tok_embeddings.weight
    logits = torch.empty(len(prompts), config.vocab_size, device=weights.device, dtype=weights.dtype)
    groups: dict[int, list[int]] = {}
    for i, p in enumerate(prompts):
        groups.setdefault(len(p), []).append(i)
    for members in groups.values():
        same_length = KVCache(config, len(members), weights.device, weights.dtype)
        x = torch.tensor([prompts[i] for i in members], device=weights.device)
        hidden = model(x, cache=same_length, return_hidden=True)[:, -1]  # (b, C)；same_length.length 变成 x 的长度
        cache.load_rows(members, same_length)
        logits[members] = model.output(hidden)
    return logits


# ===== 3. 考试用：一批问题一起贪心解码 =====
def greedy_batch(model: DialogueModel, tokenizer: Tokenizer, questions: Sequence[str], max_length: int = 100,
                 batch_size: int = 64, histories: Sequence[Sequence[str]] | None = None) -> list[str]:
    """一次给很多个问题做贪心解码 (batched greedy decoding)，用于考试式评估（几百道题）。

    histories：每个问题之前的轮次 [用户, 助手, ...]（多轮考试用），放不下时与聊天一样由 fit_prompt 从最早的丢起。

    每 batch_size 个问题一批：提示长短不一也没关系（batch_decode：每行在自己的位置上解码）。每步整批一起前进，
    遇到 <|end|> 或写满的行离开批，全部离开就停。与逐条生成是同一个计算，只是矩阵更大
    （浮点求和顺序不同，极少数几乎打平的位置可能选出不同的字）。
    """
    end_id = tokenizer.token_id(END)
    histories = histories if histories is not None else [[]] * len(questions)
    budget = prompt_budget(model.config.max_len, max_length)
    prompts = [fit_prompt(tokenizer, h, q, budget) for q, h in zip(questions, histories, strict=True)]
    replies: list[str] = []
    with eval_mode(model):
        for start in range(0, len(prompts), batch_size):
            for ids in greedy_rows(model, prompts[start:start + batch_size], max_length, end_id):
                replies.append(parse_reply(ids, tokenizer).content)  # 只要正文：<think> 草稿不算回答
    return replies


@torch.inference_mode()
def greedy_rows(model: DialogueModel, prompts: Sequence[list[int]], max_length: int, end_id: int) -> list[list[int]]:
    """一批长短不一的提示一起贪心解码；返回每条回答的词元（不含 <|end|>）。"""
    device = model.tok_embeddings.weight.device
    cache = SlotCache(model, len(prompts))
    token = prefill_rows(model, prompts, cache).argmax(-1)                      # (B,)：每行第一个词元
    positions = torch.tensor([len(p) for p in prompts], device=device)          # 这个词元要放在第几个位置
    limits = torch.tensor([min(max_length, model.config.max_len - len(p)) for p in prompts], device=device)
    rows = torch.arange(len(prompts), device=device)                            # 还在解码的行原本是第几条
    replies: list[list[int]] = [[] for _ in prompts]
    written = 0                                                                 # 还在写的行每行都已写了这么多个词元
    while True:
        for row, t in zip(rows.tolist(), token.tolist()):
            replies[row].append(t)
        written += 1
        going = (token != end_id) & (limits[rows] > written)                   # 没说完、也没写满的行
        if not going.any():
            break
        if not going.all():                                                     # 做完的行离开：缓存里只留下还在写的
            cache.keep(going.nonzero()[:, 0])
            rows, token, positions = rows[going], token[going], positions[going]
        token = decode_rows(model, token, positions, cache).argmax(-1)
        positions = positions + 1
    return [ids[:ids.index(end_id)] if end_id in ids else ids for ids in replies]
