"""兼容层 compat.py：README 里 Python 接口那段代码用到的 ConvDataset、DialogueDataset、load_checkpoint。

整段代码原样运行的测试在 test_seed_api.py；这里逐个检查它们的行为与导入路径。
"""
import torch
from torch.utils.data import DataLoader

from studygpt.compat import ConvDataset, DialogueDataset
from tests.conftest import DIALOGUES
from tests.test_data import write


def test_conv_dataset_process_file(tmp_path, capsys):
    dataset = ConvDataset(write(tmp_path, "E\nM 你好\nM 你好呀\nE\nM 再见\nM 拜拜\nM 多余\n"))
    assert dataset.dialogues == [] and dataset.report is None
    dialogues = dataset.process_file()
    assert dialogues is dataset.dialogues == [["你好", "你好呀"], ["再见", "拜拜"]]
    assert all(isinstance(t, str) for d in dataset.dialogues for t in d)
    assert dataset.report.skipped == {"unanswered_turn": 1}
    assert len(dataset) == 2 and dataset[1] == ["再见", "拜拜"] and list(dataset) == dialogues
    assert capsys.readouterr().out == ""


def test_conv_dataset_build_vocab_writes_vocab_file(tmp_path):
    dataset = ConvDataset(write(tmp_path, "E\nM 你好\nM 你好呀\n"))
    vocab_file = tmp_path / "vocab.txt"
    tok = dataset.build_vocab(max_vocab_size=100, vocab_file=vocab_file)  # 没调 process_file 也会先读
    assert len(dataset) == 1
    assert {"你", "好", "呀"} <= set(tok.vocab)
    assert vocab_file.exists() and "呀" in vocab_file.read_text(encoding="utf-8")


def test_dialogue_dataset_pads_each_window_and_collates_to_the_longest(tokenizer):
    dataset = DialogueDataset(DIALOGUES, tokenizer, max_length=64)
    item = dataset[0]
    assert item["input_ids"].shape == (64,) and int(item["attention_mask"].sum()) == len(dataset.windows[0][0])
    assert (item["labels"][item["attention_mask"] == 0] == -100).all()  # 填充位置不参与损失
    batch = next(iter(DataLoader(dataset, batch_size=4, collate_fn=dataset.collate_fn)))
    width = max(len(w[0]) for w in dataset.windows[:4])
    assert batch["input_ids"].shape == (4, width) and batch["labels"].dtype == torch.long


def test_dialogue_dataset_reads_a_conv_dataset_that_was_not_processed(tmp_path, tokenizer):
    conv = ConvDataset(write(tmp_path, "E\nM 你好\nM 你好呀\n"))
    assert len(DialogueDataset(conv, tokenizer, max_length=32)) == 1 and conv.dialogues == [["你好", "你好呀"]]


def test_original_import_paths_still_work():
    import studygpt
    from studygpt import compat
    assert compat.load_checkpoint is studygpt.load_checkpoint
    assert studygpt.ConvDataset is ConvDataset and studygpt.DialogueDataset is DialogueDataset
