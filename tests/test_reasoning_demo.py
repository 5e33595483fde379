"""benchmarks/reasoning_demo.py 本身的测试：--quick 从一个极小的起点把几个阶段各走 2 步，
再跑一次时做完的阶段全部跳过（可续跑），--report 打印表格并画图。只查形状，不查某次运行的数字。"""

import pytest

from studygpt.corpus.builtin import builtin_conv_path
from studygpt.corpus.read import read_dialogues
from studygpt.model.checkpoint import save_checkpoint
from studygpt.tokenizer.char import Tokenizer
from tests.conftest import load_benchmark, tiny_model


@pytest.mark.slow  # 每个阶段前后各考一次（200 道留出题 + 813 道两位数加法，每题最多 120 个词元）：忙的 2 核上约 4.5 分钟
def test_quick_demo_runs_stages_skips_them_on_rerun_and_reports(tmp_path, capsys):
    demo = load_benchmark("reasoning_demo")
    dialogues, _ = read_dialogues(builtin_conv_path())
    tokenizer = Tokenizer().build_vocab(t for d in dialogues for t in d)
    start = tmp_path / "start"
    save_checkpoint(start, tiny_model(tokenizer.vocab_size, n_layers=1, max_len=128), tokenizer)
    out = tmp_path / "out"
    argv = ["--quick", "--start", str(start), "--out", str(out), "--problems", "40",
            "--stages", "think", "rl", "tool", "think_short", "hack"]
    demo.main(argv)
    for stage in ("think", "rl", "tool", "think_short", "hack"):
        assert (out / stage / "summary.json").is_file(), stage
    first = capsys.readouterr().out
    assert "| 草稿 SFT (scratchpad) |" in first and "| 计算器 (calculator tool) SFT |" in first
    demo.main(argv)  # 再跑一次：全部跳过
    again = capsys.readouterr().out
    assert again.count("已完成，跳过") == 5
    assert (out / "reasoning.png").is_file()
