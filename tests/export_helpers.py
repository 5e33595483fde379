"""导出测试共用：一个在 DIALOGUES 上训练了几秒、会在 <|end|> 停下的极小模型，存成训练目录 RUN/last。

随机初始化的模型几乎从不生成 <|end|>，"导出后的模型在同一处停下"就测不到；所以先让它背下这几段对话。
"""
from pathlib import Path

import torch

from studygpt.model.checkpoint import save_checkpoint
from studygpt.model.transformer import lm_loss
from studygpt.tokenizer.char import Tokenizer
from studygpt.tokenizer.chat_format import render_conversation
from tests.conftest import DIALOGUES, tiny_model
from tests.reasoning_helpers import padded_batch

# 导出测试用的提示：单轮、多轮、中英混合与空格、全角标点、词表外的字（"龘"）
PROMPTS = [([], "你好"), ([], "你是谁？"), (["你是谁？", "我是StudyGPT，一个学习用的小模型。"], "你会做什么？"),
           ([], "Hello world"), ([], "今天 天气，怎么样？龘")]


def messages(history: list[str], text: str) -> list[dict]:
    """历史 + 这一句 → transformers 对话模板要的 [{"role", "content"}, …]（用户、助手轮流）。"""
    turns = list(history) + [text]
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(turns)]


def train_tiny_run(run: Path, steps: int = 60, tokenizer=None) -> Path:
    """训练 steps 步（整批 4 段对话），保存到 run/last；返回 run。CPU 上约一两秒。
    tokenizer：默认是在这 4 段对话上建的字符级分词器；也可以给一个字节级 BPE 分词器。"""
    tokenizer = tokenizer or Tokenizer().build_vocab(t for d in DIALOGUES for t in d)
    # RoPE 底数与 eps 故意不用默认值：config 里少对应一项，logits 就对不上
    model = tiny_model(tokenizer.vocab_size, max_len=128, rope_base=5000.0, norm_eps=1e-6)
    batch = padded_batch([render_conversation(d, tokenizer) for d in DIALOGUES], tokenizer.token_id("<pad>"))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(steps):
        loss, _ = lm_loss(model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    save_checkpoint(run / "last", model.eval(), tokenizer, extra={"step": steps})
    return run
