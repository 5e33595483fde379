"""生成速度基准 (generation speed)：50 个词元的提示后写 100 个词元的回答，批大小 1，有/没有 KV 缓存，
普通路径 (eager) 与编译的逐词解码 (compiled, studygpt/generation/fast_decode.py)。

    python benchmarks/generate_speed.py                 # tiny 与 study 预设，fp32（bf16 只在 CPU 真有 bf16 指令时）
    python benchmarks/generate_speed.py --repeats 1     # 调试用的快速版

逐词解码 (decoding) 每一步都要把全部权重从内存读一遍，所以它的上限是内存带宽，不是算力：
    权重流上限 (weight-streaming bound) = 内存带宽 ÷ 每个词元要读的权重字节数
带宽在同一次运行里实测（512 MB 张量复制，GB/s = 读 + 写的字节 / 时间）。tiny 的权重只有几 MB，装得进 CPU 的
L3 缓存，所以它可以"超过"这个以内存带宽算的上限；study 的权重比 L3 大，这个上限才是真的上限。

模型是随机初始化的（速度与权重的值无关），词表 10000（预设的 max_vocab_size）；<|end|> 被换成一个永远抽不到的编号，
保证每次都写满 100 个词元。采样设置用 README 里的例子：temperature 0.7、top_k 50、重复惩罚 1.2。
"没有缓存" = 每一步把整段序列重算一遍（输出层只算最后一个位置，这对它已经是最公平的比法）。
"只读权重 (read-only)" 一行不是生成：它在一个编译好的图里把每个权重矩阵按行求和一遍，只读不算，
是"一个矩阵一个循环"这种读法在这台机器上实际能达到的速度，给编译路径当参照。
结果追加到 benchmarks/results/generate_speed.jsonl。这是脚本，不是测试。
"""
from __future__ import annotations

import argparse
import time

import torch

# 先导入 _common：它把本检出放到 sys.path 最前面，下面的 studygpt 才是这里的代码
from _common import (
    append_results,
    fast_bf16,
    matmul_peak,
    memory_bandwidth,
    peak_rss_mb,
    print_machine,
    print_table,
    reset_peak_rss,
)

from studygpt.generation.fast_decode import compile_decoding
from studygpt.generation.generate import (
    SamplingConfig,
    decode_one_token,
    generate_tokens,
    prefill,
    process_logits,
    sample,
)
from studygpt.generation.inference import column_major_weights
from studygpt.model.transformer import DialogueModel, KVCache, ModelConfig
from studygpt.recipes.presets import get_preset
from studygpt.tokenizer.char import Tokenizer
from studygpt.tokenizer.specials import END, SPECIAL_TOKENS

PROMPT, REPLY = 50, 100
PATHS = {"eager": "普通 (eager)", "compiled": "编译 (compiled)", "read-only": "只读权重 (read-only)"}
SAMPLING = SamplingConfig(temperature=0.7, top_k=50, repetition_penalty=1.2)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--presets", nargs="+", default=["tiny", "study"])
    p.add_argument("--repeats", type=int, default=3, help="每种设置重复几次，取最快的一次")
    p.add_argument("--threads", type=int, nargs="+", default=None, help="也在这些线程数下测有缓存的解码（默认 1 和全部）")
    return p.parse_args()


# ===== 1. 模型与词表 =====
def vocab_10k() -> Tokenizer:
    """10000 个词元的词表：7 个特殊词元 + 9993 个常用汉字区的字符（内容不影响速度）。"""
    chars = "".join(chr(0x4E00 + i) for i in range(10000 - len(SPECIAL_TOKENS)))
    return Tokenizer().build_vocab([chars], max_vocab_size=10000)


def never_ending(tokenizer: Tokenizer) -> Tokenizer:
    """一个把 <|end|> 映射到不存在编号的分词器副本：generate_tokens 就永远不会提前停下。"""
    clone = Tokenizer()
    clone.id_to_token, clone._table = tokenizer.id_to_token, tokenizer._table
    clone.vocab = {**tokenizer.vocab, END: -1}
    return clone


def build_model(preset: str, vocab_size: int, dtype: torch.dtype) -> DialogueModel:
    """预设结构的随机模型；max_len 至少 256，这样 tiny 也能测 250 个词元的上下文（只影响 RoPE 表的大小）。"""
    cfg = dict(get_preset(preset)["model"])
    cfg["max_len"] = max(cfg["max_len"], 256)
    torch.manual_seed(0)
    model = DialogueModel(config=ModelConfig(vocab_size=vocab_size, **cfg)).to(dtype).eval()
    return column_major_weights(model)  # 与命令行加载模型时一样（inference.load_for_inference）


