"""导出前后是不是同一个模型 (export parity)：把一个训练好的模型导出成 HF 文件夹与 GGUF（f32 / f16 / q8_0），
用 transformers（和装了的话 llama-cpp-python）加载回来，与我们自己的前向比：

- logits：固定的 20 个聊天问题 + 5 段多轮对话，最大绝对差，以及它占 logits 最大绝对值的比例；
- 贪心回答：20 个问题各写最多 100 个词元，与 `studygpt generate --temperature 0` 逐字相同的有几个。

    python benchmarks/export_parity.py runs/quickstart
    python benchmarks/export_parity.py runs/quickstart --quick    # 冒烟：3 个问题、每个最多 20 个词元（检查脚本本身）
    python benchmarks/export_parity.py runs/quickstart --record   # 维护者：结果追加到 benchmarks/results/（进 git）

导出写进临时文件夹，用完就删。结果默认追加到 runs/benchmarks/export_parity.jsonl（runs/ 不进 git），
加 --record 才追加到 benchmarks/results/export_parity.jsonl。这是脚本，不是测试
（测试用极小的模型：tests/test_export_hf.py、tests/test_export_gguf.py）。
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

# 先导入 _common：它把本检出放到 sys.path 最前面，下面的 studygpt 才是这里的代码
from _common import append_results, print_machine, print_table

from studygpt.corpus.builtin import load_chat_prompts
from studygpt.export.convert import export_run
from studygpt.generation.generate import generate_response
from studygpt.model.checkpoint import load_model
from studygpt.tokenizer.chat_format import render_conversation, render_prompt
from studygpt.tokenizer.specials import END

MAX_NEW = 100        # 贪心回答最多几个词元
QUICK_PROMPTS, QUICK_NEW = 3, 20  # --quick：只比前 3 个问题，每个最多 20 个词元


def multi_turn(questions: list[str], replies: list[str]) -> list[list[int]]:
    """最多 5 段多轮对话（问题 i、i+1、i+2 与我们的回答交替）。"""
    turns = [t for q, r in zip(questions, replies) for t in (q, r)]
    return [turns[2 * i:2 * i + 6] for i in range(min(5, len(questions) - 2))]


def hf_greedy(hf_model, prompt: list[int], end_id: int, max_new: int) -> list[int]:
    out = hf_model.generate(torch.tensor([prompt]), max_new_tokens=max_new, do_sample=False, eos_token_id=end_id,
                            pad_token_id=end_id)[0, len(prompt):].tolist()
    return out[:out.index(end_id)] if end_id in out else out


def llama_cpp_greedy(llm, prompt: list[int], end_id: int, max_new: int) -> list[int]:
    out = []
    for token in llm.generate(prompt, temp=0.0, top_k=1, repeat_penalty=1.0):
        if token == end_id or len(out) == max_new:
            break
        out.append(token)
    return out


def compare(name: str, logits_of, greedy_of, model, tokenizer, sequences, prompts, replies) -> dict:
    """一种加载方式的一行结果：logits 的最大差（绝对、相对）与贪心回答相同的个数。"""
    V, diff, scale = tokenizer.vocab_size, 0.0, 0.0
    for ids in sequences:
        with torch.no_grad():
            ours = model(torch.tensor([ids]))[0]
        diff = max(diff, (logits_of(ids)[:, :V] - ours).abs().max().item())
        scale = max(scale, ours.abs().max().item())
    same = sum(tokenizer.decode(greedy_of(p)) == r for p, r in zip(prompts, replies))
    return {"format": name, "max_abs_diff": diff, "relative": diff / scale, "greedy_same": same, "prompts": len(prompts)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="训练目录或检查点文件夹")
    parser.add_argument("--quick", action="store_true",
                        help=f"冒烟：只比前 {QUICK_PROMPTS} 个问题，每个最多 {QUICK_NEW} 个词元（检查脚本本身，数字不能和文档比）")
    parser.add_argument("--record", action="store_true", help="结果追加到 benchmarks/results/export_parity.jsonl（进 git）")
    args = parser.parse_args()
    max_new = QUICK_NEW if args.quick else MAX_NEW
    machine = print_machine("导出前后的一致性 (export parity)")
    from transformers import AutoModelForCausalLM

    model, tokenizer, meta = load_model(args.run, announce=True)
    end_id = tokenizer.token_id(END)
    questions = [p["prompt"] for p in load_chat_prompts()][:QUICK_PROMPTS if args.quick else None]
    replies = [generate_response(model, tokenizer, q, temperature=0, max_length=max_new) for q in questions]
    prompts = [render_prompt([], q, tokenizer) for q in questions]
    sequences = prompts + [render_conversation(d, tokenizer)[0] for d in multi_turn(questions, replies)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        loaded = {"hf": AutoModelForCausalLM.from_pretrained(export_run(args.run, "hf", Path(tmp) / "hf"))}
        for dtype in ("f32", "f16", "q8_0"):
            path = export_run(args.run, "gguf", Path(tmp) / f"model-{dtype}.gguf", dtype)
            loaded[f"gguf {dtype} (transformers)"] = AutoModelForCausalLM.from_pretrained(tmp, gguf_file=path.name)
        for name, hf_model in loaded.items():
            start = time.process_time()
            rows.append(compare(name, lambda ids: hf_model.eval()(torch.tensor([ids])).logits[0].float(),
                                lambda p: hf_greedy(hf_model, p, end_id, max_new), model, tokenizer, sequences, prompts, replies))
            rows[-1]["cpu_s"] = time.process_time() - start
        try:
            import llama_cpp
        except ImportError:
            print("llama-cpp-python 没有安装：跳过 llama.cpp 那几行 (not installed)")
        else:
            for dtype in ("f32", "f16", "q8_0"):
                path = export_run(args.run, "gguf", Path(tmp) / f"llama-{dtype}.gguf", dtype)
                llm = llama_cpp.Llama(model_path=str(path), n_ctx=model.config.max_len, logits_all=True, verbose=False)

                def logits_of(ids, llm=llm):
                    llm.reset()
                    llm.eval(ids)
                    return torch.tensor(llm.scores[:len(ids)])
                start = time.process_time()
                rows.append(compare(f"gguf {dtype} (llama.cpp)", logits_of, lambda p, llm=llm: llama_cpp_greedy(llm, p, end_id, max_new),
                                    model, tokenizer, sequences, prompts, replies))
                rows[-1]["cpu_s"] = time.process_time() - start
    print(f"模型 (model): {meta['checkpoint']}，{model.num_params():,} 个参数；{len(sequences)} 段序列比 logits，"
          f"{len(prompts)} 个问题比贪心回答（最多 {max_new} 个词元）")
    print_table(["格式 (format)", "最大绝对差 max|Δlogit|", "相对 (÷ max|logit|)", "贪心回答相同"],
                [[r["format"], f"{r['max_abs_diff']:.2e}", f"{r['relative']:.2e}", f"{r['greedy_same']}/{r['prompts']}"]
                 for r in rows])
    append_results("export_parity", machine, [{"run": str(args.run), "quick": args.quick, **r} for r in rows],
                   record=args.record)


if __name__ == "__main__":
    main()
