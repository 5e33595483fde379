"""`studygpt` 各子命令的实现：解析好的参数 → 调用库函数 → 打印结果。"""
from __future__ import annotations

import sys
from pathlib import Path

from studygpt.errors import StudyGPTError


def generation_settings(args):
    """命令行的采样参数（cli.add_sampling_args）→ GenerationSettings；eval 没有 --seed（它用 --seeds）。"""
    from studygpt.generation.generate import GenerationSettings, SamplingConfig
    sampling = SamplingConfig(args.temperature, args.top_k, args.top_p, args.repetition_penalty)
    return GenerationSettings(sampling, args.max_length, getattr(args, "seed", None))


def cmd_train(args, overrides: dict) -> int:
    from studygpt.recipes.train import (
        RunSpec,
        resume_from,
        split_overrides,
        train_from_spec,
    )
    if args.resume:
        if overrides or args.data or args.threads:
            raise StudyGPTError("--resume 会沿用当时的全部设置（包括线程数）；请不要同时给 --data、--threads 或其他设置。")
        trainer, summary = resume_from(args.resume, progress=args.progress)
    else:
        if not args.data or not args.out:
            raise StudyGPTError("训练需要 --data 语料文件和 --out 输出目录，例如："
                                "studygpt train --data my.conv --out runs/my --preset tiny")
        model, train, other = split_overrides(overrides)
        spec = RunSpec(data=args.data, out=args.out, preset=args.preset, val=args.val, model=model, train=train,
                       device=args.device, tokenizer=args.tokenizer, threads=args.threads, **other)
        trainer, summary = train_from_spec(spec, progress=args.progress)
    from studygpt.training.distributed import cleanup
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


def load_run(args, settings=None):
    """chat / generate / serve：加载 args.run；--compile 时按这套生成设置的采样先编译好逐词解码。"""
    from studygpt.generation.generate import GenerationSettings
    from studygpt.generation.inference import load_for_inference
    sampling = (settings or GenerationSettings()).sampling if args.compile else None
    return load_for_inference(args.run, args.device, sampling, announce=True)  # 说清用的是哪个检查点


def cmd_chat(args, overrides: dict) -> int:
    from studygpt.generation.chat import chat_loop
    settings = generation_settings(args)
    model, tokenizer = load_run(args, settings)
    if model.tok_embeddings.weight.device.type == "cpu":
        fewer_threads_for_chat()
    chat_loop(model, tokenizer, settings, show_think=args.show_think)
    return 0


def fewer_threads_for_chat() -> None:
    """聊天是交互的：别的程序占着 CPU、少用线程更快时直接改用（逐词解码时多线程被拖慢得最厉害），并在 stderr 说一句。"""
    from studygpt.hardware import use_fewer_threads_if_faster
    if (faster := use_fewer_threads_if_faster()) is not None:
        print(f"线程 (threads): {faster.reason}；聊天改用 {faster.threads} 个线程", file=sys.stderr)


def cmd_generate(args, overrides: dict) -> int:
    from studygpt.generation.chat import ReplyPrinter
    from studygpt.generation.tool_use import stream_reply
    settings = generation_settings(args)
    model, tokenizer = load_run(args, settings)
    # 和聊天同一条路：会调用计算器的模型照样调用；默认只打印回答，--show-think 时先打印草稿和调用
    printer = ReplyPrinter(sys.stdout, args.show_think, dim=sys.stdout.isatty())
    printer.print_reply(stream_reply(model, tokenizer, args.text, settings=settings))
    return 0


def tokenizer_for(vocab: str | None, texts: list[str]):
    """--vocab 给的分词器（vocab.txt、tokenizer.json、分词器目录或训练目录）；不给时用这些文字现建一个字符级词表。"""
    from studygpt.tokenizer.char import Tokenizer
    from studygpt.tokenizer.load import load_tokenizer
    if not vocab:
        return Tokenizer().build_vocab(texts)
    path = Path(vocab)
    if path.is_dir() and not any((path / name).is_file() for name in ("vocab.txt", "tokenizer.json")):
        from studygpt.model.checkpoint import resolve_checkpoint
        path = resolve_checkpoint(path)  # 训练目录：用它的 best/ 或 last/ 里的分词器
    return load_tokenizer(path)


