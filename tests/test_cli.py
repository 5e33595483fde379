"""命令行的端到端测试：在子进程里真正运行 `python -m studygpt ...`。"""
import subprocess
import sys
from pathlib import Path

import pytest

from studygpt.cli.parser import build_parser, main, parse_overrides
from tests.conftest import DIALOGUES

COMMANDS = ["train", "chat", "generate", "tokenize", "info", "quickstart", "eval", "data", "serve", "inspect"]


def run(*args, stdin=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "studygpt", *args], input=stdin, capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def subcommands():
    parser = build_parser()
    return list(parser._subparsers._group_actions[0].choices)


def test_every_command_has_help(capsys):
    """`studygpt --help` 真正在子进程里跑一次；每个子命令的 --help 在本进程里跑（每个子进程都要导入 torch，约 2 秒）。"""
    result = run("--help")
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout
    names = subcommands()
    assert set(names) >= {"train", "chat", "generate", "tokenize", "info"}
    for name in names:
        with pytest.raises(SystemExit) as exit_info:
            main([name, "--help"])
        assert exit_info.value.code == 0, name
        assert "usage:" in capsys.readouterr().out, name


def test_parse_overrides_types():
    assert parse_overrides(["--lr", "1e-3", "--n-layers", "6", "--compile", "true", "--max-steps", "none"]) == \
        {"lr": 1e-3, "n_layers": 6, "compile": True, "max_steps": None}


def write_conv(path: Path, dialogues) -> Path:
    path.write_text("".join("E\n" + "".join(f"M {t}\n" for t in d) for d in dialogues), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    data = write_conv(tmp / "data.conv", DIALOGUES * 20)
    result = run("train", "--data", str(data), "--out", str(tmp / "run"), "--max-steps", "6",
                 "--d-model", "32", "--n-layers", "1", "--batch-size", "4", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "完成 (done): 6 步" in result.stdout
    return tmp / "run"


def test_train_then_chat_through_piped_stdin(trained_run):
    result = run("chat", str(trained_run), "--seed", "0", "--max-length", "10",
                 stdin="你好\n/set temperature 0\n你是谁？\n/reset\n/set top_k 0\nbye\n这行不会被读到\n")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.count("AI: ") == 2 and "（temperature = 0.0）" in out and "（已清空对话历史）" in out
    assert "设置无效" in out and "再见" in out and "这行不会被读到" not in out


def test_generate_is_reproducible_with_seed(trained_run):
    a = run("generate", str(trained_run), "你好", "--seed", "3", "--temperature", "1.0")
    b = run("generate", str(trained_run), "你好", "--seed", "3", "--temperature", "1.0")
    assert a.returncode == 0 and a.stdout == b.stdout


def test_generate_with_compiled_decoding_gives_the_same_reply(trained_run):
    args = ("generate", str(trained_run), "你好", "--seed", "3", "--temperature", "1.0", "--max-length", "20")
    plain, compiled = run(*args), run(*args, "--compile")
    assert compiled.returncode == 0, compiled.stderr
    assert "编译逐词解码" in compiled.stderr and compiled.stdout == plain.stdout


def test_resume_continues_from_last(trained_run, tmp_path):
    import shutil
    run_dir = tmp_path / "run"
    shutil.copytree(trained_run, run_dir)
    # 续训沿用当时的设置（max_steps=6 已走完）：再训不会多走一步，但要能正常加载并结束
    result = run("train", "--resume", str(run_dir), "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "续训：第 6 步" in result.stdout


@pytest.mark.parametrize("args, fragment", [
    (["train", "--data", "missing.conv", "--out", "x"], "missing.conv"),
    (["train", "--data", "d.conv", "--out", "x", "--lerning-rate", "1"], "未知的设置"),
    (["chat", "no_such_run"], "no_such_run"),
])
def test_user_errors_are_one_line_without_traceback(tmp_path, args, fragment):
    write_conv(tmp_path / "d.conv", DIALOGUES * 5)
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert fragment in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_tokenize_shows_mask_when_piped():
    result = run("tokenize", "你好", "你好！")
    assert result.returncode == 0
    assert "<|user|>你好<|end|><|assistant|>[你][好][！][<|end|>]" in result.stdout


def test_info_prints_breakdown():
    result = run("info", "--preset", "study")
    assert result.returncode == 0 and "合计 (total)" in result.stdout and "17,969,664" in result.stdout


def test_train_help_lists_every_setting_with_its_default():
    import dataclasses

    from studygpt.cli.parser import build_parser
    from studygpt.model.transformer import ModelConfig
    from studygpt.training.optim import TrainConfig
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    lines = train.format_help().splitlines()
    settings = [f for f in dataclasses.fields(ModelConfig) if f.name != "vocab_size"] + list(dataclasses.fields(TrainConfig))
    for f in settings:  # 每个字段一行：名字和 dataclass 的默认值（配置里新加的字段自动出现）
        line = next((ln for ln in lines if ln.split()[:1] == [f"--{f.name.replace('_', '-')}"]), None)
        assert line is not None and str(f.default) in line, f.name
    assert not any(ln.split()[:1] == ["--vocab-size"] for ln in lines)  # vocab_size 由数据决定


@pytest.mark.parametrize("alias, original, fragment", [
    (["tokenize", "你好", "你好！"], ["inspect", "tokens", "你好", "你好！"], "[你][好][！][<|end|>]"),
    (["info", "--preset", "tiny"], ["inspect", "params", "--preset", "tiny"], "合计 (total)"),
])
def test_old_command_names_are_aliases(capsys, alias, original, fragment):
    from studygpt.cli.parser import main
    outputs = []
    for argv in (alias, original):
        assert main(argv) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1] and fragment in outputs[0]


def test_eval_uses_the_shared_sampling_flags_with_eval_defaults():
    from studygpt.cli.commands import generation_settings
    from studygpt.evaluation.metrics import EVAL_SETTINGS
    from studygpt.generation.generate import GenerationSettings, SamplingConfig
    parser = build_parser()
    default = parser.parse_args(["eval", "runs/a", "--data", "v.conv"])
    assert generation_settings(default) == EVAL_SETTINGS  # 没给参数：与 evaluate_model 的默认相同
    args = parser.parse_args(["eval", "runs/a", "--data", "v.conv", "--top-p", "0.9", "--repetition-penalty", "1.2",
                              "--max-length", "20"])
    assert generation_settings(args) == GenerationSettings(SamplingConfig(0.7, 50, 0.9, 1.2), 20, None)
    chat = parser.parse_args(["chat", "runs/a", "--temperature", "0", "--seed", "4"])
    assert generation_settings(chat) == GenerationSettings(SamplingConfig(temperature=0.0), 100, 4)
    for name in ("chat", "generate", "eval", "serve", "train", "quickstart"):  # 同一个 --device 帮助
        p = parser._subparsers._group_actions[0].choices[name]
        assert any(a.dest == "device" and "默认自动选择" in a.help for a in p._actions), name
