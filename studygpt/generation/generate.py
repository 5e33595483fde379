"""生成 (generation)：让模型一个字一个字地写出回答。

流程拆成几个小函数，每个都能单独读懂、单独测试：
    render_prompt（tokenizer/chat_format.py）→ prefill（一次算完提示，填好 KV 缓存）
    → 循环 { choose = process_logits（重复惩罚、温度、top-k、top-p）+ sample（抽一个词元）→ decode_one_token }
    → 遇到 <|end|> 或达到 max_length 停止。
循环里"解码一个词元再选下一个"是 decode_and_choose：开了 --compile 时（generation/fast_decode.py），这两步在同一个编译好的内核里做。

`stream_response` 边生成边产出文字片段（聊天界面、服务端流式输出用）；`generate_response` 返回整段回答。
两者都收一个 GenerationSettings（采样 + 回答长度 + 种子），也收平铺的关键字 temperature=0.7 这样的写法。
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Iterator, Sequence

import torch

from studygpt.errors import StudyGPTError
from studygpt.model.kv_cache import KVCache
from studygpt.model.scoring import eval_mode
from studygpt.model.transformer import DialogueModel
from studygpt.tokenizer.char import Tokenizer
from studygpt.tokenizer.chat_format import fit_prompt
from studygpt.tokenizer.specials import CONTROL_TOKENS, END, UNK


# ===== 1. 采样设置 (sampling settings) =====
@dataclass
class SamplingConfig:
    """temperature=0 表示贪心 (greedy，总选概率最大的)；top_k/top_p 为 None 表示不截断；
    repetition_penalty > 1 让本次回答里已出现过的字更难再出现（只看回答本身，不惩罚复述用户的话）。"""
    temperature: float = 0.7
    top_k: int | None = None
    top_p: float | None = None
    repetition_penalty: float = 1.0

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise StudyGPTError(f"temperature={self.temperature} 无效：请用 ≥ 0 的数（0 表示贪心）。")
        if self.top_k is not None and self.top_k < 1:
            raise StudyGPTError(f"top_k={self.top_k} 无效：请用 ≥ 1 的整数，或不设置。")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise StudyGPTError(f"top_p={self.top_p} 无效：请用 (0, 1] 之间的数，或不设置。")
        if self.repetition_penalty <= 0:
            raise StudyGPTError(f"repetition_penalty={self.repetition_penalty} 无效：请用 > 0 的数（1 表示不惩罚）。")

    def active_filters(self, vocab_size: int) -> tuple[int | None, float | None]:
        """真正起作用的 (top_k, top_p)：top_k ≥ 词表大小、top_p = 1 都等于不截断，记为 None。"""
        top_k = self.top_k if self.top_k is not None and self.top_k < vocab_size else None
        top_p = self.top_p if self.top_p is not None and self.top_p < 1.0 else None
        return top_k, top_p


@dataclass
class GenerationSettings:
    """一次生成的全部设置：怎样抽样 (sampling)、回答最多多少个词元 (max_length)、随机种子 (seed，None 表示每次不同)。

    命令行、聊天、快速上手、服务器与 generate_response 都用它。平铺的名字（generate_response 的关键字
    temperature, top_k, top_p, repetition_penalty, max_length, seed）用 updated / as_options 读写。
    """
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    max_length: int = 100
    seed: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.max_length, int) or self.max_length < 1:
            raise StudyGPTError(f"max_length={self.max_length} 无效：回答最多多少个词元，请用 ≥ 1 的整数。")

    def updated(self, **options) -> "GenerationSettings":
        """按平铺的名字改几项，返回新的设置（重新校验）：settings.updated(temperature=0, seed=1)。"""
        sampling_names = {f.name for f in fields(SamplingConfig)}
        unknown = set(options) - sampling_names - {"max_length", "seed"}
        if unknown:
            raise StudyGPTError(f"不认识的生成设置 {sorted(unknown)}；可以设置：{', '.join(self.as_options())}。")
        try:
            sampling = replace(self.sampling, **{k: v for k, v in options.items() if k in sampling_names})
            return replace(self, sampling=sampling, **{k: v for k, v in options.items() if k not in sampling_names})
        except TypeError as err:  # 例如 temperature=None：比较大小时出错
            raise StudyGPTError(f"生成设置的取值无效 ({err})：{options}。") from err

    def as_options(self) -> dict:
        """平铺成 {temperature, top_k, top_p, repetition_penalty, max_length, seed}。"""
        return {**asdict(self.sampling), "max_length": self.max_length, "seed": self.seed}


class ReplyText:
    """把逐个生成的编号变成逐段文字 (incremental detokenization)：每次 push 一个编号，返回回答新多出来的文字。

    字符级分词器一个词元就是一个字；字节级 BPE 的一个汉字可能拆在两个词元里，前一半单独解码是替换字符 �。
    所以每次解码整段回答，结尾还是 � 时先不输出，等下一个词元把字补全。两种分词器走同一条路。
    """

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer, self.ids, self.shown = tokenizer, [], 0

    def push(self, token: int) -> str:
        self.ids.append(token)
        text = self.tokenizer.decode(self.ids)
        if text.endswith("\ufffd"):
            return ""
        piece, self.shown = text[self.shown:], len(text)
        return piece


@dataclass
class Step:
    """生成的一步：选中的词元，它给回答添上的文字 text（特殊词元时是它的名字），
    以及（需要时）概率最高的几个候选，给"看看里面"(look inside) 用。"""
    token_id: int
    text: str
    prob: float
    top: list[tuple[str, float]] = field(default_factory=list)

    @property
    def visible(self) -> bool:
        """这个词元要不要出现在回答里：特殊词元不出现，只有 <unk> 照原样显示（让人看见未知字）。"""
        return self.text not in CONTROL_TOKENS or self.text == UNK


# ===== 2. 处理 logits =====
def penalize(logits: torch.Tensor, penalty) -> torch.Tensor:
    """CTRL 式重复惩罚的规则：正的 logit 除以 penalty，负的乘以 penalty（两者都让它变小）。"""
    return torch.where(logits > 0, logits / penalty, logits * penalty)


def apply_repetition_penalty(logits: torch.Tensor, previous: Sequence[int], penalty: float) -> torch.Tensor:
    """对本次回答里出现过的词元施加 penalize；没出现过的不变。"""
    if penalty == 1.0 or not previous:
        return logits
    idx = torch.tensor(list(set(previous)), device=logits.device)
    seen = logits.gather(0, idx)  # gather/scatter 比 logits[idx] 这种高级索引调度开销小（逐词生成每步都要做）
    return logits.scatter(0, idx, penalize(seen, penalty))  # scatter 返回新张量


def filter_logits(logits: torch.Tensor, temperature: float, top_k: int | None, top_p: float | None) -> torch.Tensor:
    """惩罚之后的三步（温度 > 0 时）：温度 → top-k → top-p。top_k/top_p 为 None 时跳过那一步；被排除的位置为 -inf。

    这里只拿这几个数做运算、不拿它们做比较：编译的解码（generation/fast_decode.py）于是把它们当作输入，改了也不必重编。
    """
    logits = logits / temperature  # 温度 < 1 让分布更尖（更保守），> 1 更平（更随机）
    if top_k is not None:
        kth = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))  # 只留概率最高的 k 个
    if top_p is not None:
        sorted_logits, order = torch.sort(logits, descending=True)
        probs = sorted_logits.softmax(-1)
        # 从最可能的开始累加概率：前面的累计已经 ≥ top_p 的词元就不要了（至少保留第一个）
        drop = (probs.cumsum(-1) - probs) >= top_p
        logits = logits.masked_fill(drop.scatter(0, order, drop), float("-inf"))
    return logits


def process_logits(logits: torch.Tensor, cfg: SamplingConfig, previous: Sequence[int]) -> torch.Tensor:
    """一行 logits (V,) → 真正用来抽样的 logits：重复惩罚 → 温度 → top-k → top-p。被排除的位置为 -inf。
    温度为 0（贪心）时只做重复惩罚。"""
    logits = apply_repetition_penalty(logits.float(), previous, cfg.repetition_penalty)
    if cfg.temperature == 0:
        return logits
    return filter_logits(logits, cfg.temperature, *cfg.active_filters(logits.numel()))


def inverse_cdf(logits: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """逆变换抽样 (inverse transform sampling)：u 是 [0, 1) 里的均匀随机数 (1,)，返回抽中的编号 (1,)。

    把概率依次累加成从 0 升到 1 的台阶 (CDF)，u 落在哪一级台阶上就选哪个词元——概率越大，台阶越宽，越容易被抽中；
    被排除的词元（-inf）概率为 0，台阶宽度为 0，永远抽不到。
    """
    cdf = logits.softmax(-1).cumsum(-1)
    return torch.searchsorted(cdf, u * cdf[-1], right=True).clamp_(max=logits.numel() - 1)  # cdf[-1] 不一定正好是 1


def sample(logits: torch.Tensor, cfg: SamplingConfig, generator: torch.Generator | None) -> int:
    """从处理过的 logits 里选一个词元：温度为 0 时取最大值，否则按概率抽样（inverse_cdf）。

    torch.multinomial 结果的分布相同，但它给词表里每个词元各抽一个随机数，CPU 上每步明显更慢
    （docs/performance.md）；逆变换法只抽一个。
    """
    if cfg.temperature == 0:
        return int(torch.argmax(logits))
    return int(inverse_cdf(logits, torch.rand(1, generator=generator, device=logits.device)))


def choose(logits: torch.Tensor, cfg: SamplingConfig, previous: Sequence[int],
           generator: torch.Generator | None) -> tuple[int, torch.Tensor]:
    """logits (V,) → (抽中的词元, 真正用来抽样的分布 probs (V,))。贪心时 probs 是惩罚后、温度 1 的分布。"""
    final = process_logits(logits, cfg, previous)
    return sample(final, cfg, generator), final.softmax(-1)


# ===== 3. 前向：prefill 与逐词解码 =====
def compiled_decoder_for(model: DialogueModel, cache: KVCache):
    """模型开了编译解码、且这一步它能做（批大小 1、缓存非空未满）时，返回那个编译的解码器；否则 None。

    编译的解码器由 fast_decode.compile_decoding 挂在这个模型对象上（属性 compiled_decoder）；
    模型类本身不知道它，没编译过的模型没有这个属性。
    """
    compiled = getattr(model, "compiled_decoder", None)
    return compiled if compiled is not None and compiled.handles(cache) else None


# torch.inference_mode 比 no_grad 更省：生成时的张量连版本计数 (version counter) 都不记
@torch.inference_mode()
def prefill(model: DialogueModel, prompt_ids: list[int], cache: KVCache) -> torch.Tensor:
    """一次性算完整个提示，填满 KV 缓存；返回最后一个位置的 logits (V,)。"""
    device = model.tok_embeddings.weight.device
    x = torch.tensor([prompt_ids], dtype=torch.long, device=device)
    hidden = model(x, cache=cache, return_hidden=True)  # (1, T, C)
    return model.output(hidden[0, -1])  # 输出层（最大的矩阵乘法）只算最后一个位置：只有它的预测有用


@torch.inference_mode()
def decode_one_token(model: DialogueModel, token_id: int, cache: KVCache) -> torch.Tensor:
    """只算一个新词元（其余的 k/v 都在缓存里）；返回它的 logits (V,)。
    模型开了编译解码（fast_decode.compile_decoding）时，走那里编译好的同一套计算。"""
    if (compiled := compiled_decoder_for(model, cache)) is not None:
        return compiled(token_id, cache)
    device = model.tok_embeddings.weight.device
    x = torch.tensor([[token_id]], dtype=torch.long, device=device)
    return model(x, cache=cache)[0, -1]


def decode_and_choose(model: DialogueModel, token_id: int, cache: KVCache, cfg: SamplingConfig,
                      previous: Sequence[int], generator: torch.Generator | None) -> tuple[int, torch.Tensor]:
    """算一个新词元并选出下一个：decode_one_token → choose。编译路径把两步放进同一个内核（generation/fast_decode.py）。"""
    if (compiled := compiled_decoder_for(model, cache)) is not None:
        return compiled.decode_and_choose(token_id, cache, cfg, previous, generator)
    return choose(decode_one_token(model, token_id, cache), cfg, previous, generator)


def generate_tokens(model: DialogueModel, prompt_ids: list[int], max_new_tokens: int, cfg: SamplingConfig,
                    tokenizer: Tokenizer, seed: int | None = None, top_n: int = 0) -> Iterator[Step]:
    """逐词产出 Step，直到 <|end|> 或 max_new_tokens。top_n > 0 时附上每步概率最高的 top_n 个候选。"""
    device = model.tok_embeddings.weight.device
    max_new_tokens = min(max_new_tokens, model.config.max_len - len(prompt_ids))
    if max_new_tokens <= 0:
        return
    generator = None
    if seed is not None:
        generator = torch.Generator(device=device)
        generator.manual_seed(seed)
    with eval_mode(model):
        cache = KVCache(model.config, 1, device, model.tok_embeddings.weight.dtype)
        end_id = tokenizer.token_id(END)
        reply: list[int] = []
        text = ReplyText(tokenizer)
        token, probs = choose(prefill(model, prompt_ids, cache), cfg, reply, generator)
        for i in range(max_new_tokens):
            top = []
            if top_n:
                p, idx = probs.topk(top_n)
                top = [(tokenizer.id_to_token[j], float(q)) for q, j in zip(p.tolist(), idx.tolist())]
            name = tokenizer.id_to_token[token]
            yield Step(token, name if name in CONTROL_TOKENS else text.push(token), float(probs[token]), top)
            if token == end_id:
                break
            reply.append(token)
            if i + 1 < max_new_tokens:
                token, probs = decode_and_choose(model, token, cache, cfg, reply, generator)


@torch.inference_mode()
# ===== 4. 对外接口 =====
def prompt_budget(max_len: int, max_new_tokens: int) -> int:
    """提示（历史 + 这句问题）最多占多少个词元：上下文窗口 max_len 里给回答留 max_new_tokens 个位置，
    但最多留一半——否则回答一长，历史就一轮也放不下了。tiny 模型（max_len 192）聊天时是 96。"""
    return max_len - min(max_new_tokens, max_len // 2)


def stream_response(model: DialogueModel, tokenizer: Tokenizer, input_text: str, device=None,
                    settings: GenerationSettings | None = None, history: Sequence[str] | None = None,
                    **options) -> Iterator[str]:
    """边生成边产出文字片段（每次一个字）。参数同 generate_response。"""
    if settings is not None and not isinstance(settings, GenerationSettings):
        raise StudyGPTError(f"settings 应是 GenerationSettings，收到 {settings!r}；max_length、temperature 等请写成关键字参数。")
    settings = (settings or GenerationSettings()).updated(**options)
    budget = prompt_budget(model.config.max_len, settings.max_length)  # 给回答留出位置
    prompt = fit_prompt(tokenizer, history or [], input_text, budget)
    for step in generate_tokens(model, prompt, settings.max_length, settings.sampling, tokenizer, settings.seed):
        if step.visible:
            yield step.text


def generate_response(model: DialogueModel, tokenizer: Tokenizer, input_text: str, device=None,
                      settings: GenerationSettings | None = None, history: Sequence[str] | None = None,
                      **options) -> str:
    """对一句用户输入生成一整段回答。

    settings：GenerationSettings，默认 temperature 0.7、不截断、max_length 100、不固定种子；
    也可以直接写关键字 max_length、temperature、top_k、top_p、repetition_penalty、seed（改写 settings 里的同名项）。
    history：之前的轮次 [用户, 助手, ...]，放不下时从最早的丢起；seed 固定后同样的输入给出同样的回答。
    device 只为兼容而接受：模型在哪个设备上就在哪里生成。
    """
    return "".join(stream_response(model, tokenizer, input_text, device, settings, history, **options))
