"""原项目 README 里的训练与聊天代码（见 ../shared/SEED_API.md），除了 import 那一行，原样运行。

代码写进一个脚本，在子进程里运行；聊天循环的 input() 从管道读入。
"""
import subprocess
import sys

from tests.conftest import DIALOGUES

SNIPPET = '''
import torch
from torch.utils.data import DataLoader
from studygpt import *

# ---- Training（原样；train_loader 一行是原文注释里说的 DataLoader） ----
conv_dataset = ConvDataset("data/your_data.conv")
conv_dataset.process_file()
tokenizer = conv_dataset.build_vocab(max_vocab_size=10000, vocab_file="vocab.txt")
dialogue_dataset = DialogueDataset(conv_dataset, tokenizer, max_length=256)
train_loader = DataLoader(dialogue_dataset, batch_size=32, shuffle=True)
config = {
    "lr": 5e-3, "weight_decay": 0.01, "epochs": 2, "grad_accum_steps": 4, "use_amp": True,
    "max_grad_norm": 1.0, "save_every": 2,
    "assistant_token_id": tokenizer.vocab["<|assistant|>"],
}
model = DialogueModel(tokenizer.vocab_size, d_model=512, n_head=8, n_layers=4)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
trainer = TransformerTrainer(model, train_loader, device, config)
trainer.train()

# ---- Chat（原样） ----
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
model, optimizer, scheduler, start_epoch, config = load_checkpoint("data/model_epoch_2.pt", device)
tokenizer = Tokenizer().load_vocab("vocab.txt")
while True:
    user_input = input("\\n您: ")
    if user_input.lower() in ["exit", "quit", "bye"]:
        break
    response = generate_response(model=model, tokenizer=tokenizer, input_text=user_input,
                                 device=device, max_length=100, temperature=0.7)
    print(f"AI: {response}")
    response = generate_response(model=model, tokenizer=tokenizer, input_text=user_input, device=device,
                                 max_length=150, temperature=0.9, top_k=50, repetition_penalty=1.2)
print("start_epoch", start_epoch)
'''


def test_original_training_and_chat_snippets_run(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "your_data.conv").write_text(
        "".join("E\n" + "".join(f"M {t}\n" for t in d) for d in DIALOGUES * 5), encoding="utf-8")
    (tmp_path / "snippet.py").write_text(SNIPPET, encoding="utf-8")
    result = subprocess.run([sys.executable, "snippet.py"], cwd=tmp_path, input="你好\nexit\n",
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "AI: " in result.stdout and "start_epoch 2" in result.stdout
    assert (tmp_path / "data" / "model_epoch_2" / "model.safetensors").is_file()


def test_dataset_collate_pads_to_longest(tokenizer):
    from torch.utils.data import DataLoader

    from studygpt import DialogueDataset
    dataset = DialogueDataset(DIALOGUES, tokenizer, max_length=64)
    batch = next(iter(DataLoader(dataset, batch_size=4, collate_fn=dataset.collate_fn)))
    assert batch["input_ids"].shape[1] == int(batch["attention_mask"].sum(1).max())
    assert dataset[0]["input_ids"].shape == (64,)  # 单个样本填充到 max_length，默认 collate 可用
