"""服务的负载基准 (load benchmark)：1、4、16 个并发客户端时的吞吐 (req/s、tokens/s) 与延迟 p50 / p95。

    python benchmarks/serve_load.py [runs/NAME] [--preset study] [--requests 48] [--max-tokens 32]
                                    [--clients 1 4 16] [--max-batch 16 1]
    python benchmarks/serve_load.py --step-cost [--preset study]   # 只量一步批解码的 CPU 时间：批 1、2、4、8、16
    python benchmarks/serve_load.py --requests 32 --record          # 维护者：结果追加到 benchmarks/results/（进 git）

不给 RUN 时用随机初始化的模型（--preset 的结构，默认 study；内置语料的词表）。服务器在子进程里用
`studygpt serve --max-batch N` 启动，和真实使用一样（客户端线程也不会和它抢 Python 的 GIL）。每个客户端发流式请求，
记下首字延迟 (time to first token, TTFT) 和整条回答的延迟。

--max-batch 给几个值就起几次服务器：16 是连续批处理（同时在生成的请求一起解码），1 是一个接一个（先来先服务）。
每一档都打印相对同一台服务器 1 个客户端时的吞吐倍数（同一次运行里量的，机器忙闲对两者一样）。
结果打印成表，并追加到 runs/benchmarks/serve_load.jsonl（每台服务器、每个并发数一行；runs/ 不进 git）；
加 --record 才追加到 benchmarks/results/serve_load.jsonl。这是脚本，不是测试。
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import httpx
import numpy as np
import torch

# 先导入 _common：它把本检出放到 sys.path 最前面，下面的 studygpt 才是这里的代码
from _common import results_path, where

from studygpt.corpus.builtin import builtin_corpus
from studygpt.hardware import describe_machine
from studygpt.model.checkpoint import read_meta, resolve_checkpoint, save_checkpoint
from studygpt.model.transformer import DialogueModel, ModelConfig
from studygpt.recipes.presets import get_preset
from studygpt.tokenizer.char import Tokenizer

PROMPTS = ["你好", "你是谁？", "今天天气怎么样？", "什么是注意力机制？", "23加58等于多少？"]


def random_run(folder: Path, preset: str) -> Path:
    """没给 RUN 时：内置语料建词表，preset 结构的随机模型，存成检查点。"""
    corpus = builtin_corpus()
    tokenizer = Tokenizer().build_vocab(t for d in corpus.own + corpus.chatterbot for t in d)
    torch.manual_seed(0)
    model = DialogueModel(config=ModelConfig(vocab_size=tokenizer.vocab_size, **get_preset(preset)["model"]))
    return save_checkpoint(folder / f"random-{preset}", model, tokenizer)


def start_server(run: Path, max_tokens: int, max_batch: int, log: Path) -> tuple[subprocess.Popen, str]:
    """`studygpt serve RUN` 跑在子进程里；等 /health 答应了再返回 (进程, 根地址)。"""
    with socket.socket() as s:  # 让系统挑一个空闲端口
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "studygpt", "serve", str(run), "--port", str(port), "--max-tokens-cap", str(max_tokens),
           "--max-batch", str(max_batch)]
    proc = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        try:
            httpx.get(f"{url}/health").raise_for_status()
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    sys.exit(f"服务器没有启动 (server did not start)；日志：\n{log.read_text()}")


def one_request(url: str, i: int, max_tokens: int) -> dict:
    """发一个流式请求；返回 {latency, ttft, tokens}（秒、秒、回答的词元数）。"""
    body = {"model": "bench", "messages": [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}], "seed": i,
            "max_tokens": max_tokens, "stream": True, "stream_options": {"include_usage": True}}
    start = time.perf_counter()
    ttft, tokens = None, 0
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=600) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
            elif ttft is None and chunk["choices"][0]["delta"].get("content"):
                ttft = time.perf_counter() - start
    latency = time.perf_counter() - start
    return {"latency": latency, "ttft": latency if ttft is None else ttft, "tokens": tokens}


def cpu_seconds(pid: int) -> float:
    """进程 pid 到现在用掉的 CPU 时间（用户态 + 内核态，秒；读 Linux 的 /proc）。"""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_level(url: str, pid: int, clients: int, requests: int, max_tokens: int) -> dict:
    """clients 个线程一起发，共 requests 个请求；返回这一档的汇总。server_cpu_s 是服务器进程这期间用掉的 CPU 时间：
    机器被别的进程占着时墙上时间 (wall) 偏悲观，CPU 时间受的影响小得多。"""
    start, cpu = time.perf_counter(), cpu_seconds(pid)
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(lambda i: one_request(url, i, max_tokens), range(requests)))
    wall = time.perf_counter() - start
    peak = httpx.get(f"{url}/health").json()["generations"].get("peak_batch")
    latency = np.array([r["latency"] for r in results])
    return {"clients": clients, "requests": requests, "wall_s": round(wall, 3), "peak_batch": peak,
            "server_cpu_s": round(cpu_seconds(pid) - cpu, 2),
            "req_per_s": round(requests / wall, 2),
            "tokens_per_s": round(sum(r["tokens"] for r in results) / wall, 1),
            "latency_p50_s": round(float(np.percentile(latency, 50)), 3),
            "latency_p95_s": round(float(np.percentile(latency, 95)), 3),
            "ttft_p50_s": round(float(np.median([r["ttft"] for r in results])), 3)}


def measure(run: Path, args, max_batch: int, log: Path) -> list[dict]:
    """起一台 --max-batch max_batch 的服务器，预热后按 args.clients 一档档地量；每档附上相对 1 个客户端的倍数。"""
    proc, url = start_server(run, args.max_tokens, max_batch, log)
    try:
        for i in range(2):  # 预热 (warm-up)：第一次调用较慢，不计入
            one_request(url, i, args.max_tokens)
        levels = [run_level(url, proc.pid, c, max(args.requests, c), args.max_tokens) for c in args.clients]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    base = next((r for r in levels if r["clients"] == 1), None)
    for r in levels:
        r["max_batch"] = max_batch
        r["speedup_vs_1_client"] = round(r["tokens_per_s"] / base["tokens_per_s"], 2) if base else None
    return levels


def step_cost(run: Path) -> list[dict]:
    """一步批解码 (batch_decode.decode_rows，服务器里用一个线程) 的时间：批 1、2、4、8、16，每行的位置在 60 附近。
    报告 CPU 时间（受别的进程影响小）和墙上时间，取 20 次的中位数。"""
    from studygpt.generation.batch_decode import SlotCache, decode_rows
    from studygpt.generation.inference import load_for_inference
    from studygpt.serve.batcher import one_thread
    model, _ = load_for_inference(str(run), "cpu")
    cache = SlotCache(model, 16)
    rows = []
    for b in (1, 2, 4, 8, 16):
        tokens, positions = torch.zeros(b, dtype=torch.long), torch.full((b,), 60)
        cpu, wall = [], []
        for i in range(23):
            c, w = time.process_time(), time.perf_counter()
            with one_thread():
                decode_rows(model, tokens, positions, cache)
            if i >= 3:  # 前 3 次预热
                cpu.append(time.process_time() - c)
                wall.append(time.perf_counter() - w)
        rows.append({"batch": b, "cpu_ms": round(float(np.median(cpu)) * 1e3, 1),
                     "wall_ms": round(float(np.median(wall)) * 1e3, 1)})
        print(f"批 {b:>2}：一步 CPU {rows[-1]['cpu_ms']} ms（墙上 {rows[-1]['wall_ms']} ms），"
              f"每个词元 {rows[-1]['cpu_ms'] / b:.1f} ms CPU")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", default=None, help="训练目录；不给时用随机初始化的模型（--preset 的结构）")
    parser.add_argument("--preset", default="study", help="没给 RUN 时随机模型的结构：tiny / small / study")
    parser.add_argument("--requests", type=int, default=48, help="每一档发多少个请求（至少等于并发数）")
    parser.add_argument("--max-tokens", type=int, default=32, help="每个回答最多多少个词元")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16], help="并发客户端数")
    parser.add_argument("--max-batch", type=int, nargs="+", default=[16, 1],
                        help="服务器的 --max-batch，每个值起一台（16 = 连续批处理，1 = 一个接一个）")
    parser.add_argument("--step-cost", action="store_true", help="只量一步批解码的时间（批 1–16），不起服务器")
    parser.add_argument("--record", action="store_true", help="结果追加到 benchmarks/results/serve_load.jsonl（进 git）")
    args = parser.parse_args()
    results = results_path("serve_load.jsonl", args.record)
    results.parent.mkdir(parents=True, exist_ok=True)

    if args.step_cost:
        with tempfile.TemporaryDirectory() as tmp:
            run = Path(args.run) if args.run else random_run(Path(tmp), args.preset)
            print(f"机器 (machine): {describe_machine()}")
            rows = step_cost(run)
        stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with results.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"time": stamp, "run": args.run or f"random-{args.preset}", "machine": describe_machine(),
                                "step_cost": rows}, ensure_ascii=False) + "\n")
        print(f"已追加到 (appended to) {where(results, args.record)}")
        return

    with tempfile.TemporaryDirectory() as tmp:
        run = Path(args.run) if args.run else random_run(Path(tmp), args.preset)
        config = read_meta(resolve_checkpoint(run))["model"]
        levels = [r for b in args.max_batch for r in measure(run, args, b, Path(tmp) / f"server-{b}.log")]

    name = args.run or f"random-{args.preset}"
    print(f"\n模型 (model): {name} · {config.get('d_model', '?')}/{config.get('n_head', '?')}/"
          f"{config.get('n_layers', '?')}/{config.get('max_len', '?')} · max_tokens {args.max_tokens}")
    print(f"机器 (machine): {describe_machine()}（别的进程同时在用 CPU 时，墙上时间偏慢；倍数是同一次运行里量的）")
    print(f"{'max_batch':>9} {'clients':>7} {'req/s':>7} {'tokens/s':>9} {'×1客户端':>8} {'p50 延迟 s':>11} "
          f"{'p95 延迟 s':>11} {'p50 首字 s':>11} {'峰值批':>6}")
    for r in levels:
        print(f"{r['max_batch']:>9} {r['clients']:>7} {r['req_per_s']:>7} {r['tokens_per_s']:>9} "
              f"{r['speedup_vs_1_client'] or '-':>9} {r['latency_p50_s']:>11} {r['latency_p95_s']:>11} "
              f"{r['ttft_p50_s']:>11} {r['peak_batch']:>7}")
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with results.open("a", encoding="utf-8") as f:
        for r in levels:
            record = {"time": stamp, "run": name, "max_tokens": args.max_tokens, "machine": describe_machine(), **r}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(f"已追加到 (appended to) {where(results, args.record)}")


if __name__ == "__main__":
    main()