def cmd_tokens(args, overrides: dict) -> int:
    """`inspect tokens`（别名 `tokenize`）。"""
    from studygpt.inspection.tokens import inspect_tokens
    tokenizer = tokenizer_for(args.vocab, args.texts)
    print(inspect_tokens(args.texts, tokenizer, color=sys.stdout.isatty(), with_mask=args.show_mask))
    return 0


def cmd_quickstart(args, overrides: dict) -> int:
    from studygpt.recipes.quickstart import run_quickstart
    run_quickstart(out=args.out, minutes=args.max_minutes, preset=args.preset, seed=args.seed, max_steps=args.max_steps,
                   device=args.device, chat=args.chat, progress=args.progress, tokenizer=args.tokenizer,
                   threads=args.threads)
    return 0


def cmd_doctor(args, overrides: dict) -> int:
    from studygpt.doctor import run_doctor
    return run_doctor()


def cmd_lab(args, overrides: dict) -> int:
    from studygpt.labs.run import list_labs, run_lab
    if args.name is None:
        list_labs()
        return 0
    run_lab(args.name, predict=args.predict, seed=args.seed, max_steps=args.max_steps, out=args.out,
            progress=args.progress, threads=args.threads)
    return 0


def cmd_tokenizer_train(args, overrides: dict) -> int:
    from studygpt.tokenizer.lab import run_tokenizer_train
    run_tokenizer_train(args.data, args.type, args.vocab_size, args.out)
    return 0


def cmd_finetune(args, overrides: dict) -> int:
    from studygpt.recipes.finetune import finetune
    finetune(args.run, args.out, data=args.data, example=args.example, rank=args.lora_rank, alpha=args.lora_alpha,
             dropout=args.lora_dropout, merge=args.merge, minutes=args.max_minutes, max_steps=args.max_steps, lr=args.lr,
             seed=args.seed, device=args.device, progress=args.progress)
    return 0


def cmd_course(args, overrides: dict) -> int:
    """`studygpt course`：各章练习的进度（studygpt/course.py）；在仓库根目录运行。"""
    from studygpt.course import course_status, format_course
    chapters = course_status(Path.cwd(), Path(args.exercises) if args.exercises else None, args.chapter,
                             announce=lambda message: print(message, file=sys.stderr, flush=True))
    print(format_course(chapters))
    return 0


def cmd_data(args, overrides: dict) -> int:
    from studygpt.corpus.download import download
    paths = download(args.name, args.out, args.url, args.progress)
    for path in paths:
        print(f"已解压 (extracted): {path} ({path.stat().st_size / 1e6:.1f} MB)")
    print("下一步 (next)：在 GPU 上训练 study 预设大小的模型，例如\n"
          f"  studygpt train --data {paths[0]} --out runs/xiaohuangji --preset study --max-minutes 60")
    return 0


def cmd_eval(args, overrides: dict) -> int:
    import json

    from studygpt.corpus.read import read_dialogues
    from studygpt.evaluation.metrics import evaluate_model, format_table
    from studygpt.generation.inference import load_for_inference
    from studygpt.model.checkpoint import describe_checkpoint, resolve_checkpoint
    if len(set(args.runs)) != len(args.runs):
        raise StudyGPTError("同一个 RUN 给了两次；比较时请给两个不同的训练目录或检查点。")
    if args.train_data and not args.references:
        raise StudyGPTError("--train-data 只给 --references 的基线用；请加上 --references，或去掉 --train-data。")
    settings = generation_settings(args)
    models = {run: load_for_inference(run, args.device, announce=False) for run in args.runs}  # 先加载：路径错了立刻报错
    dialogues, report = read_dialogues(args.data)
    print(report.summary())
    train = baseline_training_data(args) if args.references else None  # 训练语料也先读：出错时只有一行错误
    for run in args.runs:  # 数据也读好了再说用的是哪个检查点：出错时只有一行错误
        print(describe_checkpoint(resolve_checkpoint(run)), file=sys.stderr)
    results = {}
    for run, (model, tokenizer) in models.items():
        print(f"评估 (evaluating) {run} …", flush=True)
        results[run] = {"run": run, "data": args.data, **evaluate_model(
            model, tokenizer, dialogues, seeds=args.seeds, max_new_tokens=settings.max_length,
            sampling=settings.sampling, batch_size=args.batch_size)}
    print(format_table(results))
    if train is not None:
        compare_with_references(args, models, dialogues, train, results)
    if args.out:  # 一个文件：一个 RUN 时就是它的结果，多个时按 RUN 分开
        outputs = {Path(args.out): results[args.runs[0]] if len(results) == 1 else {"runs": results}}
    else:
        outputs = {Path(run) / "eval.json": result for run, result in results.items()}
    for path, content in outputs.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content, indent=2, ensure_ascii=False), encoding="utf-8")
    print(f"完整结果与每条回答 (full results and replies): {', '.join(map(str, outputs))}")
    return 0


