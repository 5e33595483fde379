"""导出的入口 (export entry point)：`studygpt export RUN --to hf|gguf OUT`。

写入是原子的：先写进同一目录下的临时文件（夹），写完再改名。中途出错或被打断，不会留下写了一半的输出。
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from studygpt.errors import StudyGPTError

FORMATS = {"hf": ("transformers", "tokenizers", "safetensors"), "gguf": ("gguf",)}  # 格式 → 需要的包
INSTALL = 'pip install -e ".[export]"'


def require_packages(to: str) -> None:
    """这个格式需要的包都装了吗？缺了就给一句装什么的错误，而不是 ImportError 的 traceback。"""
    missing = [name for name in FORMATS[to] if importlib.util.find_spec(name) is None]
    if missing:
        raise StudyGPTError(f"导出成 {to} 需要可选依赖 {', '.join(missing)}（没有安装）；请运行 {INSTALL}。")


def check_request(to: str, out: Path, dtype: str | None, force: bool) -> str:
    """先检查用户的请求（还没加载模型、没写任何东西）；返回实际用的 dtype。"""
    from studygpt.export.gguf import DTYPES
    if to not in FORMATS:
        raise StudyGPTError(f"--to {to!r} 不认识；可以导出成：{' / '.join(FORMATS)}"
                            "（例如 studygpt export runs/my --to gguf my.gguf）。")
    if to == "hf" and dtype is not None:
        raise StudyGPTError("--dtype 只用于 --to gguf；Hugging Face 文件夹总是 float32（加载时可以用 torch_dtype 转换）。")
    dtype = dtype or ("f32" if to == "gguf" else None)
    if to == "gguf" and dtype not in DTYPES:
        raise StudyGPTError(f"--dtype {dtype!r} 不认识；GGUF 可以是 {' / '.join(DTYPES)}。")
    if out.exists() and not force:
        raise StudyGPTError(f"{out}: 已经存在；换一个输出路径，或加 --force 覆盖它。")
    require_packages(to)
    return dtype


def replace_atomically(tmp: Path, out: Path) -> None:
    """临时输出 tmp 就位成 out。out 已存在（--force）时先把它挪进一个临时的"回收"文件夹，新的就位后再删掉。"""
    if not out.exists():
        os.replace(tmp, out)
        return
    trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))  # 名字不会和用户的文件撞上
    try:
        os.replace(out, trash / out.name)
        os.replace(tmp, out)
    except OSError:
        if (trash / out.name).exists() and not out.exists():
            os.replace(trash / out.name, out)  # 新的没能就位：把旧的放回原处
        raise
    finally:
        shutil.rmtree(trash, ignore_errors=True)


def export_run(run: str | Path, to: str, out: str | Path, dtype: str | None = None, force: bool = False) -> Path:
    """导出 run（训练目录或检查点文件夹；训练目录默认用 best/）到 out。返回 out。

    to="hf"：out 是文件夹；to="gguf"：out 是一个 .gguf 文件，dtype 是 f32（默认）/ f16 / q8_0。
    """
    from studygpt.model.checkpoint import load_model
    from studygpt.model.lora import merge_lora

    out = Path(out)
    dtype = check_request(to, out, dtype, force)
    model, tokenizer, meta = load_model(run)  # 给训练目录时，在 stderr 上说用的是 best/ 还是 last/
    model = merge_lora(model).eval()  # 没合并的 LoRA 检查点：先把适配器合并进权重，导出的是普通的 Llama 结构
    out.parent.mkdir(parents=True, exist_ok=True)
    # 临时输出放在同一目录：os.replace 在同一个文件系统里才是原子的
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    tmp.chmod(0o755)  # mkdtemp 只让自己读写 (0700)；导出的文件夹是给别人用的
    try:
        if to == "hf":
            from studygpt.export.hf import write_hf
            from studygpt.export.model_card import model_card
            write_hf(model, tokenizer, tmp)
            card = model_card(model, tokenizer, meta, Path(meta["checkpoint"]), out.name)
            (tmp / "README.md").write_text(card, encoding="utf-8")
            replace_atomically(tmp, out)
        else:
            from studygpt.export.gguf import write_gguf
            write_gguf(model, tokenizer, tmp / out.name, dtype, name=out.stem)
            replace_atomically(tmp / out.name, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def describe_export(out: Path, to: str) -> str:
    """导出之后打印的几行：写了哪些文件、各多大，以及怎样加载。"""
    files = sorted(out.iterdir()) if out.is_dir() else [out]
    lines = [f"已导出 (exported) {out}："] + [f"  {f.name:<24} {f.stat().st_size / 1024:>10,.1f} KiB" for f in files]
    if to == "hf":
        lines.append(f"加载 (load): AutoModelForCausalLM.from_pretrained({str(out)!r})，"
                     f"AutoTokenizer.from_pretrained({str(out)!r})")
    else:
        lines.append(f"加载 (load): llama.cpp `llama-cli -m {out}`；transformers "
                     f"from_pretrained({str(out.parent)!r}, gguf_file={out.name!r})；Ollama 见 docs/export.md")
    return "\n".join(lines)
