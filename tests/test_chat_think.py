"""聊天与 generate 走工具调用的路：会调用计算器的模型由程序执行调用；`/think`、`--show-think` 显示草稿与调用；
历史里记的是整个 Reply；普通模型和以前一样。模型是 reasoning_helpers 里背下了几道示范题的极小模型。"""
import io

import pytest

from studygpt.cli.parser import main as cli_main
from studygpt.generation.chat import HELP, ReplyPrinter, chat_loop
from studygpt.generation.generate import GenerationSettings, generate_response
from studygpt.generation.tool_use import greedy_replies, respond, stream_reply
from studygpt.model.checkpoint import load_model
from studygpt.posttrain.scratchpad import carry_scratchpad, demonstration
from studygpt.tokenizer.chat_format import (
    Reply,
    fit_prompt,
    render_conversation,
    render_prompt,
)
from tests.conftest import tiny_model
from tests.reasoning_helpers import (
    THINK_PROBLEMS,
    TOOL_PROBLEMS,
    build_reasoning_run,
    reasoning_dialogues,
)
from tests.test_cli import run

GREEDY = GenerationSettings().updated(temperature=0)
CALL_LINE = "调用 calculator(457+386) → 843"


@pytest.fixture(scope="session")
def reasoning_run(tmp_path_factory):
    return build_reasoning_run(tmp_path_factory.getbasetemp() / "reasoning")


@pytest.fixture(scope="module")
def loaded(reasoning_run):
    model, tokenizer, _ = load_model(reasoning_run, announce=False)
    return model, tokenizer


def chat(model, tokenizer, *lines: str, show_think: bool = False) -> str:
    """在本进程里跑 chat_loop，输入这几行（管道式：不是终端，不加颜色），返回它打印的全部文字。"""
    out = io.StringIO()
    chat_loop(model, tokenizer, GREEDY, stdin=io.StringIO("\n".join(lines) + "\n"), stdout=out, show_think=show_think)
    return out.getvalue()


def test_the_model_really_calls_the_tool_and_streaming_equals_batch_decoding(loaded):
    """respond（聊天与 generate 用的逐词生成）与 greedy_replies（考试用的批量解码）给出同一个 Reply，都与示范相同。"""
    model, tokenizer = loaded
    dialogues = reasoning_dialogues()
    ours = [respond(model, tokenizer, question, settings=GREEDY) for question, _ in dialogues]
    assert ours == [reply for _, reply in dialogues]
    assert ours == greedy_replies(model, tokenizer, [question for question, _ in dialogues])
    assert ours[0].tool_call and ours[0].tool_result == "843" and ours[-1].reasoning


def test_chat_runs_the_calculator_and_think_shows_the_call(reasoning_run):
    """命令行：默认只显示回答；/think 之后先显示调用和结果，再显示回答；再 /think 又隐藏。"""
    question = TOOL_PROBLEMS[0].question
    stdin = "\n".join([question, "/think", question, "/think", question, "exit"]) + "\n"
    result = run("chat", str(reasoning_run), "--temperature", "0", stdin=stdin)
    assert result.returncode == 0, result.stderr
    hidden, shown, hidden_again = result.stdout.split(f"您: {question}\n")[1:]
    assert hidden.splitlines()[0] == "AI: 457加386等于843。" and CALL_LINE not in hidden
    assert "（草稿与工具调用 (reasoning and tool calls)：显示 (shown)）" in hidden
    assert shown.splitlines()[:2] == [CALL_LINE, "AI: 457加386等于843。"]
    assert hidden_again.splitlines()[0] == "AI: 457加386等于843。" and CALL_LINE not in hidden_again


def test_think_shows_the_scratchpad_before_the_answer(loaded):
    model, tokenizer = loaded
    problem = THINK_PROBLEMS[0]
    lines = chat(model, tokenizer, problem.question, show_think=True).splitlines()
    at = lines.index(f"您: {problem.question}")
    assert lines[at + 1:at + 3] == [f"思考：{carry_scratchpad(problem.a, problem.b)}", f"AI: {problem.answer}"]
    hidden = chat(model, tokenizer, problem.question).splitlines()
    assert hidden[hidden.index(f"您: {problem.question}") + 1] == f"AI: {problem.answer}"


def test_history_keeps_the_whole_reply(loaded):
    """/history 里这一轮的词元数是整个 Reply（调用、结果、正文）的渲染长度，不只是正文：下一轮的提示就是这样放进去的。"""
    model, tokenizer = loaded
    problem = TOOL_PROBLEMS[0]
    out = chat(model, tokenizer, problem.question, "/history")
    tokens = len(render_conversation([problem.question, demonstration(problem, "tool")], tokenizer)[0])
    assert f"第 1 轮 [上一句 latest] {tokens} 个词元 · 您: {problem.question} | AI: {problem.answer}" in out
    reply = demonstration(problem, "tool")
    history = [problem.question, reply]
    assert fit_prompt(tokenizer, history, "你好", budget=1000) == render_prompt(history, "你好", tokenizer)
    assert render_prompt(history, "你好", tokenizer)[:tokens] == render_conversation(history, tokenizer)[0]


def test_generate_prints_only_the_answer_unless_show_think(reasoning_run, capsys):
    question = TOOL_PROBLEMS[1].question
    assert cli_main(["generate", str(reasoning_run), question, "--temperature", "0"]) == 0
    assert capsys.readouterr().out == f"{TOOL_PROBLEMS[1].answer}\n"
    assert cli_main(["generate", str(reasoning_run), question, "--temperature", "0", "--show-think"]) == 0
    assert capsys.readouterr().out == f"调用 calculator(128+256) → 384\n{TOOL_PROBLEMS[1].answer}\n"


def test_printer_dims_the_think_lines_only_in_a_terminal():
    pieces = [("reasoning", "个位"), ("reasoning", "7+6"), ("tool_call", '{"name":"calculator","arguments":'),
              ("tool_call", '{"expression":"1+2"}}'), ("tool_result", "3"), ("content", "等于"), ("content", "3。")]
    out = io.StringIO()
    reply = ReplyPrinter(out, show_think=True, dim=True, prefix="AI: ").print_reply(pieces)
    assert out.getvalue() == ("\033[2m思考：个位7+6\033[0m\n\033[2m调用 calculator(1+2) → 3\033[0m\nAI: 等于3。\n")
    assert reply == Reply("等于3。", "个位7+6", '{"name":"calculator","arguments":{"expression":"1+2"}}', "3")
    out = io.StringIO()
    ReplyPrinter(out, show_think=False, prefix="AI: ").print_reply(pieces[:5])  # 没有正文：也有 "AI: " 这一行，并说明是空的
    assert out.getvalue() == "AI: （空回答 (empty reply)）\n"


def test_plain_model_is_unchanged_and_think_says_it_has_nothing_to_show(tokenizer):
    model = tiny_model(tokenizer.vocab_size, max_len=64)
    settings = GenerationSettings().updated(temperature=0.8, seed=3, max_length=20)
    history = ["你好", "你好！很高兴见到你。"]
    pieces = list(stream_reply(model, tokenizer, "你是谁？", history, settings))
    assert {part for part, _ in pieces} <= {"content"}
    assert "".join(t for _, t in pieces) == generate_response(model, tokenizer, "你是谁？", settings=settings,
                                                              history=history)
    out = chat(model, tokenizer, "/think", "/help")
    assert "词表里没有 <think>、<tool_call>" in out and "/think" in HELP and HELP in out
