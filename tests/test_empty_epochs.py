"""一批也凑不满时不空转 (no loop without progress)，以及 --out 已经是一个文件时一句话报错。

曾经的 bug（issue #27）：`studygpt dpo RUN --pairs p.jsonl --max-steps 3`，偏好文件只有 2 条、默认一批 16 条，
每个 epoch 都产出 0 个批次，训练循环就一遍遍写 epoch_end 记录，永不结束（25 秒写出 31 MB 的 metrics.jsonl）。
现在有两道关：
    1. 开训之前，每个训练方案 (recipe) 都把数据量与批大小比一比，不够一批就一句话停下，说出两个数和怎么改；
    2. 训练循环里，从头走完一个 epoch 却一步也没走，就停下报错，不再开下一个 epoch。
每个测试都限时（SIGALRM）：没有修好时它们会超时失败，而不是把测试卡住。
"""
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest

from studygpt.cli.parser import main
from studygpt.errors import StudyGPTError
from studygpt.model.checkpoint import save_checkpoint
from studygpt.tokenizer.char import Tokenizer
from studygpt.training.trainer import TransformerTrainer
from tests.conftest import DIALOGUES, tiny_model

REPO = Path(__file__).resolve().parents[1]
LIMIT_S = 60  # 每个测试最多这么久；修好之后每个只要几秒


@contextmanager
def within(seconds: int):
    """超过 seconds 秒就抛 TimeoutError：空转的训练循环会被它打断。"""
    def stop(signum, frame):
        raise TimeoutError(f"超过 {seconds} 秒：训练多半在空转 (looping without progress)")
    old = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture(autouse=True)
def time_limit():
    with within(LIMIT_S):
        yield


def write_conv(path: Path, dialogues) -> Path:
    path.write_text("".join("E\n" + "".join(f"M {t}\n" for t in d) for d in dialogues), encoding="utf-8")
    return path


@pytest.fixture
def start_run(tmp_path) -> Path:
    """一个极小的起点检查点（几万个参数），给 finetune / sft / dpo / rl 用。"""
    tokenizer = Tokenizer().build_vocab([t for d in DIALOGUES for t in d] + ["0123456789加减等于多少？。"])
    save_checkpoint(tmp_path / "run", tiny_model(tokenizer.vocab_size), tokenizer)
    return tmp_path / "run"


def run_cli(args: list[str]) -> int:
    """main() 的退出码：用户错误返回 2；参数本身不对时 argparse 在解析时就以 SystemExit(2) 退出。"""
    try:
        return main(args)
    except SystemExit as exit_info:
        return exit_info.code


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err, err


def assert_nothing_large(out: Path) -> None:
    metrics = out / "metrics.jsonl"
    assert not metrics.exists() or metrics.stat().st_size < 10_000


# ===== 1. 训练循环自己的关：一个 epoch 一步也没走就停 =====
class NoBatches:
    """没有长度、也产出不了任何批次的数据源。"""

    def __iter__(self):
        return iter(())


@pytest.mark.parametrize("source", [[], NoBatches()], ids=["empty-list", "no-length"])
def test_trainer_stops_when_an_epoch_yields_no_batch(tokenizer, tmp_path, source):
    model = tiny_model(tokenizer.vocab_size)
    trainer = TransformerTrainer(model, source, "cpu", {"max_steps": 3, "batch_size": 2, "seq_len": 64},
                                 tokenizer=tokenizer, out_dir=tmp_path, progress=False, log=lambda text: None)
    with pytest.raises(StudyGPTError, match="第 0 个 epoch 一个批次也没有"):
        trainer.train()
    assert trainer.step == 0
    assert_nothing_large(tmp_path)


# ===== 2. 每个训练方案开训之前的关：数据够不够一批 =====
def test_train_with_fewer_rows_than_a_batch_is_one_line(tmp_path, capsys):
    data = write_conv(tmp_path / "d.conv", DIALOGUES)
    code = main(["train", "--data", str(data), "--out", str(tmp_path / "out"), "--batch-size", "64",
                 "--d-model", "32", "--n-layers", "1", "--max-steps", "3", "--no-progress"])
    assert_one_line_error(code, capsys.readouterr().err, "少于一批 64 行", "--batch-size")
    assert_nothing_large(tmp_path / "out")


def test_finetune_with_fewer_rows_than_a_batch_is_one_line(start_run, tmp_path, capsys):
    data = write_conv(tmp_path / "new.conv", DIALOGUES)
    code = main(["finetune", str(start_run), "--data", str(data), "--out", str(tmp_path / "ft"), "--max-steps", "3",
                 "--no-progress"])
    assert_one_line_error(code, capsys.readouterr().err, "少于一批 16 行", "微调对话")
    assert_nothing_large(tmp_path / "ft")


