"""检查点 (checkpoints)：陌生人给的也能放心加载。

一个检查点是一个文件夹：
    model.safetensors   权重（safetensors 只存张量，加载时不会执行任何代码）
    config.json         模型配置、训练配置、格式版本、词表指纹
    vocab.txt           词表（字符级；字节级 BPE 则是 tokenizer.json，见 tokenizer/bpe.py）
    trainer_state.pt    优化器、学习率调度、步数、随机数状态、数据读到哪里（只含张量和基本类型，
                        用 torch.load(weights_only=True) 加载，同样不会执行代码；见 training/state.py）

一个训练目录 runs/NAME 里有：
    best/   验证损失最低的那一步（只为推理：没有 trainer_state.pt）——给出训练目录时默认用它
    last/   最后一步（带 trainer_state.pt，续训用）
单个 .pt 文件是 pickle：加载 pickle 可以执行任意代码，所以一律拒绝。

写入是原子的 (atomic)：先写进临时文件夹，写完再改名替换旧的。任何时刻被杀掉，旧检查点都还在。
"""
from __future__ import annotations

import errno
import json
import os
import pickle
import shutil
import sys
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from studygpt.errors import StudyGPTError
from studygpt.model.checks import check_weights
from studygpt.model.lora import build_model
from studygpt.model.transformer import DialogueModel, ModelConfig
from studygpt.tokenizer.char import Tokenizer
from studygpt.tokenizer.load import load_tokenizer

FORMAT_VERSION = 1
CHECKPOINT_NAMES = ("best", "last")  # 一个训练目录里优先用哪个检查点