def baseline_training_data(args) -> tuple[list, list[str]]:
    """`eval --references` 的基线用哪份训练语料 → (对话列表, 文件名列表)。

    给了 --train-data 就读这些文件（全部对话）；否则读 RUN 训练时的文件（检查点 config.json 里的 run.data），
    并像训练时一样留出验证集（recipes.train.load_corpus），基线只看模型也看过的对话。
    """
    from studygpt.corpus.read import read_dialogues
    from studygpt.model.checkpoint import read_meta, resolve_checkpoint
    from studygpt.recipes.train import RunSpec, load_corpus
    if args.train_data:
        dialogues = []
        for path in args.train_data:
            part, report = read_dialogues(path)
            print(report.summary())
            dialogues += part
        return dialogues, list(args.train_data)
    specs = []
    for run in args.runs:
        run_info = read_meta(resolve_checkpoint(run)).get("run")
        try:
            spec = RunSpec(**run_info)
        except TypeError:  # 没有 run（不是 `studygpt train` 存的），或字段对不上
            raise StudyGPTError(f"{run}: 检查点里没有可用的训练设置 (run)，不知道它用哪些训练文件；"
                                "请用 --train-data FILE 给出基线用的训练语料。") from None
        from studygpt.recipes.quickstart import BUILTIN_DATA, quickstart_data
        if spec.data == [BUILTIN_DATA]:  # 快速上手：内置语料，按同一个种子留出、串链（与训练时一样）
            return quickstart_data(spec.train.get("seed", 0), spec.preset).train, [BUILTIN_DATA]
        missing = [path for path in spec.data + ([spec.val] if spec.val else []) if not Path(path).exists()]
        if missing:
            raise StudyGPTError(f"{run}: 训练时用的 {missing[0]} 在这里找不到（路径是相对训练时的目录）；"
                                "请用 --train-data FILE 给出基线用的训练语料。")
        specs.append(spec)
    if any((s.data, s.val, s.val_fraction) != (specs[0].data, specs[0].val, specs[0].val_fraction) for s in specs):
        raise StudyGPTError("这几个 RUN 的训练语料不同，基线只能用一份：请用 --train-data FILE 指定。")
    train, _ = load_corpus(specs[0], print)
    return train, list(specs[0].data)


def compare_with_references(args, models: dict, dialogues: list, train: tuple[list, list[str]], results: dict) -> None:
    """`eval --references`：模型与两个基线对留出的 (上下文, 参考回答) 各写一句回答，打印第二张表，结果记进 results。"""
    import time
    from dataclasses import asdict

    from studygpt.evaluation.metrics import format_table
    from studygpt.evaluation.references import (
        REFERENCE_ROWS,
        REFERENCE_SETTINGS,
        baseline_replies,
        model_replies,
        reference_pairs,
        reference_report,
        training_pairs,
    )
    train_dialogues, train_files = train
    pairs = reference_pairs(dialogues)
    started = time.perf_counter()
    baselines = baseline_replies(training_pairs(train_dialogues), pairs)
    print(f"基线 (baselines): {len(train_dialogues):,} 段训练对话，{len(pairs):,} 个上下文，"
          f"用时 {time.perf_counter() - started:.1f} 秒", flush=True)
    seed = args.seeds[0]
    columns = {}
    for run, (model, tokenizer) in models.items():
        print(f"对参考上下文写回答 (replying to held-out contexts) {run} …", flush=True)
        report = reference_report(pairs, {"model": model_replies(model, tokenizer, pairs, seed), **baselines})
        results[run]["references"] = {"train_data": train_files, "seed": seed,
                                      "sampling": {**asdict(REFERENCE_SETTINGS.sampling),
                                                   "max_new_tokens": REFERENCE_SETTINGS.max_length}, **report}
        columns[run] = report["metrics"]["model"]
    columns["基线 最常见回答 (most frequent)"] = report["metrics"]["most_frequent"]
    columns["基线 检索 (retrieval)"] = report["metrics"]["retrieval"]
    print(f"\n与参考回答比 (reference metrics, ×100)：{len(pairs):,} 对，p=0.9、temperature 0.7、种子 {seed}")
    print(format_table(columns, REFERENCE_ROWS))


