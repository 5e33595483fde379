"""一个名字一种写法 (one spelling for every flag)：走遍每个子命令的参数，不许有下划线，同一个意思不许两种写法；
旧写法（下划线、`--steps`、`--minutes`）仍然能用，只是不出现在 --help 里。"""
from __future__ import annotations

import argparse
import re

import pytest

from studygpt.cli.parser import OLD_NAMES, build_parser, canonical_flags, main

# 同一个意思 (one concept)：这些写法最多只能出现一种
CONCEPTS = [{"--max-steps", "--steps"}, {"--max-minutes", "--minutes"}, {"--batch-size", "--batch"},
            {"--eval-every", "--eval-interval"}]


def walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(子命令路径, 解析器)：顶层、每个子命令、子命令的子命令。"""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from walk(sub, path + (name,))


PARSERS = list(walk(build_parser()))


def options(parser: argparse.ArgumentParser) -> set[str]:
    return {s for a in parser._actions for s in a.option_strings if s.startswith("--")}


def test_every_subcommand_is_walked():
    names = {" ".join(path) for path, _ in PARSERS}
    assert {"train", "quickstart", "finetune", "sft", "rl", "dpo", "inspect next", "tokenizer train"} <= names


@pytest.mark.parametrize("path,parser", PARSERS, ids=lambda x: " ".join(x) if isinstance(x, tuple) else "")
def test_no_underscore_option_and_help_shows_one_spelling(path, parser):
    assert [o for o in options(parser) if "_" in o] == []
    assert re.findall(r"--[a-z0-9-]*_[a-z0-9_-]*", parser.format_help()) == []  # 包括 train 的设置表


def test_one_concept_one_spelling_across_subcommands():
    used = set().union(*(options(p) for _, p in PARSERS))
    for concept in CONCEPTS:
        assert len(concept & used) <= 1, f"同一个意思两种写法：{sorted(concept & used)}"


def test_step_budget_is_max_steps_everywhere():
    by_name = {" ".join(path): p for path, p in PARSERS}
    for name in ("quickstart", "finetune", "sft", "rl", "dpo"):
        assert "--max-steps" in options(by_name[name]), name
    assert "--max-minutes" in options(by_name["quickstart"]) and "--max-minutes" in options(by_name["finetune"])


def test_old_spellings_become_the_new_ones():
    assert canonical_flags(["train", "--max_steps", "5", "--batch_size=4", "--no_progress"]) == \
        ["train", "--max-steps", "5", "--batch-size=4", "--no-progress"]
    assert canonical_flags(["dpo", "runs/a", "--steps", "3"])[-2:] == ["--max-steps", "3"]
    assert canonical_flags(["quickstart", "--minutes", "1"])[-2:] == ["--max-minutes", "1"]
    assert canonical_flags(["inspect", "next", "r", "x", "--steps", "2"])[-2:] == ["--tokens", "2"]
    assert canonical_flags(["generate", "r", "--", "--not_a_flag"])[-1] == "--not_a_flag"  # `--` 之后原样
    assert canonical_flags(["train", "--data", "my_file.conv"])[-1] == "my_file.conv"  # 值不动


def test_every_hidden_alias_points_at_a_real_option():
    by_name = {path[0]: options(p) for path, p in PARSERS if len(path) == 1}
    by_name["inspect"] = options(dict(PARSERS)[("inspect", "next")])
    for (command, old), new in OLD_NAMES.items():
        assert new in by_name[command] and old not in by_name[command], (command, old)


def test_old_and_new_spellings_parse_to_the_same_arguments():
    parser = build_parser()
    old = parser.parse_args(canonical_flags(["dpo", "runs/a", "--out", "o", "--steps", "3", "--batch_size", "2"]))
    new = parser.parse_args(["dpo", "runs/a", "--out", "o", "--max-steps", "3", "--batch-size", "2"])
    assert vars(old) == vars(new) and new.max_steps == 3


def test_an_old_underscore_training_command_still_runs(tmp_path, capsys):
    """旧笔记里的命令照样能跑：--max_steps / --batch_size / --eval_every 这些写法。"""
    data = tmp_path / "d.conv"
    data.write_text("E\nM 你好\nM 你好呀\nE\nM 在吗\nM 在的\n" * 20, encoding="utf-8")
    out = tmp_path / "run"
    code = main(["train", "--data", str(data), "--out", str(out), "--preset", "tiny", "--max_steps", "2",
                 "--batch_size", "2", "--seq_len", "32", "--eval_every", "1", "--no_progress", "--device", "cpu"])
    assert code == 0 and (out / "last" / "config.json").is_file()
    assert "完成 (done): 2 步" in capsys.readouterr().out
