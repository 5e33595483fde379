"""服务的负载基准 (load benchmark)：1、4、16 个并发客户端时的每秒请求数 (req/s) 与延迟 p50 / p95。

    python benchmarks/serve_load.py [runs/NAME] [--requests 48] [--max-tokens 32] [--clients 1 4 16]

不给 RUN 时用随机初始化的小模型（tiny 预设的结构、内置语料的词表）。服务器在子进程里用
`studygpt serve` 启动，和真实使用一样（客户端线程也不会和它抢 Python 的 GIL）。每个客户端发流式请求，
记下首字延迟 (time to first token, TTFT) 和整条回答的延迟。服务器一次只生成一条回答（先来先服务），
所以并发多了，req/s 基本不变，延迟随排队变长——这正是要看的。

结果打印成表，并追加到 benchmarks/results/serve_load.jsonl（每个并发数一行）。这是脚本，不是测试。
"""
from __future__ import annotations

import argparse
import json
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

from studygpt.checkpoint import save_checkpoint
from studygpt.corpus import builtin_corpus
from studygpt.hardware import describe_machine
from studygpt.model import DialogueModel, ModelConfig
from studygpt.presets import get_preset
from studygpt.tokenizer import Tokenizer

RESULTS = Path(__file__).parent / "results" / "serve_load.jsonl"
PROMPTS = ["你好", "你是谁？", "今天天气怎么样？", "什么是注意力机制？", "23加58等于多少？"]


def random_tiny_run(folder: Path) -> Path:
    """没给 RUN 时：内置语料建词表，tiny 结构的随机模型，存成检查点。"""
    corpus = builtin_corpus()
    tokenizer = Tokenizer().build_vocab(t for d in corpus.own + corpus.chatterbot for t in d)
    torch.manual_seed(0)
    model = DialogueModel(config=ModelConfig(vocab_size=tokenizer.vocab_size, **get_preset("tiny")["model"]))
    return save_checkpoint(folder / "random-tiny", model, tokenizer)


def start_server(run: Path, max_tokens: int, log: Path) -> tuple[subprocess.Popen, str]:
    """`studygpt serve RUN` 跑在子进程里；等 /health 答应了再返回 (进程, 根地址)。"""
    with socket.socket() as s:  # 让系统挑一个空闲端口
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "studygpt", "serve", str(run), "--port", str(port), "--max-tokens-cap", str(max_tokens)]
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


def run_level(url: str, clients: int, requests: int, max_tokens: int) -> dict:
    """clients 个线程一起发，共 requests 个请求；返回这一档的汇总。"""
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(lambda i: one_request(url, i, max_tokens), range(requests)))
    wall = time.perf_counter() - start
    latency = np.array([r["latency"] for r in results])
    return {"clients": clients, "requests": requests, "wall_s": round(wall, 3),
            "req_per_s": round(requests / wall, 2),
            "tokens_per_s": round(sum(r["tokens"] for r in results) / wall, 1),
            "latency_p50_s": round(float(np.percentile(latency, 50)), 3),
            "latency_p95_s": round(float(np.percentile(latency, 95)), 3),
            "ttft_p50_s": round(float(np.median([r["ttft"] for r in results])), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", default=None, help="训练目录；不给时用随机初始化的 tiny 模型")
    parser.add_argument("--requests", type=int, default=48, help="每一档发多少个请求（至少等于并发数）")
    parser.add_argument("--max-tokens", type=int, default=32, help="每个回答最多多少个词元")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16], help="并发客户端数")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        run = Path(args.run) if args.run else random_tiny_run(Path(tmp))
        proc, url = start_server(run, args.max_tokens, Path(tmp) / "server.log")
        try:
            config = httpx.get(f"{url}/v1/models").json()["data"][0]
            for i in range(2):  # 预热 (warm-up)：第一次调用较慢，不计入
                one_request(url, i, args.max_tokens)
            levels = [run_level(url, c, max(args.requests, c), args.max_tokens) for c in args.clients]
        finally:
            proc.terminate()
            proc.wait(timeout=30)

    print(f"\n模型 (model): {args.run or 'random-tiny'} · 上下文 {config['max_len']} · max_tokens {args.max_tokens}")
    print(f"机器 (machine): {describe_machine()}")
    print(f"{'并发 clients':>12} {'请求 requests':>13} {'req/s':>7} {'tokens/s':>9} {'p50 延迟 s':>11} "
          f"{'p95 延迟 s':>11} {'p50 首字 s':>11}")
    for r in levels:
        print(f"{r['clients']:>12} {r['requests']:>13} {r['req_per_s']:>7} {r['tokens_per_s']:>9} "
              f"{r['latency_p50_s']:>11} {r['latency_p95_s']:>11} {r['ttft_p50_s']:>11}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with RESULTS.open("a", encoding="utf-8") as f:
        for r in levels:
            record = {"time": stamp, "run": args.run or "random-tiny", "max_tokens": args.max_tokens,
                      "machine": describe_machine(), **r}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(f"已追加到 (appended to) {RESULTS}")


if __name__ == "__main__":
    main()
