"""`studygpt` 各子命令的实现：解析好的参数 → 调用库函数 → 打印结果。"""
from __future__ import annotations

import sys
from pathlib import Path

from studygpt.errors import StudyGPTError


def sampling_settings(args) -> dict:
    return {"temperature": args.temperature, "top_k": args.top_k, "top_p": args.top_p,
            "repetition_penalty": args.repetition_penalty, "max_length": args.max_length, "seed": args.seed}


def cmd_train(args, overrides: dict) -> int:
    from studygpt.run import RunSpec, resume_from, split_overrides, train_from_spec
    if args.resume:
        if overrides or args.data:
            raise StudyGPTError("--resume 会沿用当时的全部设置；请不要同时给 --data 或其他设置。")
        trainer, summary = resume_from(args.resume, progress=args.progress)
    else:
        if not args.data or not args.out:
            raise StudyGPTError("训练需要 --data 语料文件和 --out 输出目录，例如："
                                "studygpt train --data my.conv --out runs/my --preset tiny")
        model, train, other = split_overrides(overrides)
        spec = RunSpec(data=args.data, out=args.out, preset=args.preset, val=args.val, model=model, train=train,
                       device=args.device, **other)
        trainer, summary = train_from_spec(spec, progress=args.progress)
    from studygpt.distributed import cleanup
    cleanup()
    if not trainer.dist.is_main:
        return 0
    val = summary["val"]
    val_text = f" · 验证 loss {val['loss']:.3f} · bpc {val['bpc']:.3f}" if val else ""
    print(f"完成 (done): {summary['steps']} 步, {summary['elapsed_s']:.0f} 秒, "
          f"{summary['tokens_per_s']:,.0f} tokens/s{val_text}")
    best = summary.get("best")
    best_text = f"{trainer.out_dir}/best（第 {best['step']} 步，验证损失 {best['val_loss']:.3f}）· " if best else ""
    print(f"检查点 (checkpoints): {best_text}{trainer.out_dir}/last  ·  聊天（默认用 best）：studygpt chat {trainer.out_dir}")
    return 0


def load_for_inference(run: str, device: str | None, compile_for=None, announce: bool | None = None):
    """加载检查点。compile_for 是一个 SamplingConfig 时，按这套采样设置先编译好逐词解码（--compile）。
    announce：在 stderr 上说加载了哪个检查点（见 checkpoint.load_model）。"""
    from studygpt.checkpoint import load_model
    from studygpt.hardware import pick_device
    model, tokenizer, _ = load_model(run, pick_device(device), announce=announce)
    if compile_for is not None:
        from studygpt.fast_decode import compile_decoding
        print("编译逐词解码 (compiling the decode step)：第一次要十几秒到一分钟……", file=sys.stderr)
        compile_decoding(model, compile_for)
    return model, tokenizer


def compile_settings(args):
    """--compile 时返回命令行给的采样设置（编译要按它来），否则 None。"""
    from studygpt.generate import SamplingConfig
    if not args.compile:
        return None
    return SamplingConfig(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                          repetition_penalty=args.repetition_penalty)


def cmd_chat(args, overrides: dict) -> int:
    from studygpt.chat import chat_loop
    model, tokenizer = load_for_inference(args.run, args.device, compile_settings(args), announce=True)
    chat_loop(model, tokenizer, sampling_settings(args))
    return 0


def cmd_generate(args, overrides: dict) -> int:
    from studygpt.generate import stream_response
    model, tokenizer = load_for_inference(args.run, args.device, compile_settings(args), announce=True)
    for piece in stream_response(model, tokenizer, args.text, **sampling_settings(args)):
        print(piece, end="", flush=True)
    print()
    return 0


def tokenizer_for(vocab: str | None, texts: list[str]):
    """--vocab 给的词表（vocab.txt 或训练目录）；不给时用这些文字现建一个。"""
    from studygpt.tokenizer import Tokenizer
    if not vocab:
        return Tokenizer().build_vocab(texts)
    path = Path(vocab)
    if path.is_dir():
        from studygpt.checkpoint import resolve_checkpoint
        path = resolve_checkpoint(path) / "vocab.txt"
    return Tokenizer().load_vocab(path)


def cmd_tokenize(args, overrides: dict) -> int:
    from studygpt.inspect_tools import inspect_tokens
    tokenizer = tokenizer_for(args.vocab, args.texts)
    print(inspect_tokens(args.texts, tokenizer, color=sys.stdout.isatty(), with_mask=args.show_mask))
    return 0


def cmd_quickstart(args, overrides: dict) -> int:
    from studygpt.quickstart import run_quickstart
    run_quickstart(out=args.out, minutes=args.minutes, preset=args.preset, seed=args.seed, max_steps=args.max_steps,
                   device=args.device, chat=args.chat, progress=args.progress)
    return 0


def cmd_data(args, overrides: dict) -> int:
    from studygpt.download import download
    paths = download(args.name, args.out, args.url, args.progress)
    for path in paths:
        print(f"已解压 (extracted): {path} ({path.stat().st_size / 1e6:.1f} MB)")
    print("下一步 (next)：在 GPU 上训练原项目大小的模型，例如\n"
          f"  studygpt train --data {paths[0]} --out runs/xiaohuangji --preset study --max_minutes 60")
    return 0


