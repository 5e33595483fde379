"""`--preset auto` 训练出的运行目录和别的一样能用（第 28 号问题的验收）：`chat`、`eval`、`serve`、`export`
（Hugging Face 与 GGUF）都加载它；导出的 Hugging Face 模型算出的 logits 与我们的相同。
auto 的大小来自家族（d_model = 64·depth、每头 32 维），不是某个预设：这里查的就是这些形状也走得通。"""
import json
import subprocess
import sys

import httpx
import pytest
import torch

from studygpt.cli.parser import main
from studygpt.model.checkpoint import load_model
from studygpt.recipes.sizing import family_config
from studygpt.serve.app import serve_in_background
from tests.conftest import write_numbered_pairs


@pytest.fixture(scope="module")
def auto_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("auto")
    data = write_numbered_pairs(tmp / "d.conv")
    out = tmp / "run"
    assert main(["train", "--data", str(data), "--out", str(out), "--preset", "auto", "--max-minutes", "0.03",
                 "--no-progress", "--device", "cpu", "--batch-size", "4", "--threads", "1"]) == 0
    return out, data


def test_the_auto_run_is_a_family_size(auto_run):
    run = json.loads((auto_run[0] / "last" / "config.json").read_text(encoding="utf-8"))["run"]
    chosen = family_config(run["sizing"]["depth"], 1)
    model, _, _ = load_model(auto_run[0], announce=False)
    assert (model.config.d_model, model.config.n_layers, model.config.n_head) == \
        (chosen.d_model, chosen.n_layers, chosen.n_head)


def test_chat_and_eval_load_the_auto_run(auto_run, tmp_path):
    run, data = auto_run
    chat = subprocess.run([sys.executable, "-m", "studygpt", "chat", str(run), "--seed", "0", "--max-length", "8"],
                          input="你好\n在吗\nbye\n", capture_output=True, text=True, timeout=300)
    assert chat.returncode == 0 and chat.stdout.count("AI: ") == 2, chat.stderr
    assert main(["eval", str(run), "--data", str(data), "--seeds", "0", "--out", str(tmp_path / "e.json")]) == 0
    assert json.loads((tmp_path / "e.json").read_text(encoding="utf-8"))["bpc"] > 0


def test_serve_answers_with_the_auto_run(auto_run, monkeypatch):
    started = {}
    monkeypatch.setattr("uvicorn.run", lambda app, host, port, **kw: started.update(app=app))
    assert main(["serve", str(auto_run[0])]) == 0
    with serve_in_background(started["app"]) as url:
        reply = httpx.post(f"{url}/v1/chat/completions", timeout=60, json={
            "model": "auto", "messages": [{"role": "user", "content": "你好"}], "max_tokens": 5, "seed": 0})
    assert reply.status_code == 200 and reply.json()["choices"][0]["message"]["role"] == "assistant"


def test_export_of_the_auto_run_loads_in_transformers_with_the_same_logits(auto_run, tmp_path):
    pytest.importorskip("gguf")
    transformers = pytest.importorskip("transformers")
    run = auto_run[0]
    assert main(["export", str(run), "--to", "hf", str(tmp_path / "hf")]) == 0
    assert main(["export", str(run), "--to", "gguf", str(tmp_path / "m.gguf")]) == 0
    assert (tmp_path / "m.gguf").stat().st_size > 0
    ours, tokenizer, _ = load_model(run, announce=False)
    theirs = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "hf").eval()
    ids = torch.tensor([tokenizer.encode("你好在吗")])
    with torch.no_grad():
        assert (ours(ids) - theirs(ids).logits).abs().max().item() < 1e-4