def weight_bytes_per_token(model: DialogueModel) -> int:
    """每生成一个词元要读的权重字节：所有矩阵（输出层就是整个嵌入矩阵）+ 归一化向量。"""
    return sum(p.numel() * p.element_size() for p in model.parameters())


# ===== 2. 计时 =====
def with_cache(model, tokenizer, prompt: list[int]) -> dict:
    """真正的生成路径 generate_tokens：返回首字延迟 (TTFT)、之后每秒词元数、总时间。"""
    t0 = time.perf_counter()
    times = [time.perf_counter() - t0 for _ in generate_tokens(model, prompt, REPLY, SAMPLING, tokenizer, seed=0)]
    assert len(times) == REPLY, "生成提前停下了"
    return {"ttft_ms": times[0] * 1e3, "tokens_per_s": (REPLY - 1) / (times[-1] - times[0]), "total_s": times[-1]}


@torch.inference_mode()
def without_cache(model, tokenizer, prompt: list[int]) -> dict:
    """不用 KV 缓存：每一步把 提示 + 已生成的词元 整段重新前向一遍，采样与上面相同。"""
    ids, reply, generator, times = list(prompt), [], torch.Generator().manual_seed(0), []
    t0 = time.perf_counter()
    for _ in range(REPLY):
        hidden = model(torch.tensor([ids]), return_hidden=True)[0, -1]
        token = sample(process_logits(model.output(hidden), SAMPLING, reply), SAMPLING, generator)
        ids.append(token)
        reply.append(token)
        times.append(time.perf_counter() - t0)
    return {"ttft_ms": times[0] * 1e3, "tokens_per_s": (REPLY - 1) / (times[-1] - times[0]), "total_s": times[-1]}


def best_of(fn, repeats: int, *args) -> dict:
    """先预热一次，再重复几次取总时间最短的一次（别的进程偶尔抢 CPU 时，最快的一次最接近真实能力）；附上峰值内存。"""
    fn(*args)  # 预热：第一次可能要编译（编译的解码换了线程数也要重编一次），不计时
    reset_peak_rss()
    runs = [fn(*args) for _ in range(repeats)]
    best = min(runs, key=lambda r: r["total_s"])
    return {**best, "peak_rss_mb": peak_rss_mb()}


@torch.inference_mode()
def per_token_ms(model, context: int, cached: bool, steps: int = 8) -> float:
    """上下文已有 context 个词元时，再生成一个词元要多少毫秒（有缓存：decode_one_token；没有：整段重算）。"""
    ids = torch.randint(10, model.config.vocab_size, (context + steps,)).tolist()
    best = float("inf")
    for s in range(steps):
        n = context - steps + s  # 前文 n 个词元，再算第 n+1 个
        if cached:
            cache = KVCache(model.config, 1, "cpu", model.tok_embeddings.weight.dtype)
            prefill(model, ids[:n], cache)
            t0 = time.perf_counter()
            decode_one_token(model, ids[n], cache)
        else:
            t0 = time.perf_counter()
            model.output(model(torch.tensor([ids[:n + 1]]), return_hidden=True)[0, -1])
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def with_threads(n: int, fn, *args):
    """临时把 PyTorch 的线程数设为 n 来跑 fn。"""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        return fn(*args)
    finally:
        torch.set_num_threads(old)


def read_only_ms(model: DialogueModel, repeats: int = 20) -> float:
    """在一个编译好的图里把每个权重矩阵按行求和一遍（只读、几乎不算）要几毫秒：逐矩阵流式读取的实际上限。"""
    weights = [p for p in model.parameters() if p.dim() == 2]
    read_all = torch.compile(lambda ws: [w.sum(-1) for w in ws])
    with torch.inference_mode():
        read_all(weights)  # 编译 + 预热
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            read_all(weights)
            best = min(best, time.perf_counter() - t0)
    return best * 1e3


def or_dash(value, spec: str) -> str:
    return "—" if value is None else format(value, spec)