def cmd_eval(args, overrides: dict) -> int:
    import json
    from studygpt.checkpoint import describe_checkpoint, resolve_checkpoint
    from studygpt.data import read_dialogues
    from studygpt.evaluate import evaluate_model, format_table
    from studygpt.generate import SamplingConfig
    if len(set(args.runs)) != len(args.runs):
        raise StudyGPTError("同一个 RUN 给了两次；比较时请给两个不同的训练目录或检查点。")
    models = {run: load_for_inference(run, args.device, announce=False) for run in args.runs}  # 先加载：路径错了立刻报错
    dialogues, report = read_dialogues(args.data)
    print(report.summary())
    for run in args.runs:  # 数据也读好了再说用的是哪个检查点：出错时只有一行错误
        print(describe_checkpoint(resolve_checkpoint(run)), file=sys.stderr)
    sampling = SamplingConfig(temperature=args.temperature, top_k=args.top_k)
    results = {}
    for run, (model, tokenizer) in models.items():
        print(f"评估 (evaluating) {run} …", flush=True)
        results[run] = {"run": run, "data": args.data, **evaluate_model(
            model, tokenizer, dialogues, seeds=args.seeds, max_new_tokens=args.max_length, sampling=sampling,
            batch_size=args.batch_size)}
    print(format_table(results))
    if args.out:  # 一个文件：一个 RUN 时就是它的结果，多个时按 RUN 分开
        outputs = {Path(args.out): results[args.runs[0]] if len(results) == 1 else {"runs": results}}
    else:
        outputs = {Path(run) / "eval.json": result for run, result in results.items()}
    for path, content in outputs.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content, indent=2, ensure_ascii=False), encoding="utf-8")
    print(f"完整结果与每条回答 (full results and replies): {', '.join(map(str, outputs))}")
    return 0


def cmd_serve(args, overrides: dict) -> int:
    from studygpt.checkpoint import CHECKPOINT_NAMES
    from studygpt.generate import SamplingConfig
    from studygpt.serve import ServeSettings, run_server
    settings = ServeSettings(max_tokens_cap=args.max_tokens_cap, api_key=args.api_key)  # 先校验设置，再加载模型
    model, tokenizer = load_for_inference(args.run, args.device, SamplingConfig() if args.compile else None,
                                          announce=True)
    run = Path(args.run).resolve()
    settings.model_id = run.parent.name if run.name in CHECKPOINT_NAMES else run.name  # runs/NAME/best → NAME
    run_server(model, tokenizer, settings, host=args.host, port=args.port)
    return 0


def cmd_info(args, overrides: dict) -> int:
    if args.run:
        model, _ = load_for_inference(args.run, "cpu")
    else:
        from studygpt.model import DialogueModel, ModelConfig
        from studygpt.presets import get_preset
        model = DialogueModel(config=ModelConfig(vocab_size=args.vocab_size, **get_preset(args.preset)["model"]))
    c = model.config
    print(f"模型 (model): d_model={c.d_model} n_head={c.n_head} n_layers={c.n_layers} max_len={c.max_len} "
          f"vocab_size={c.vocab_size} ffn_hidden={c.ffn_hidden}")
    for name, n in model.param_breakdown():
        print(f"  {name:<40} {n:>12,}  ({n / model.num_params():6.1%})")
    return 0


def cmd_inspect(args, overrides: dict) -> int:
    from studygpt import inspect_tools
    from studygpt.plotting import INSTALL_HINT
    if args.inspect_command == "tokens":
        print(inspect_tools.inspect_tokens(args.texts, tokenizer_for(args.vocab, args.texts), sys.stdout.isatty()))
    elif args.inspect_command == "next":
        model, tokenizer = load_for_inference(args.run, "cpu")
        print(inspect_tools.inspect_next(model, tokenizer, args.text, args.steps, args.top))
    elif args.inspect_command == "attention":
        model, tokenizer = load_for_inference(args.run, "cpu")
        out = args.out or Path(args.run) / "attention"
        paths, font = inspect_tools.attention_maps(model, tokenizer, args.text, out, args.reply_tokens)
        if font is None:
            print(INSTALL_HINT)
        for path in paths:
            print(f"已保存 (saved): {path}")
    else:
        print_params(args)
    return 0


def print_params(args) -> None:
    """`inspect params`：模型设置与每步词元数来自检查点的 config.json，或来自预设。"""
    from studygpt.inspect_tools import inspect_params
    from studygpt.model import ModelConfig
    if args.run:
        from studygpt.checkpoint import read_meta, resolve_checkpoint
        meta = read_meta(resolve_checkpoint(args.run))
        config, train = ModelConfig.from_dict(meta["model"]), meta.get("train", {})
    else:
        from studygpt.presets import get_preset
        preset = get_preset(args.preset)
        config, train = ModelConfig(vocab_size=args.vocab_size, **preset["model"]), preset["train"]
    print(inspect_params(config, train.get("batch_size", 16), train.get("seq_len", config.max_len),
                         train.get("grad_accum_steps", 1)))