def cmd_serve(args, overrides: dict) -> int:
    from studygpt.model.checkpoint import CHECKPOINT_NAMES
    from studygpt.serve.app import ServeSettings, run_server
    settings = ServeSettings(max_tokens_cap=args.max_tokens_cap, api_key=args.api_key, max_batch=args.max_batch)  # 先校验设置，再加载模型
    if args.compile:  # 服务器一批一起解码 (serve/batcher.py)，用不上批大小 1 的编译内核：不花时间编译它
        print("注意 (note)：serve 不用 --compile（一批一起解码走普通的模型代码），已跳过编译。")
        args.compile = False
    model, tokenizer = load_run(args)
    run = Path(args.run).resolve()
    settings.model_id = run.parent.name if run.name in CHECKPOINT_NAMES else run.name  # runs/NAME/best → NAME
    run_server(model, tokenizer, settings, host=args.host, port=args.port)
    return 0


def cmd_next(args, overrides: dict) -> int:
    from studygpt.generation.inference import load_for_inference
    from studygpt.inspection.next_token import inspect_next
    model, tokenizer = load_for_inference(args.run, "cpu")
    print(inspect_next(model, tokenizer, args.text, args.tokens, args.top))
    return 0


def cmd_attention(args, overrides: dict) -> int:
    from studygpt.generation.inference import load_for_inference
    from studygpt.inspection.attention import attention_maps
    model, tokenizer = load_for_inference(args.run, "cpu")
    out = args.out or Path(args.run) / "attention"
    paths, _ = attention_maps(model, tokenizer, args.text, out, args.reply_tokens)  # 没有中文字体时已提示过一次
    for path in paths:
        print(f"已保存 (saved): {path}")
    return 0


def cmd_params(args, overrides: dict) -> int:
    """`inspect params`（别名 `info`）：模型设置与每步词元数来自检查点的 config.json，或来自预设。"""
    from studygpt.inspection.params import inspect_params
    from studygpt.model.transformer import ModelConfig
    from studygpt.training.optim import TrainConfig
    if args.run:
        from studygpt.model.checkpoint import read_meta, resolve_checkpoint
        meta = read_meta(resolve_checkpoint(args.run))
        config, train = ModelConfig.from_dict(meta["model"]), meta.get("train", {})
    else:
        from studygpt.recipes.presets import get_preset
        preset = get_preset(args.preset)
        config, train = ModelConfig(vocab_size=args.vocab_size, **preset["model"]), preset["train"]
    t = TrainConfig.from_dict({"seq_len": config.max_len, **train})
    print(inspect_params(config, t.batch_size, t.seq_len, t.grad_accum_steps))
    return 0


def cmd_export(args, overrides: dict) -> int:
    from studygpt.export.convert import describe_export, export_run
    out = export_run(args.run, args.to, args.out, args.dtype, args.force)
    print(describe_export(out, args.to))
    return 0


def cmd_posttrain(args, overrides: dict) -> int:
    """`studygpt sft | rl | dpo`：见 recipes/posttrain.py。"""
    from studygpt.posttrain.rl import RLConfig
    from studygpt.recipes.posttrain import run_dpo, run_rl, run_sft
    if args.max_steps is None:
        args.max_steps = 10**9 if args.max_minutes else args.default_steps
    if args.command == "sft":
        run_sft(args.run, args.out, args.task, args.problems, args.max_steps, args.lr, args.sloppy, args.seed,
                form=args.format, max_minutes=args.max_minutes, eval_every=args.eval_every)
    elif args.command == "rl":
        config = RLConfig(task=args.task, prompts_per_step=args.prompts, group_size=args.group_size,
                          temperature=args.temperature, clip=args.clip, kl_coef=args.kl, seed=args.seed,
                          reward=args.reward, max_new_tokens=args.max_new_tokens or 0)
        run_rl(args.run, args.out, config, args.max_steps, args.lr, args.eval_every, args.resume,
               max_minutes=args.max_minutes)
    else:
        run_dpo(args.run, args.out, args.pairs, args.task, args.beta, args.max_steps, args.lr, args.batch_size,
                args.eval_every, args.seed, args.resume, sft_weight=args.sft_weight, max_minutes=args.max_minutes)
    return 0
