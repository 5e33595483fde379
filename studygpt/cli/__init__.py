"""命令行 (command line) `studygpt`（也可以 `python -m studygpt`）。

    parser.py      每个子命令的参数（一个名字一种写法：--max-steps、--batch-size……）与 main()
    commands.py    每个子命令：解析好的参数 → 调用库函数 → 打印结果
"""