# ===== 3. 主程序 =====
def main() -> None:
    args = parse_args()
    machine = print_machine("生成速度 (generation speed)")
    bandwidths = [memory_bandwidth()]  # 每个模型测完再测一次，取最大：别的进程抢内存时测低了会把上限算低
    peak, _ = matmul_peak(torch.float32, sizes=(1024, 2048))
    print(f"实测内存带宽 (memory bandwidth): {bandwidths[0]:.1f} GB/s（512 MB 复制）；fp32 矩阵乘法峰值 {peak:.0f} GFLOP/s")
    bf16_ok, reason = fast_bf16()
    print(f"bf16 权重: {'测 (measured)' if bf16_ok else '跳过 (skipped)'} — {reason}")
    dtypes = [torch.float32] + ([torch.bfloat16] if bf16_ok else [])
    threads = args.threads or sorted({1, torch.get_num_threads()})
    base = vocab_10k()
    tokenizer = never_ending(base)
    prompt = torch.randint(len(SPECIAL_TOKENS), base.vocab_size, (PROMPT,),
                           generator=torch.Generator().manual_seed(1)).tolist()

    records = []
    for preset in args.presets:
        for dtype in dtypes:
            model = build_model(preset, base.vocab_size, dtype)
            name = f"{preset} {str(dtype).removeprefix('torch.')}"
            common = {"preset": preset, "dtype": str(dtype), "weight_bytes": weight_bytes_per_token(model)}

            def record(path: str, kv_cache: bool, n_threads: int, run: dict) -> None:
                records.append({**common, "path": path, "kv_cache": kv_cache, "threads": n_threads, **run})

            # 普通路径 (eager)：先测它，compile_decoding 会改权重的存储顺序
            for n_threads in threads:
                record("eager", True, n_threads,
                       with_threads(n_threads, best_of, with_cache, args.repeats, model, tokenizer, prompt))
            record("eager", False, torch.get_num_threads(), best_of(without_cache, 1, model, tokenizer, prompt))
            for context in (150, 250):
                t_cache, t_full = per_token_ms(model, context, True), per_token_ms(model, context, False)
                records.append({"preset": preset, "dtype": str(dtype), "context": context, "ms_cached": t_cache,
                                "ms_full_recompute": t_full, "kv_speedup": t_full / t_cache})
            # 编译的逐词解码 (compiled)
            t0 = time.perf_counter()
            compile_decoding(model, SAMPLING)
            common["compile_s"] = time.perf_counter() - t0
            for n_threads in threads:
                record("compiled", True, n_threads,
                       with_threads(n_threads, best_of, with_cache, args.repeats, model, tokenizer, prompt))
            # 参照：只读一遍权重（不是生成，没有首字延迟）
            ms = read_only_ms(model)
            record("read-only", True, torch.get_num_threads(),
                   {"ttft_ms": None, "tokens_per_s": 1e3 / ms, "total_s": ms / 1e3, "peak_rss_mb": None})
            bandwidths.append(memory_bandwidth())
            print(f"{name}: 完成 (done)；编译用了 {common['compile_s']:.0f} s")

    bandwidth = max(bandwidths)
    for r in (r for r in records if "kv_cache" in r):  # 权重流上限 = 带宽 ÷ 每个词元要读的权重字节
        r.update(bandwidth_gbs=bandwidth, bound_tokens_per_s=bandwidth * 1e9 / r["weight_bytes"])
        r["pct_of_bound"] = r["tokens_per_s"] / r["bound_tokens_per_s"]

    print(f"\n提示 {PROMPT} 词元 → 回答 {REPLY} 词元，批大小 1；带宽 {bandwidth:.1f} GB/s"
          f"（{len(bandwidths)} 次测量里最大的：{', '.join(f'{b:.1f}' for b in bandwidths)}）")
    rows = []
    for r in (r for r in records if "kv_cache" in r):
        used = r["weight_bytes"] * r["tokens_per_s"] / 1e9
        rows.append([f"{r['preset']} {r['dtype'].removeprefix('torch.')}", PATHS[r["path"]],
                     "有 (yes)" if r["kv_cache"] else "无 (no)",
                     r["threads"], or_dash(r["ttft_ms"], ".1f"), f"{r['tokens_per_s']:.0f}",
                     f"{r['weight_bytes'] / 2**20:.1f}", f"{used:.1f}", f"{r['bound_tokens_per_s']:.0f}",
                     f"{r['pct_of_bound']:.0%}", or_dash(r["peak_rss_mb"], ".0f")])
    print_table(["模型", "解码路径", "KV 缓存", "线程", "首字 ms", "tokens/s", "权重 MB/词元", "权重×速度 GB/s", "上限 tok/s",
                 "% 上限", "峰值内存 MB"], rows)
    print("\nKV 缓存的加速 (KV-cache speed-up)：上下文已有 N 个词元时，多生成一个词元的时间")
    print_table(["模型", "上下文 N", "有缓存 ms", "整段重算 ms", "加速 ×"],
                [[f"{r['preset']} {r['dtype'].removeprefix('torch.')}", r["context"], f"{r['ms_cached']:.2f}",
                  f"{r['ms_full_recompute']:.2f}", f"{r['kv_speedup']:.1f}"] for r in records if "context" in r])
    append_results("generate_speed", machine, [{"prompt_tokens": PROMPT, "reply_tokens": REPLY,
                                                "sampling": vars(SAMPLING), **r} for r in records], record=True)


if __name__ == "__main__":
    main()
