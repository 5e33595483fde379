"""体检 `studygpt doctor`：在假的机器上（monkeypatch）看每种毛病都变成一行 ✓/⚠/✗ 加一行修法，退出码对；
再在这台真机器上跑一遍命令行。"""
from __future__ import annotations

import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from studygpt import doctor, hardware
from studygpt.cli.parser import main
from studygpt.plotting import FONT_INSTALL_COMMAND

ROOT = Path(__file__).resolve().parents[1]
GB = 1024 ** 3


@pytest.fixture
def healthy(monkeypatch):
    """一台健康的假机器：没有 GPU、没有 bf16 指令（不计时）、内存与磁盘充足、有中文字体、包都装了。测试再改其中一样。"""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    monkeypatch.setattr(hardware, "cpu_has_bf16_instructions", lambda: False)
    monkeypatch.setattr(doctor, "fewer_threads_if_faster", lambda: None)
    monkeypatch.setattr(doctor, "available_ram", lambda: 8 * GB)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: SimpleNamespace(total=100 * GB, used=50 * GB, free=50 * GB))
    monkeypatch.setattr(doctor, "setup_cjk_font", lambda: "WenQuanYi Micro Hei")
    monkeypatch.setattr(doctor, "project_requirements", lambda: {"": ["torch", "numpy"], "export": ["gguf"]})
    monkeypatch.setattr(doctor, "installed_version", lambda dist: "1.0")
    return monkeypatch


def run(capsys) -> tuple[int, list[str]]:
    code = doctor.run_doctor()
    return code, capsys.readouterr().out.splitlines()


def line_after(lines: list[str], start: str) -> tuple[str, str]:
    """以 start 开头的那一行和它的下一行（修法）。"""
    i = next(i for i, line in enumerate(lines) if line.startswith(start))
    return lines[i], lines[i + 1] if i + 1 < len(lines) else ""


def test_minimum_versions_match_pyproject():
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    python = re.search(r'requires-python\s*=\s*">=([\d.]+)"', text).group(1)
    torch_min = re.search(r'"torch>=([\d.]+)"', text).group(1)
    assert doctor.MIN_PYTHON == doctor.version_tuple(python) and doctor.MIN_TORCH == doctor.version_tuple(torch_min)


def test_healthy_machine_exits_0_and_says_so(healthy, capsys):
    code, lines = run(capsys)
    assert code == 0 and lines[-1].startswith("结论 (verdict)：快速上手可以运行")
    assert not any(line.startswith(doctor.FAIL) for line in lines)


def test_no_cjk_font_is_a_warning_with_the_install_fix(healthy, capsys):
    healthy.setattr(doctor, "setup_cjk_font", lambda: None)
    code, lines = run(capsys)
    check, fix = line_after(lines, "⚠ 中文字体 (CJK font)")
    assert "方框" in check and fix == f"    修复 (fix)：{FONT_INSTALL_COMMAND}"
    assert code == 0


def test_no_bf16_means_fp32_with_the_reason_training_gives(healthy, capsys):
    code, lines = run(capsys)
    check, _ = line_after(lines, "✓ 精度 (precision)")
    reason = hardware.choose_precision(torch.device("cpu")).reason  # 训练开始时打印的同一句理由
    assert "fp32" in check and reason in check and "AVX512_BF16" in reason


def test_low_disk_fails_with_a_fix_and_exit_1(healthy, capsys):
    healthy.setattr(shutil, "disk_usage", lambda path: SimpleNamespace(total=100 * GB, used=100 * GB, free=50 * 1024 ** 2))
    code, lines = run(capsys)
    check, fix = line_after(lines, "✗ 磁盘 (disk)")
    assert "50 MB" in check and fix.startswith("    修复 (fix)：腾出磁盘空间")
    assert code == 1 and "跑不起来" in lines[-1]


def test_low_ram_fails_and_little_ram_warns(healthy, capsys):
    healthy.setattr(doctor, "available_ram", lambda: GB // 4)
    assert doctor.check_ram().mark == doctor.FAIL
    healthy.setattr(doctor, "available_ram", lambda: GB)
    assert doctor.check_ram().mark == doctor.WARN
    healthy.setattr(doctor, "available_ram", lambda: None)  # 读不到：提醒，不判失败
    code, lines = run(capsys)
    assert code == 0 and line_after(lines, "⚠ 内存 (RAM)")[1].startswith("    修复 (fix)：")


def test_no_gpu_is_fine(healthy, capsys):
    code, lines = run(capsys)
    assert code == 0 and lines[-2].startswith("✓ GPU：没有")


def test_a_gpu_is_named_with_its_bf16_support(healthy):
    healthy.setattr(torch.cuda, "is_available", lambda: True)
    healthy.setattr(torch.cuda, "get_device_properties", lambda i: SimpleNamespace(name="Fake GPU", total_memory=16 * GB))
    healthy.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    healthy.setattr(torch.cuda, "device_count", lambda: 1)
    check = doctor.check_gpu()
    assert check.mark == doctor.OK and "Fake GPU" in check.detail and "16.0 GB" in check.detail and "不支持 bf16" in check.detail
    assert "fp16" in doctor.check_precision().detail  # 同一台假机器上，训练会选 fp16 + GradScaler


def test_missing_extra_is_a_warning_with_its_pip_command(healthy, capsys):
    healthy.setattr(doctor, "installed_version", lambda dist: None if dist == "gguf" else "1.0")
    code, lines = run(capsys)
    check, fix = line_after(lines, "⚠ 可选组件 [export]")
    assert "gguf" in check and fix == '    修复 (fix)：pip install -e ".[export]"' and code == 0


def test_missing_required_package_fails_unless_only_serve_needs_it(healthy, capsys):
    healthy.setattr(doctor, "installed_version", lambda dist: None if dist == "numpy" else "1.0")
    code, lines = run(capsys)
    check, fix = line_after(lines, "✗ 依赖 (dependencies)")
    assert "numpy" in check and "pip install -e ." in fix and code == 1
    healthy.setattr(doctor, "project_requirements", lambda: {"": ["torch", "fastapi"]})
    healthy.setattr(doctor, "installed_version", lambda dist: None if dist == "fastapi" else "1.0")
    code, lines = run(capsys)
    assert code == 0 and "studygpt serve" in line_after(lines, "⚠ 依赖 (dependencies)")[0]


def test_a_probe_that_crashes_is_one_warning_line_not_a_traceback(healthy, capsys):
    def broken():
        raise RuntimeError("读不到\n两行的错误")
    healthy.setattr(doctor, "PROBES", [("CPU", broken), ("GPU", doctor.check_gpu)])
    code, lines = run(capsys)
    assert code == 0 and lines[1] == "⚠ CPU：这一项查不了 (RuntimeError: 读不到 两行的错误)"
    assert lines[3].startswith("✓ GPU")


def test_the_real_command_exits_0_here_and_prints_every_check(capsys):
    code = main(["doctor"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Traceback" not in out
    for name, _ in doctor.PROBES:
        assert re.search(rf"^[✓⚠✗] {re.escape(name)}", out, re.M), name
    assert "结论 (verdict)" in out
