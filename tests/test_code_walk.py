"""读一次训练运行的路线（benchmarks/code_walk.py，第 26 号问题）：读者为了读新的代码走进一个文件，
每个文件最多 2 次（分词器除外）。这个测试失败时，说明训练的路上又出现了来回跑：把那几次调用收进一处，
或者把函数搬到用它的地方（失败信息列出每一次进入）。"""
from tests.conftest import load_benchmark


def test_a_training_run_enters_each_file_at_most_twice(tmp_path):
    walk = load_benchmark("code_walk")
    found = walk.entries(tmp_path / "run")
    into = {b for _, _, b, _ in found}
    # 走读真的走到了：语料、词表、批次、模型、训练、验证、生成、报告都在路上
    for room in ("corpus/read.py", "tokenizer/char.py", "batches/packing.py", "model/transformer.py",
                 "training/trainer.py", "training/validation.py", "generation/generate.py", "recipes/report.py"):
        assert room in into, room
    assert walk.too_often(found) == {}
