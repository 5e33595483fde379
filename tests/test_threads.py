"""CPU 线程数：别的程序占着 CPU 时，少用几个线程反而更快（hardware.fewer_threads_if_faster）。

机器忙不忙测试控制不了，所以把"实测的速度"换成假的：一种是空闲（线程越多越快），一种是另一个核被占（1 个线程最快）。
"""
import pytest
import torch

from studygpt import hardware
from studygpt.cli.parser import main


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def fake_speeds(monkeypatch, speeds: dict[int, float]) -> None:
    """small_step_rate 按当前线程数返回给定的每秒次数。"""
    monkeypatch.setattr(hardware, "small_step_rate", lambda *a, **k: speeds[torch.get_num_threads()])


def test_idle_machine_keeps_every_thread(two_threads, monkeypatch):
    fake_speeds(monkeypatch, {2: 110.0, 1: 60.0})
    assert hardware.fewer_threads_if_faster() is None
    assert torch.get_num_threads() == 2


def test_busy_machine_finds_that_one_thread_is_faster_and_says_why(two_threads, monkeypatch):
    fake_speeds(monkeypatch, {2: 15.0, 1: 58.0})
    faster = hardware.fewer_threads_if_faster()
    assert faster.threads == 1 and "58" in faster.reason and "15" in faster.reason
    assert torch.get_num_threads() == 2  # 量完恢复原来的线程数


def test_training_only_advises_but_the_time_budgeted_quickstart_switches(two_threads, monkeypatch):
    fake_speeds(monkeypatch, {2: 15.0, 1: 58.0})
    lines = []
    assert hardware.set_threads(None, lines.append) is None
    assert torch.get_num_threads() == 2 and "--threads 1" in lines[-1]
    assert hardware.set_threads(None, lines.append, auto=True) == 1  # 返回它：记进运行设置，续训沿用同样的线程数
    assert torch.get_num_threads() == 1


def test_explicit_threads_are_used_without_measuring(two_threads, monkeypatch):
    monkeypatch.setattr(hardware, "small_step_rate", lambda *a, **k: pytest.fail("给了 --threads 就不用实测"))
    lines = []
    assert hardware.set_threads(1, lines.append) == 1
    assert torch.get_num_threads() == 1 and "--threads" in lines[-1]


def test_resume_with_threads_is_one_line(capsys):
    assert main(["train", "--resume", "runs/none", "--threads", "1"]) == 2
    assert "--threads" in capsys.readouterr().err
