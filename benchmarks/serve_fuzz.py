"""服务的长时间模糊测试 (long API fuzz) + 1,000 个请求的内存增长 (memory growth)。

    OMP_NUM_THREADS=1 python benchmarks/serve_fuzz.py [--examples 300] [--requests 1000]

1. 模糊测试：schemathesis 按 /openapi.json 为每个接口生成 --examples 个合法请求 (positive) 和同样多个
   故意不合法的请求 (negative)，在进程里直接调用应用 (ASGI)。数：试了多少个输入、各状态码几次、5xx 几次、
   违反描述的回答几个（状态码、内容类型、回答体、不合法的请求被收下）。
2. 内存：真的起 uvicorn，先发 50 个请求预热，记下常驻内存 (RSS)，再发 --requests 个混合请求
   （普通、流式、带 logprobs、坏请求、流到一半断开），再记 RSS。增长应接近 0（没有按请求泄漏）。
数字写进 docs/reliability.md。这是脚本，不是测试；tests/test_fuzz_api.py 和 tests/test_serve_abuse.py 是短版本。
"""
from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
import schemathesis  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402

from benchmarks._common import print_machine  # noqa: E402
from studygpt.model.transformer import DialogueModel, ModelConfig  # noqa: E402
from studygpt.serve.app import ServeSettings, create_app, serve_in_background  # noqa: E402
from studygpt.tokenizer.char import Tokenizer  # noqa: E402

API_KEY = "fuzz-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


def tiny_app():
    tok = Tokenizer().build_vocab(["你好！我是StudyGPT，一个学习用的小模型。Hello world 123"])
    model = DialogueModel(config=ModelConfig(vocab_size=tok.vocab_size, d_model=32, n_head=4, n_layers=1, max_len=64))
    return create_app(model, tok, ServeSettings(model_id="tiny", max_tokens_cap=8, api_key=API_KEY))


# ===== 1. 模糊测试 =====
def fuzz(examples: int) -> dict:
    schema = schemathesis.openapi.from_asgi("/openapi.json", tiny_app())
    statuses, failures, tried = Counter(), [], Counter()
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @settings(derandomize=True, max_examples=examples, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(operation.as_strategy(generation_mode=mode))
            def run(case):
                tried[mode.value] += 1
                response = case.call(headers=AUTH)
                statuses[response.status_code] += 1
                try:  # 规则写不进 JSON Schema 的 400（角色交替等）是设计如此，不算失败；见 tests/test_fuzz_api.py
                    case.validate_response(response, excluded_checks=[schemathesis.checks.positive_data_acceptance])
                except Exception as err:  # 记下来继续：要的是计数
                    failures.append(f"{operation.label} {mode.value}: {str(err).splitlines()[0][:200]}")
            try:
                run()
            except Unsatisfiable:  # 没有参数的 GET 接口造不出"不合法"的请求
                pass
    return {"inputs_tried": sum(tried.values()), "positive": tried["positive"], "negative": tried["negative"],
            "status_codes": dict(sorted(statuses.items())), "server_errors_5xx": sum(n for s, n in statuses.items()
                                                                                  if s >= 500),
            "schema_failures": len(failures), "failure_examples": sorted(set(failures))[:5]}


# ===== 2. 内存增长 =====
def rss_kb() -> int:
    """此刻的常驻内存 (resident set size, KB)，从 /proc/self/status 读。"""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return -1


def one_request(url: str, i: int) -> int:
    """第 i 个请求：五种轮流——普通、流式读完、带 logprobs、坏请求、流式读一块就断开。"""
    body = {"messages": [{"role": "user", "content": f"你好 {i}"}], "max_tokens": 8, "seed": i}
    kind = i % 5
    if kind == 1 or kind == 4:
        with httpx.stream("POST", f"{url}/v1/chat/completions", json={**body, "stream": True}, headers=AUTH,
                          timeout=60) as response:
            for _ in response.iter_lines():
                if kind == 4:
                    break
            return response.status_code
    if kind == 2:
        body.update(logprobs=True, top_logprobs=5)
    if kind == 3:
        body["messages"][0]["role"] = "assistant"  # 坏请求：400
    return httpx.post(f"{url}/v1/chat/completions", json=body, headers=AUTH, timeout=60).status_code


def memory_growth(requests: int) -> dict:
    with serve_in_background(tiny_app()) as url:
        for i in range(50):
            one_request(url, i)
        gc.collect()
        before, t0 = rss_kb(), time.perf_counter()
        codes = Counter(one_request(url, i) for i in range(requests))
        gc.collect()
        after = rss_kb()
        alive = httpx.get(f"{url}/health").json()["status"] == "ok"
    return {"requests": requests, "status_codes": dict(sorted(codes.items())), "rss_before_kb": before,
            "rss_after_kb": after, "rss_growth_kb": after - before, "seconds": round(time.perf_counter() - t0, 1),
            "server_alive": alive}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=300, help="每个接口、每种模式生成几个请求")
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    machine = print_machine("服务的模糊测试与内存 (serve fuzz + memory)")
    t0 = time.process_time()
    figures = {"fuzz": fuzz(args.examples), "memory": memory_growth(args.requests)}
    figures["cpu_s"] = round(time.process_time() - t0, 1)
    print(json.dumps({**machine, **figures}, ensure_ascii=False, indent=1))
    ok = figures["fuzz"]["server_errors_5xx"] == 0 and figures["fuzz"]["schema_failures"] == 0 \
        and figures["memory"]["server_alive"]
    print("结果 (result):", "通过 (0 5xx, 0 schema failures)" if ok else "失败 (FAILED)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