def save_checkpoint(path: str | Path, model: DialogueModel, tokenizer: Tokenizer, train_config: dict | None = None,
                    trainer_state: dict | None = None, extra: dict | None = None) -> Path:
    """原子地写一个检查点文件夹 path。返回 path。

    磁盘满了 (ENOSPC)、文件超过大小限制 (EFBIG) 之类的写入错误变成一句 StudyGPTError：
    临时文件夹被删掉，旧的检查点一个字节都没动，仍然可以加载、续训。
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in path.parent.glob(f".{path.name}.tmp-*"):  # 上次保存到一半被 kill -9 留下的，不清就越积越多
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    except OSError as err:
        raise _save_failed(path, err) from err
    try:
        state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        meta = {"format_version": FORMAT_VERSION, "model": model.config.__dict__, "train": train_config or {},
                "vocab_hash": tokenizer.vocab_hash(), **(extra or {})}
        (tmp / "config.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
        tokenizer.save(tmp)  # vocab.txt 或 tokenizer.json：分词器自己知道存成什么
        if trainer_state is not None:
            torch.save(trainer_state, tmp / "trainer_state.pt")
        for f in tmp.iterdir():  # 确保数据真的落盘，再做改名
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        old = path.with_name(path.name + ".old")
        if path.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)   # 第 1 次改名：旧的挪开（此刻被杀，加载时会用 .old）
        os.replace(tmp, path)       # 第 2 次改名：新的就位
        shutil.rmtree(old, ignore_errors=True)
    except (OSError, SafetensorError) as err:  # safetensors 在 Rust 里写文件，写失败时抛它自己的错误
        raise _save_failed(path, err) from err
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def _save_failed(path: Path, err: Exception) -> StudyGPTError:
    """写检查点失败 → 一句话：哪里、为什么、旧的还在、怎么办。"""
    full = getattr(err, "errno", None) in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT) or "No space" in str(err) \
        or "too large" in str(err)
    why = "磁盘满了或文件超过大小限制 (disk full / file too large)" if full else f"写入出错 ({err})"
    return StudyGPTError(f"保存检查点 {path} 失败：{why}；上一次保存的检查点没有被改动，仍然可以加载和续训 "
                         "(--resume)。请腾出磁盘空间，或用 --out 换一个位置。")


def resolve_checkpoint(path: str | Path) -> Path:
    """把用户给的路径变成一个检查点文件夹：可以是检查点本身，也可以是训练目录 runs/NAME（用 best，否则 last）。

    所有按路径加载模型的地方（chat、generate、eval、serve、导出、load_model）都经过这一个函数，
    所以"给训练目录就用验证损失最低的 best/"这条规则只写在这里。
    """
    path = Path(path)
    if path.suffix == ".pt" and not path.exists() and path.with_suffix("").is_dir():
        path = path.with_suffix("")  # 种子接口的文件名 data/model_epoch_2.pt → 检查点文件夹 data/model_epoch_2/
    if path.is_file():
        raise StudyGPTError(
            f"{path}: 这是单个文件，像用 pickle 保存整个对象的检查点；加载 pickle 会执行文件里的任意代码，"
            "StudyGPT 不会反序列化它 (refused: pickled checkpoint)。请用 StudyGPT 重新训练，得到 safetensors 检查点文件夹。")
    for candidate in [path] + [path / name for name in CHECKPOINT_NAMES]:
        if (candidate / "model.safetensors").is_file():
            return candidate
        old = candidate.with_name(candidate.name + ".old")  # 保存到一半被打断：旧检查点还在 .old 里
        if not candidate.exists() and (old / "model.safetensors").is_file():
            return old
    if not path.exists():
        raise StudyGPTError(f"{path}: 不存在；请给出训练输出目录（如 runs/quickstart）或其中的检查点文件夹。")
    raise StudyGPTError(f"{path}: 里面没有 model.safetensors，也没有 best/ 或 last/ 检查点；请先训练或检查路径。")


def describe_checkpoint(ckpt: Path, meta: dict | None = None) -> str:
    """一句话说清加载的是哪个检查点：路径、第几步、第几个 epoch、验证损失（记录了的话）。"""
    meta = read_meta(ckpt) if meta is None else meta
    parts = [f"第 {meta['step']} 步"] if "step" in meta else []
    if "epoch" in meta:
        parts.append(f"epoch {meta['epoch']}")
    if meta.get("val_loss") is not None:
        parts.append(f"验证损失 (val loss) {meta['val_loss']:.3f}")
    return f"已加载 (loaded) {ckpt}" + (f"：{' · '.join(parts)}" if parts else "")


def read_meta(ckpt: Path) -> dict:
    try:
        meta = json.loads((ckpt / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as err:  # 不存在、不是 UTF-8、不是 JSON、嵌套太深
        raise StudyGPTError(f"{ckpt}/config.json 读不出来或不是合法的 JSON ({type(err).__name__})；"
                            "请用同一次训练保存的整个检查点文件夹。") from err
    if not isinstance(meta, dict) or not isinstance(meta.get("model"), dict) or not isinstance(meta.get("vocab_hash"), str):
        raise StudyGPTError(f"{ckpt}/config.json 缺少 model 配置或 vocab_hash；这不是 StudyGPT 保存的检查点。")
    if meta.get("format_version") != FORMAT_VERSION:
        raise StudyGPTError(f"{ckpt}/config.json: 检查点格式版本 {meta.get('format_version')}，"
                            f"这个 StudyGPT 只认 {FORMAT_VERSION}；请用相同版本的 StudyGPT 加载。")
    return meta


def load_model(path: str | Path, device="cpu", announce: bool | None = None) -> tuple[DialogueModel, Tokenizer, dict]:
    """推理需要的一切：(model（eval 模式）, tokenizer, meta)。path 可以是训练目录或检查点文件夹。

    meta 是 config.json 的内容，另加 "checkpoint"：实际加载的文件夹（给训练目录时是 best/ 或 last/）。
    announce：在标准错误 (stderr) 上说加载了哪个检查点；None = 只在替你从训练目录里选了 best/ 或 last/ 时说。
    """
    ckpt = resolve_checkpoint(path)
    meta = read_meta(ckpt)
    tokenizer = load_tokenizer(ckpt)
    if tokenizer.vocab_hash() != meta["vocab_hash"]:
        raise StudyGPTError(f"{ckpt}/{tokenizer.file_name} 与训练时的词表不一致（指纹不同）；请用检查点里的词表文件。")
    config = ModelConfig.from_dict(meta["model"])
    if config.vocab_size != tokenizer.vocab_size:
        raise StudyGPTError(f"{ckpt}: config.json 的 vocab_size={config.vocab_size}，{tokenizer.file_name} 却有 "
                            f"{tokenizer.vocab_size} 个词元；请用同一次训练保存的整个检查点文件夹。")
    check_weights(ckpt, config, meta.get("lora"))  # 先只读文件头核对大小、名字、形状，再分配内存（见 model/checks.py）
    model = build_model(config, meta.get("lora"))
    try:
        state = load_file(str(ckpt / "model.safetensors"))
    except SafetensorError as err:  # 体检之后几乎不会发生；万一有，也只是一句话
        raise StudyGPTError(f"{ckpt}/model.safetensors 读不出来 ({err})；请重新保存或重新下载这个检查点。") from err
    model.load_state_dict(state, strict=True)
    if announce or (announce is None and Path(path).resolve() != ckpt.resolve()):
        print(describe_checkpoint(ckpt, meta), file=sys.stderr)
    return model.to(device).eval(), tokenizer, {**meta, "checkpoint": str(ckpt)}


def load_trainer_state(path: str | Path) -> dict:
    """读 trainer_state.pt，只允许张量与基本类型 (weights_only=True)。"""
    ckpt = resolve_checkpoint(path)
    state_file = ckpt / "trainer_state.pt"
    if not state_file.is_file():
        raise StudyGPTError(f"{ckpt}: 没有 trainer_state.pt，这个检查点只能用于推理，不能续训。")
    try:
        return torch.load(state_file, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as err:
        # weights_only=True 遇到张量和基本类型以外的东西（比如藏了代码的 pickle）就停，什么都不执行
        raise StudyGPTError(f"{state_file}: 不是 StudyGPT 保存的训练状态（含张量和基本类型以外的对象，或文件损坏），"
                            "拒绝加载 (refused, nothing executed)；请用 last/ 里原样的 trainer_state.pt 续训。") from err
