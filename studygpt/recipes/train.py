"""一次完整的训练运行 (a training run)：把各个模块按数据流串起来。

    读语料 (corpus/read.py) → 建词表 (tokenizer/char.py) → 渲染、打包 (tokenizer/chat_format.py, batches/packing.py)
    → 建模型 (model/transformer.py) → 训练 (training/trainer.py) → 检查点 (model/checkpoint.py)

`studygpt train` 与 `studygpt quickstart` 都调用这里，所以两者走的是同一条路。
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

import torch

from studygpt.batches.packing import PackedBatches
from studygpt.batches.windows import cached_windows
from studygpt.corpus.read import read_corpus
from studygpt.errors import StudyGPTError
from studygpt.hardware import prepare_device
from studygpt.model.checkpoint import read_meta, resolve_checkpoint
from studygpt.model.transformer import DialogueModel, ModelConfig
from studygpt.recipes.presets import get_preset
from studygpt.recipes.report import finish_run
from studygpt.recipes.sizing import learning_rate, size_for_budget
from studygpt.tokenizer.char import Tokenizer
from studygpt.tokenizer.load import load_tokenizer
from studygpt.tokenizer.specials import PAD
from studygpt.training.distributed import setup_distributed
from studygpt.training.optim import TrainConfig
from studygpt.training.trainer import TransformerTrainer


@dataclasses.dataclass
class RunSpec:
    """一次运行的全部设置；存进检查点的 config.json，续训时原样读回。"""
    data: list[str]
    out: str
    preset: str = "tiny"
    val: str | None = None
    val_fraction: float = 0.02
    model: dict = dataclasses.field(default_factory=dict)   # 覆盖预设的模型设置
    train: dict = dataclasses.field(default_factory=dict)   # 覆盖预设的训练设置
    max_vocab_size: int | None = None
    device: str | None = None
    tokenizer: str | None = None  # 现成的分词器目录（`studygpt tokenizer train` 的输出）；不给时按语料建字符级词表
    threads: int | None = None    # CPU 上用几个线程；None = PyTorch 的默认（每个核一个）。续训时沿用，数值才一样
    sizing: dict | None = None    # --preset auto 选的大小与理由（recipes/sizing.py）；续训时沿用，不再实测


def split_overrides(overrides: dict) -> tuple[dict, dict, dict]:
    """把 `--key value` 分到模型配置、训练配置和其他（max_vocab_size）里；未知的键报错。"""
    model_keys = {f.name for f in dataclasses.fields(ModelConfig)} - {"vocab_size"}
    train_keys = {f.name for f in dataclasses.fields(TrainConfig)}
    model, train, other = {}, {}, {}
    for key, value in overrides.items():
        if key in model_keys:
            model[key] = value
        elif key in train_keys:
            train[key] = value
        elif key == "max_vocab_size":
            other[key] = value
        else:
            raise StudyGPTError(f"未知的设置 --{key}；模型设置：{sorted(model_keys)}；训练设置：{sorted(train_keys)}。")
    return model, train, other


def load_corpus(spec: RunSpec, log: Callable[[str], None]) -> tuple[list, list]:
    """读 spec 的训练语料与验证语料（见 corpus.read.read_corpus）。"""
    return read_corpus(spec.data, spec.val, spec.val_fraction, log)


def size_to_budget(spec: RunSpec, config: TrainConfig, train_batches: PackedBatches, vocab_size: int,
                   device: torch.device, log: Callable[[str], None]) -> None:
    """--preset auto：实测这台机器，按预算选模型大小与编不编译（recipes/sizing.py），写进 spec.model / spec.train /
    spec.sizing（续训沿用）。用 --key value 给了的模型设置、学习率和 --compile 优先。"""
    if not config.max_minutes:
        raise StudyGPTError("--preset auto 按时间预算选模型大小：请同时给 --max-minutes N（例如 --max-minutes 5）。")
    corpus_tokens = int(train_batches.lengths.sum())
    choice = size_for_budget(lambda: iter(train_batches), vocab_size, corpus_tokens, config.max_minutes, device,
                             config.use_amp, compile=config.compile)
    for line in choice.lines():
        log(line)
    spec.sizing = dataclasses.asdict(choice)
    spec.model = {**choice.model(), **spec.model}
    spec.train = {"lr": learning_rate(spec.model["d_model"]), "compile": choice.compile, **spec.train}


def build_trainer(spec: RunSpec, train_dialogues: list, val_dialogues: list, tokenizer: Tokenizer | None = None,
                  log: Callable[[str], None] = print, auto_threads: bool = False,
                  make_model: Callable[[ModelConfig], DialogueModel] | None = None, **trainer_kwargs) -> TransformerTrainer:
    """按 spec 建词表（或用给定的）、打包数据、建模型与训练器。auto_threads：见 hardware.set_threads；
    make_model：按配置建模型的函数，默认 DialogueModel（break-it 实验换成拆掉一个部件的模型，见 labs/broken.py）。"""
    preset = get_preset(spec.preset)
    model_cfg = {**preset["model"], **spec.model}
    train_cfg = {**preset["train"], **spec.train}
    train_cfg.setdefault("seq_len", model_cfg["max_len"])
    config = TrainConfig.from_dict(train_cfg)
    ModelConfig(vocab_size=1, **model_cfg)  # 先校验模型设置（如 --max-len abc），再拿 max_len 与 seq_len 比
    if config.seq_len > model_cfg["max_len"]:
        raise StudyGPTError(f"seq_len={config.seq_len} 不能大于模型的 max_len={model_cfg['max_len']}。")
    if tokenizer is None and spec.tokenizer:
        tokenizer = load_tokenizer(spec.tokenizer)
    if tokenizer is None:
        max_vocab = spec.max_vocab_size or preset["max_vocab_size"]
        tokenizer = Tokenizer().build_vocab((t for d in train_dialogues for t in d), max_vocab_size=max_vocab)
    info, dist_device = setup_distributed(spec.device)  # torchrun 启动时建立进程组，否则单进程
    pad = tokenizer.token_id(PAD)
    # 渲染好的窗口缓存在 <out>/token_cache/：语料与词表不变时，下次运行直接内存映射读回（见 batches/windows.py）
    cache = {"sources": spec.data + ([spec.val] if spec.val else []), "tokenizer": tokenizer,
             "max_length": config.seq_len, "split": {"val": spec.val, "val_fraction": spec.val_fraction},
             "log": log if info.is_main else (lambda text: None)}
    train_windows = cached_windows(Path(spec.out) / "token_cache" / "train", dialogues=train_dialogues, **cache)
    val_windows = cached_windows(Path(spec.out) / "token_cache" / "val", dialogues=val_dialogues, **cache)
    shard = {"rank": info.rank, "world_size": info.world_size}  # 每个进程只取全局批次里属于自己的行
    train_batches = PackedBatches(train_windows, config.batch_size, config.seq_len, pad, seed=config.seed, **shard)
    val_batches = PackedBatches(val_windows, config.batch_size, config.seq_len, pad,
                                shuffle=False, drop_last=False, **shard) if val_windows else None
    if len(train_batches) == 0:  # 不满一批的尾巴被丢掉 (drop_last)：一批也凑不满，每个 epoch 就一步也走不了
        rows = train_batches.num_rows()
        raise StudyGPTError(f"训练数据打包后只有 {rows} 行（{len(train_windows)} 个窗口），少于一批 {config.batch_size} 行："
                            f"请多给些训练数据，或用 --batch-size {max(rows, 1)}。")
    if info.enabled:  # torchrun 的多个进程：设备按进程号分好了，线程数由 torchrun（OMP_NUM_THREADS）定
        device = dist_device
    else:  # 设备；CPU 上再定线程数（auto_threads 见 hardware.set_threads），记进 spec，续训沿用
        device, spec.threads = prepare_device(spec.device, spec.threads, log, auto_threads)
    if spec.preset == "auto" and spec.sizing is None:  # 续训时 spec.sizing 已经有了：沿用当时的选择
        size_to_budget(spec, config, train_batches, tokenizer.vocab_size, device, log)
        model_cfg = {**preset["model"], **spec.model}
        config = TrainConfig.from_dict({**train_cfg, **spec.train})
    if not info.is_main:
        log = lambda text: None  # noqa: E731  只有 0 号进程打印
    log(f"词表 (vocab): {tokenizer.vocab_size:,} · 训练窗口 (windows): {len(train_windows):,} · "
        f"每 epoch {len(train_batches):,} 个批次 · 打包后填充比例 (padding): {train_batches.padding_fraction():.1%}")
    torch.manual_seed(config.seed)
    model_config = ModelConfig(vocab_size=tokenizer.vocab_size, **model_cfg)
    model = make_model(model_config) if make_model else DialogueModel(config=model_config)
    if info.enabled:
        log(f"数据并行 (DDP): {info.world_size} 个进程，后端 {'nccl' if device.type == 'cuda' else 'gloo'}，"
            f"全局批大小 {config.batch_size} = 每进程 {config.batch_size // info.world_size} × {info.world_size}")
    trainer = TransformerTrainer(model, train_batches, device, config, val_loader=val_batches,
                                 tokenizer=tokenizer, out_dir=spec.out, log=log, **trainer_kwargs)
    trainer.run_info = {"run": dataclasses.asdict(spec)}
    trainer.data_stats = {"训练对话 (train dialogues)": f"{len(train_dialogues):,}",
                          "验证对话 (val dialogues)": f"{len(val_dialogues):,}",
                          "训练窗口 (windows)": f"{len(train_windows):,}",
                          "训练字符 (chars)": f"{sum(len(t) for d in train_dialogues for t in d):,}",
                          "词表 (vocab)": f"{tokenizer.vocab_size:,}",
                          "打包后填充比例 (padding)": f"{train_batches.padding_fraction():.1%}"}
    return trainer


def train_from_spec(spec: RunSpec, log: Callable[[str], None] = print, **trainer_kwargs) -> tuple[TransformerTrainer, dict]:
    train, val = load_corpus(spec, log)
    trainer = build_trainer(spec, train, val, log=log, **trainer_kwargs)
    return trainer, finish_run(trainer, trainer.train(), val, log)


def resume_from(out: str | Path, log: Callable[[str], None] = print, **trainer_kwargs) -> tuple[TransformerTrainer, dict]:
    """`studygpt train --resume runs/NAME`：读回当时的设置与词表，从 last 检查点接着训练。"""
    ckpt = resolve_checkpoint(Path(out) / "last" if (Path(out) / "last").exists() else out)
    meta = read_meta(ckpt)
    if "run" not in meta:
        raise StudyGPTError(f"{ckpt}/config.json 里没有运行设置 (run)，不是 `studygpt train` 产生的，无法自动续训。")
    spec = RunSpec(**meta["run"])
    spec.out = str(out)
    tokenizer = load_tokenizer(ckpt)
    train, val = load_corpus(spec, log)
    trainer = build_trainer(spec, train, val, tokenizer=tokenizer, log=log, **trainer_kwargs)
    trainer.resume(ckpt)
    log(f"从 {ckpt} 续训：第 {trainer.step} 步，epoch {trainer.epoch}")
    return trainer, finish_run(trainer, trainer.train(), val, log)