def test_sft_with_fewer_rows_than_a_batch_is_one_line(start_run, tmp_path, capsys, monkeypatch):
    """真正的 sft 总混着内置语料，凑不满一批的情况要换掉内置语料才造得出来。"""
    import studygpt.recipes.posttrain as posttrain
    monkeypatch.setattr(posttrain, "builtin_corpus",
                        lambda seed=0: SimpleNamespace(own=[], chatterbot=[], addition_train=[]))
    code = main(["sft", str(start_run), "--out", str(tmp_path / "sft"), "--problems", "3", "--max-steps", "3"])
    assert_one_line_error(code, capsys.readouterr().err, "少于一批 16 行", "--problems")
    assert_nothing_large(tmp_path / "sft")


def write_pairs(path: Path, count: int) -> Path:
    rows = [{"prompt": f"{i}加1等于多少？", "chosen": f"{i}加1等于{i + 1}。", "rejected": f"{i}加1等于{i}。"}
            for i in range(count)]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_dpo_with_fewer_pairs_than_a_batch_ends_at_once(start_run, tmp_path):
    """issue #27 的原样重现，在子进程里跑（限时 60 秒）：以前它永不结束。"""
    pairs = write_pairs(tmp_path / "p.jsonl", 2)
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # 测的是这份检出里的代码，而不是装在别处的那份
    begin = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "studygpt", "dpo", str(start_run), "--pairs", str(pairs),
                             "--out", str(tmp_path / "out"), "--max-steps", "3"],
                            capture_output=True, text=True, cwd=REPO, env=env, timeout=LIMIT_S - 5)
    assert time.perf_counter() - begin < LIMIT_S - 5
    assert_one_line_error(result.returncode, result.stderr, "偏好对", "少于一批 16 条", "--batch-size")
    assert_nothing_large(tmp_path / "out")


def test_dpo_batch_size_must_be_positive(start_run, tmp_path, capsys):
    pairs = write_pairs(tmp_path / "p.jsonl", 4)
    with pytest.raises(SystemExit) as exit_info:  # 解析参数时就拦下（cli/parser.py 的 COUNT）
        main(["dpo", str(start_run), "--pairs", str(pairs), "--out", str(tmp_path / "out"), "--batch-size", "0"])
    assert_one_line_error(exit_info.value.code, capsys.readouterr().err, "--batch-size")


def test_rl_without_prompts_is_one_line(start_run, tmp_path, capsys):
    """强化学习的批次是每步现抽的 (RolloutBatches 永远抽不完)，epoch 不会是空的；
    唯一凑不出一批的设置是每步 0 道题：解析参数时就被拒绝（cli/parser.py 的 COUNT）。"""
    code = run_cli(["rl", str(start_run), "--out", str(tmp_path / "rl"), "--prompts", "0", "--max-steps", "3"])
    assert_one_line_error(code, capsys.readouterr().err, "--prompts")
    assert_nothing_large(tmp_path / "rl")


# ===== 3. --out 已经是一个文件：开工之前一句话报错 =====
@pytest.mark.parametrize("command", [
    ["train", "--data", "{data}", "--max-steps", "1", "--no-progress"],
    ["quickstart", "--max-steps", "1", "--no-chat", "--no-progress"],
    ["finetune", "{run}", "--data", "{data}", "--max-steps", "1", "--no-progress"],
    ["sft", "{run}", "--max-steps", "2"],
    ["dpo", "{run}", "--max-steps", "2"],
    ["rl", "{run}", "--max-steps", "2"],
    ["tokenizer", "train", "--data", "{data}"],
], ids=lambda c: c[0])
@pytest.mark.parametrize("below", [False, True], ids=["file", "inside-a-file"])
def test_out_that_is_a_file_is_one_line(start_run, tmp_path, capsys, command, below):
    data = write_conv(tmp_path / "d.conv", DIALOGUES * 5)
    taken = tmp_path / "taken.txt"
    taken.write_text("不是目录\n", encoding="utf-8")
    out = taken / "sub" if below else taken
    args = [a.format(data=data, run=start_run) for a in command] + ["--out", str(out)]
    begin = time.perf_counter()
    code = run_cli(args)
    assert_one_line_error(code, capsys.readouterr().err, str(taken))
    assert time.perf_counter() - begin < 5  # 开工之前就停：不读语料、不建模型
    assert taken.read_text(encoding="utf-8") == "不是目录\n"


def test_eval_out_that_is_a_folder_is_one_line(start_run, tmp_path, capsys):
    data = write_conv(tmp_path / "d.conv", DIALOGUES)
    code = run_cli(["eval", str(start_run), "--data", str(data), "--out", str(tmp_path)])
    assert_one_line_error(code, capsys.readouterr().err, str(tmp_path), "这里要的是文件")


def test_post_training_settings_fit_any_step_budget():
    """--max-steps 1 也能跑：预热必须比整个训练短（以前 1 步时预热 1 步，设置检查直接报错）。"""
    from studygpt.recipes.posttrain import trainer_config
    from studygpt.training.optim import TrainConfig, planned_steps
    for steps in (1, 2, 9, 10, 200):
        config = TrainConfig.from_dict(trainer_config(steps, 1e-4, 4, 64, 0))
        assert planned_steps(config, steps_per_epoch=None) == steps
        assert config.warmup_steps < steps
