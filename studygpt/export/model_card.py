"""模型卡 (model card)：导出的 Hugging Face 文件夹里的 README.md。

别人拿到一个模型文件夹，首先要知道：它是什么结构、多大、用什么数据训练的、成绩如何、怎样用、
有什么局限。结构和大小来自检查点的 config.json；数据和成绩直接摘自训练时写的 report.md
（同一份代码算出的数字，不在这里重算）。
"""
from __future__ import annotations

from pathlib import Path

from studygpt.model.transformer import DialogueModel
from studygpt.tokenizer.specials import THINK, TOOL_CALL

# 从 report.md 里摘哪几段（按标题开头匹配）
REPORT_SECTIONS = ("## 成绩 (scores)", "## 数据 (data)", "## 最终指标")


def report_sections(report: Path) -> list[str]:
    """report.md 里的"成绩"（快速上手才有）、"数据"与"最终指标"几段（各含标题）；没有 report.md 时返回空列表。"""
    if not report.is_file():
        return []
    sections = report.read_text(encoding="utf-8").split("\n## ")
    return ["## " + s.strip() for s in sections[1:] if ("## " + s).startswith(REPORT_SECTIONS)]


def chat_format_lines(tokenizer) -> list[str]:
    """"对话格式"一段：普通模型一行；学过草稿 (<think>) 或工具调用 (<tool_call>) 的模型再说明它们怎样写、
    怎样经 apply_chat_template 传进去（对话模板见 export/vocab.py 的 build_chat_template）。"""
    lines = ["对话格式 (chat format)：`<|user|>问题<|end|><|assistant|>回答<|end|>`，没有系统提示 (no system role)。"]
    if THINK in tokenizer.vocab:
        lines += ["", "草稿 (reasoning)：`<|assistant|><think>草稿</think>回答<|end|>`；"
                  "消息里写成助手消息的 `reasoning_content`。"]
    if TOOL_CALL in tokenizer.vocab:
        lines += ["", "工具调用 (tool calls)：`<|assistant|><tool_call>{\"name\":\"calculator\",\"arguments\":{\"expression\":"
                  "\"457+386\"}}</tool_call><|end|><|tool|>843<|end|><|assistant|>457加386等于843。<|end|>`。"
                  "模型写出调用后停下，由你执行计算器，把结果作为 `{\"role\": \"tool\", \"content\": \"843\"}` "
                  "接在助手消息（`tool_calls` 里一个调用，没有正文）之后，再生成正文。"]
    return lines


def model_card(model: DialogueModel, tokenizer, meta: dict, checkpoint: Path, name: str) -> str:
    """README.md 的全文。meta 是检查点 config.json 的内容（load_model 返回的那个）。"""
    c = model.config
    trained = [f"第 {meta['step']} 步"] if "step" in meta else []
    if meta.get("val_loss") is not None:
        trained.append(f"验证损失 (val loss) {meta['val_loss']:.3f}")
    data = ", ".join(f"`{d}`" for d in meta.get("run", {}).get("data", [])) or "未记录 (not recorded)"
    sections = report_sections(checkpoint.parent / "report.md")
    return "\n".join([
        "---",
        "library_name: transformers",
        "pipeline_tag: text-generation",
        "language: [zh]",
        "tags: [studygpt, llama, character-level]",
        "---",
        f"# {name}",
        "",
        "一个用 StudyGPT (学习GPT) 从零训练的中文对话小模型，导出成 Hugging Face 的 `LlamaForCausalLM`。",
        "A small Chinese dialogue model trained from scratch with StudyGPT, exported as `LlamaForCausalLM`.",
        "",
        "| 项 | 值 |",
        "|---|---|",
        f"| 结构 (architecture) | Llama：{c.n_layers} 层, d_model={c.d_model}, {c.n_head} 个头 (head_dim={c.head_size}), "
        f"SwiGLU {c.ffn_hidden}, RMSNorm eps={c.norm_eps}, RoPE base={c.rope_base:g}, 共享嵌入 (tied) |",
        f"| 参数 (parameters) | {model.num_params():,} |",
        f"| 上下文 (context) | {c.max_len} 个词元 |",
        f"| 分词器 (tokenizer) | 字符级 (character-level)，{c.vocab_size} 个词元，词表外的字符 → `<unk>` |",
        f"| 训练数据 (data) | {data} |",
        f"| 检查点 (checkpoint) | `{checkpoint.name}/`{'，' + '，'.join(trained) if trained else ''} |",
        "",
        "## 用法 (usage)",
        "",
        "```python",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        'tok = AutoTokenizer.from_pretrained("这个文件夹")',
        'model = AutoModelForCausalLM.from_pretrained("这个文件夹")',
        'ids = tok.apply_chat_template([{"role": "user", "content": "你好"}], add_generation_prompt=True,',
        '                              return_tensors="pt", return_dict=True)',
        "out = model.generate(**ids, max_new_tokens=100)  # 默认贪心，见到 <|end|> 停",
        'print(tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True))',
        "```",
        "",
        *chat_format_lines(tokenizer),
        "",
        *[s + "\n" for s in sections],
        "## 局限 (limitations)",
        "",
        "这是学习用的小模型：只懂训练语料里出现过的话题，常识、英文都很弱，会一本正经地说错话。请勿用于任何需要可靠答案的场合。",
        "",
    ])
