"""敌意检查点 (hostile checkpoints)：伪造的文件头、对不上的形状、荒唐的配置、改坏的词表、藏了代码的 pickle。

每一种都只能得到一句 StudyGPTError：不执行任何代码，也不按伪造的数字分配内存。
内存用一个子进程量：它先记下自己的峰值常驻内存 (ru_maxrss)，再把所有敌意检查点加载一遍，峰值不能涨多少。
"""
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from studygpt.errors import StudyGPTError
from studygpt.model.checkpoint import load_model, load_trainer_state, save_checkpoint
from studygpt.tokenizer.char import Tokenizer
from tests.conftest import DIALOGUES, tiny_model

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    tok = Tokenizer().build_vocab(t for d in DIALOGUES for t in d)
    return save_checkpoint(tmp_path_factory.mktemp("hostile") / "good", tiny_model(tok.vocab_size), tok,
                           trainer_state={"step": 1, "weights": torch.zeros(3)})


def copy(good: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(good, tmp_path / "ck"))


def write_safetensors(path: Path, header: dict, data: bytes = b"", header_len: int | None = None) -> None:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw) if header_len is None else header_len) + raw + data)


# ===== 每一种坏法 → 对应的那句话 =====
def huge_header_length(ck: Path) -> None:
    write_safetensors(ck / "model.safetensors", {}, header_len=2**62)


def header_offsets_out_of_range(ck: Path) -> None:
    header = {"norm.weight": {"dtype": "F32", "shape": [2**20], "data_offsets": [0, 4 * 2**20]}}
    write_safetensors(ck / "model.safetensors", header, b"\0" * 64)


def header_not_json(ck: Path) -> None:
    (ck / "model.safetensors").write_bytes(struct.pack("<Q", 12) + b"\xff" * 12)


def shape_not_matching_config(ck: Path) -> None:
    from safetensors.torch import load_file, save_file
    state = load_file(str(ck / "model.safetensors"))
    state["norm.weight"] = torch.ones(16)  # 配置里 d_model=32
    save_file(state, str(ck / "model.safetensors"))


def edit_model_config(ck: Path, **changes) -> None:
    meta = json.loads((ck / "config.json").read_text())
    meta["model"].update(changes)
    (ck / "config.json").write_text(json.dumps(meta))


def absurd_config(ck: Path) -> None:
    edit_model_config(ck, d_model=2**20, n_head=2**10, n_layers=10**9)  # 估算 ~10^20 字节


def absurd_max_len(ck: Path) -> None:
    edit_model_config(ck, max_len=2**40)  # 位置编码表会是 ~32 TB


def config_wrong_types(ck: Path) -> None:
    edit_model_config(ck, d_model="32")


def config_not_json(ck: Path) -> None:
    (ck / "config.json").write_text("{" * 50_000)


def config_vocab_size_mismatch(ck: Path) -> None:
    vocab = len((ck / "vocab.txt").read_text(encoding="utf-8").splitlines())
    edit_model_config(ck, vocab_size=vocab + 1)  # 模型会写出词表里没有的编号


def vocab_duplicate_token(ck: Path) -> None:
    lines = (ck / "vocab.txt").read_text(encoding="utf-8").splitlines()
    lines[-1] = lines[-2].split("\t")[0] + "\t" + lines[-1].split("\t")[1]
    (ck / "vocab.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def vocab_duplicate_id(ck: Path) -> None:
    with open(ck / "vocab.txt", "a", encoding="utf-8") as f:
        f.write("新\t7\n")


def vocab_missing_special(ck: Path) -> None:
    text = (ck / "vocab.txt").read_text(encoding="utf-8")
    (ck / "vocab.txt").write_text(text.replace("<|end|>\t2", "完\t2"), encoding="utf-8")


HOSTILE = {  # 名字 → (把好检查点改坏的函数, 那句话里必须有的词)
    "huge_header_length": (huge_header_length, "文件头说自己有"),
    "header_offsets_out_of_range": (header_offsets_out_of_range, "超出数据区"),
    "header_not_json": (header_not_json, "不是一个 JSON 对象"),
    "shape_not_matching_config": (shape_not_matching_config, "形状与 config.json 不符"),
    "absurd_config": (absurd_config, "GB"),
    "absurd_max_len": (absurd_max_len, "GB"),
    "config_wrong_types": (config_wrong_types, "不是整数"),
    "config_not_json": (config_not_json, "不是合法的 JSON"),
    "config_vocab_size_mismatch": (config_vocab_size_mismatch, "vocab.txt 却有"),
    "vocab_duplicate_token": (vocab_duplicate_token, "不止一次"),
    "vocab_duplicate_id": (vocab_duplicate_id, "重复出现"),
    "vocab_missing_special": (vocab_missing_special, "缺少特殊词元"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_checkpoint_is_one_clear_sentence(good, tmp_path, name):
    break_it, fragment = HOSTILE[name]
    ck = copy(good, tmp_path)
    break_it(ck)
    with pytest.raises(StudyGPTError, match=fragment) as info:
        load_model(ck)
    assert "\n" not in str(info.value)


def test_pickled_trainer_state_with_a_payload_executes_nothing(good, tmp_path):
    """trainer_state.pt 换成会创建标记文件的 pickle：加载被拒绝，标记文件不存在。"""
    ck = copy(good, tmp_path)
    marker = tmp_path / "payload_ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    for save in (lambda obj, f: pickle.dump(obj, f), torch.save):  # 裸 pickle 和 torch 的 zip 格式各一次
        with open(ck / "trainer_state.pt", "wb") as f:
            save({"step": 1, "optimizer": Payload()}, f)
        with pytest.raises(StudyGPTError, match="nothing executed"):
            load_trainer_state(ck)
        assert not marker.exists()
    assert load_trainer_state(good)["step"] == 1  # 正常的那个照常加载


MEMORY_SCRIPT = """
import json, resource, shutil, sys, tempfile
from pathlib import Path
from studygpt.model.checkpoint import load_model
from studygpt.errors import StudyGPTError
from tests.test_hostile_checkpoints import HOSTILE
good = Path(sys.argv[1])
load_model(good)  # 先把正常路径要用的库都加载好、用过一遍
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
refused = 0
for name, (break_it, _) in HOSTILE.items():
    with tempfile.TemporaryDirectory() as tmp:
        ck = Path(shutil.copytree(good, Path(tmp) / "ck"))
        break_it(ck)
        try:
            load_model(ck)
        except StudyGPTError:
            refused += 1
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"refused": refused, "growth_kb": peak - base}))
"""


def test_hostile_checkpoints_allocate_nothing_out_of_proportion(good):
    out = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, str(good)], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["refused"] == len(HOSTILE)
    assert result["growth_kb"] < 64 * 1024, result  # 伪造的文件说自己有 GB、TB：实际涨幅 < 64 MB


@pytest.mark.parametrize("lora", [{"rank": "8"}, {"rank": 4, "evil": 1}, ["rank", 4]])
def test_lora_entry_with_wrong_keys_or_types_is_one_sentence(lora):
    """config.json 里 "lora" 被改坏：一句话，不是 TypeError 的追溯 (traceback)。"""
    from studygpt.model.lora import lora_config_from
    with pytest.raises(StudyGPTError, match="(?i)lora"):
        lora_config_from(lora)
