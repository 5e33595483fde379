"""批次 (batches)，课程第 3、7 章：对话 + 分词器 → 训练窗口 → 打包好的批次（张量）。

    windows.py     build_windows：每段对话渲染成 (ids, labels) 窗口；cached_windows 把它们存进词元缓存
    packing.py     PackedBatches：几段对话首尾相接装进一行，几乎没有填充，可以精确续训
"""
