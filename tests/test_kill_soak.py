"""kill -9 耐力测试的短版本（slow）：3 次 SIGKILL（优化步中、验证中、保存中各一次），续训后权重一位不差。

完整的 20 次见 `python benchmarks/kill_soak.py`，数字在 docs/reliability.md。
"""
import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "kill_soak.py"


@pytest.mark.slow
def test_three_kills_resume_to_bit_identical_weights(tmp_path):
    spec = importlib.util.spec_from_file_location("kill_soak", SCRIPT)
    kill_soak = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(kill_soak)
    figures = kill_soak.soak(tmp_path, kills=3, steps=60, seed=1, log=lambda s: None)
    assert sum(figures["phases"].values()) == 3  # 目标轮流是优化步、验证、保存；实际所处阶段见 figures
    assert figures["load_failures"] == 0 and figures["leftover_tmp_dirs"] == 0
    assert figures["bit_identical"], figures
