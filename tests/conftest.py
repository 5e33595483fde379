"""测试共用的小工具 (shared fixtures)：极小的分词器与模型，CPU 上几秒内跑完。"""
from pathlib import Path

import pytest
import torch

from studygpt.model.transformer import DialogueModel, ModelConfig
from studygpt.tokenizer.char import Tokenizer

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

DIALOGUES = [
    ["你好", "你好！很高兴见到你。"],
    ["你是谁？", "我是StudyGPT，一个学习用的小模型。", "你会做什么？", "我会聊天，也会做两位数加法。"],
    ["今天天气怎么样？", "今天天气不错，适合出去走走。"],
    ["Hello world", "Hi! 你好，world。"],
]


@pytest.fixture(autouse=True)
def keep_torch_threads():
    """每个测试之后恢复 PyTorch 的线程数：在本进程里跑的快速上手可能因为机器忙改用更少的线程（hardware.set_threads）。"""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def shared_file(name: str) -> Path:
    """../shared/data 下的真实语料；不存在时跳过并说明原因。"""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"共享语料 {path} 不存在（只在有 ../shared/data 的检出里运行）")
    return path


@pytest.fixture
def tokenizer() -> Tokenizer:
    return Tokenizer().build_vocab(t for d in DIALOGUES for t in d)


def write_numbered_pairs(path: Path) -> Path:
    """1,200 段一问一答（4 种问答 × 编号 0–299）的 .conv：够 --preset auto 实测、选大小、训练几秒。"""
    pairs = [("你好", "你好呀"), ("在吗", "在的"), ("吃饭了吗", "吃过了"), ("今天天气怎么样", "今天是晴天")]
    path.write_text("".join(f"E\nM {q}{i}\nM {a}{i}\n" for i in range(300) for q, a in pairs), encoding="utf-8")
    return path


def tiny_model(vocab_size: int, seed: int = 0, **kw) -> DialogueModel:
    torch.manual_seed(seed)
    cfg = dict(vocab_size=vocab_size, d_model=32, n_head=4, n_layers=2, max_len=64)
    cfg.update(kw)
    return DialogueModel(config=ModelConfig(**cfg))


def load_benchmark(name: str):
    """把 benchmarks/NAME.py 当模块导入（脚本要导入同目录的 _common，所以临时把 benchmarks/ 放进 sys.path）。"""
    import importlib.util
    import sys
    bench = Path(__file__).resolve().parents[1] / "benchmarks"
    sys.path.insert(0, str(bench))
    try:
        spec = importlib.util.spec_from_file_location(name, bench / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(bench))
