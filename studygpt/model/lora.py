"""低秩适配器 LoRA (low-rank adaptation)：只训练很少的参数，就能改变一个训练好的模型。

全量微调要更新每个矩阵 W (out × in)。LoRA 让 W 保持不动（冻结 frozen），旁边加一条低秩的支路：

    y = x Wᵀ + (alpha / r) · x Aᵀ Bᵀ        A: (r × in)，B: (out × r)，r 远小于 in 和 out

- 只有 A、B 参加训练：一个 128×384 的矩阵有 49,152 个数，r = 8 的 A、B 只有 8×(128+384) = 4,096 个；
- B 初始为 0，所以刚装上适配器时模型与底座 (base model) 一模一样，训练从"原来的模型"出发；
  A 用随机初始化（与 nn.Linear 相同的 kaiming 均匀分布），否则 A、B 都是 0，梯度也全是 0，永远学不动；
- alpha / r 是缩放：换一个 r 时不必重新调学习率；
- 训练完可以合并 (merge)：W' = W + (alpha / r) · B A，得到一个普通的模型，推理时一点也不慢。

本文件：LoRALinear → add_lora（装到注意力与前馈的投影上）→ trainable_share → merge_lora →
save_adapter / load_adapter（adapter_model.safetensors + adapter_config.json）。
训练用的是同一个 TransformerTrainer：优化器只收 requires_grad 的参数，也就是 A 和 B（见 recipes/finetune.py）。
"""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from studygpt.errors import StudyGPTError
from studygpt.model.transformer import DialogueModel, ModelConfig

TARGETS = ("wqkv", "wo", "w13", "w2")  # 注意力的 q/k/v 与输出投影，前馈 SwiGLU 的两个矩阵（见 model/transformer.py）
ADAPTER_WEIGHTS, ADAPTER_CONFIG = "adapter_model.safetensors", "adapter_config.json"


@dataclasses.dataclass
class LoRAConfig:
    """rank r、缩放 alpha（实际乘的是 alpha / r）、支路上的 dropout、装在哪些投影上。"""
    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    targets: tuple[str, ...] = TARGETS

    def __post_init__(self) -> None:
        self.targets = tuple(self.targets)  # 从 JSON 读回来是 list
        if not isinstance(self.rank, int) or self.rank < 1:
            raise StudyGPTError(f"LoRA rank={self.rank} 无效：请用 ≥ 1 的整数（常用 4、8、16）。")
        if self.alpha <= 0:
            raise StudyGPTError(f"LoRA alpha={self.alpha} 无效：请用 > 0 的数（常用 rank 的 2 倍）。")
        if not 0 <= self.dropout < 1:
            raise StudyGPTError(f"LoRA dropout={self.dropout} 无效：请用 [0, 1) 之间的数。")
        unknown = set(self.targets) - set(TARGETS)
        if unknown or not self.targets:
            raise StudyGPTError(f"LoRA targets {sorted(unknown) or '为空'} 不认识；可选 {TARGETS}。")

    @property
    def scale(self) -> float:
        return self.alpha / self.rank


class LoRALinear(nn.Module):
    """一个冻结的线性层 + 一条低秩支路。weight 与原来的 nn.Linear 同名，所以底座权重在 state_dict 里的键不变。"""

    def __init__(self, base: nn.Linear, config: LoRAConfig) -> None:
        super().__init__()
        self.weight = base.weight                      # (out, in)，与底座共用同一个张量
        self.bias = base.bias
        for p in (self.weight, self.bias):
            if p is not None:
                p.requires_grad_(False)                # 冻结：底座权重不求梯度，也不进优化器
        out_features, in_features = self.weight.shape
        self.lora_A = nn.Parameter(torch.empty(config.rank, in_features, device=self.weight.device))
        self.lora_B = nn.Parameter(torch.zeros(out_features, config.rank, device=self.weight.device))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # 与 nn.Linear 的默认初始化相同
        self.scale = config.scale
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x (..., in) → 底座 (..., out) + 支路：先降到 r 维 (..., r) 再升回 (..., out)
        low = F.linear(self.dropout(x), self.lora_A)
        return F.linear(x, self.weight, self.bias) + F.linear(low, self.lora_B) * self.scale

    def merged_weight(self) -> torch.Tensor:
        """W + (alpha / r) · B A，形状 (out, in)：合并后的普通权重。"""
        return self.weight + (self.lora_B @ self.lora_A) * self.scale


def _target_layers(model: nn.Module, config: LoRAConfig):
    """(父模块, 属性名) 对：每层注意力与前馈里要装适配器的那几个投影。"""
    for parent in model.modules():
        for name in config.targets:
            if isinstance(getattr(parent, name, None), (nn.Linear, LoRALinear)):
                yield parent, name


def add_lora(model: nn.Module, config: LoRAConfig) -> nn.Module:
    """冻结模型的全部参数，再把目标投影换成 LoRALinear。原地修改并返回 model。"""
    model.requires_grad_(False)
    replaced = 0
    for parent, name in list(_target_layers(model, config)):
        layer = getattr(parent, name)
        if isinstance(layer, LoRALinear):
            raise StudyGPTError("这个模型已经装了 LoRA 适配器；请先合并 (merge_lora) 再装新的。")
        setattr(parent, name, LoRALinear(layer, config))
        replaced += 1
    if replaced == 0:
        raise StudyGPTError(f"模型里找不到名为 {config.targets} 的线性层，没有地方装 LoRA。")
    return model


def build_model(config: ModelConfig, lora: dict | None = None) -> DialogueModel:
    """按配置搭模型；没合并的 LoRA 检查点（config.json 里有 "lora"）先装上同样的适配器，权重的名字才对得上。"""
    model = DialogueModel(config=config)
    if lora:
        add_lora(model, lora_config_from(lora))
    return model


def lora_config_from(saved, source: str = 'config.json 的 "lora"') -> LoRAConfig:
    """存下来的 LoRA 设置 → LoRAConfig；多出或写错的键、类型不对的值都是一句话，不是 TypeError。
    source：设置从哪里读来的（写进报错里）。"""
    fields = {f.name for f in dataclasses.fields(LoRAConfig)}
    if not isinstance(saved, dict) or set(saved) - fields:
        raise StudyGPTError(f"{source} 应是只含 {sorted(fields)} 的对象，读到的是 {saved!r:.80}；"
                            "请用 `studygpt finetune` 保存的整个检查点文件夹。")
    try:
        return LoRAConfig(**saved)
    except TypeError as err:  # 例如 rank 是字符串："<" 不能比较 str 与 int
        raise StudyGPTError(f"{source} 里有类型不对的值 ({err})；请用 `studygpt finetune` 保存的检查点。") from err


def trainable_share(model: nn.Module) -> tuple[int, int]:
    """(要训练的参数数, 全部参数数)。"""
    total = sum(p.numel() for p in model.parameters())
    return sum(p.numel() for p in model.parameters() if p.requires_grad), total


@torch.no_grad()
def merge_lora(model: nn.Module) -> nn.Module:
    """把每个 LoRALinear 合并成普通的 nn.Linear（W' = W + scale · B A），参数恢复可训练。原地修改并返回 model。"""
    for parent in list(model.modules()):
        for name, layer in list(parent.named_children()):
            if isinstance(layer, LoRALinear):
                out_features, in_features = layer.weight.shape
                merged = nn.Linear(in_features, out_features, bias=layer.bias is not None,
                                   device=layer.weight.device, dtype=layer.weight.dtype)
                merged.weight.copy_(layer.merged_weight())
                if layer.bias is not None:
                    merged.bias.copy_(layer.bias)
                setattr(parent, name, merged)
    return model.requires_grad_(True)


# ===== 存与取：只存适配器（几十 KB），底座模型另外给 =====
def save_adapter(model: nn.Module, config: LoRAConfig, folder: str | Path, base: str = "") -> Path:
    """folder/adapter_model.safetensors（只有 lora_A / lora_B）+ folder/adapter_config.json。返回 folder。"""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items() if ".lora_" in k}
    if not state:
        raise StudyGPTError("模型上没有 LoRA 适配器可存；请先 add_lora。")
    save_file(state, str(folder / ADAPTER_WEIGHTS), metadata={"format": "pt"})
    meta = {**dataclasses.asdict(config), "base_model": base}
    (folder / ADAPTER_CONFIG).write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
    return folder


def load_adapter(model: nn.Module, folder: str | Path) -> tuple[nn.Module, LoRAConfig]:
    """给底座模型装上 folder 里存的适配器（键必须完全对上）。返回 (model, config)。"""
    folder = Path(folder)
    if not (folder / ADAPTER_CONFIG).is_file() or not (folder / ADAPTER_WEIGHTS).is_file():
        raise StudyGPTError(f"{folder}: 找不到 {ADAPTER_CONFIG} 与 {ADAPTER_WEIGHTS}；请给出 `studygpt finetune` 写的 adapter 目录。")
    meta = json.loads((folder / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    config = lora_config_from({f.name: meta[f.name] for f in dataclasses.fields(LoRAConfig) if f.name in meta},
                              str(folder / ADAPTER_CONFIG))
    add_lora(model, config)
    state = load_file(str(folder / ADAPTER_WEIGHTS))
    expected = {k for k in model.state_dict() if ".lora_" in k}
    if set(state) != expected:
        raise StudyGPTError(f"{folder}/{ADAPTER_WEIGHTS} 与这个底座模型对不上：缺少 {sorted(expected - set(state))[:3]}，"
                            f"多出 {sorted(set(state) - expected)[:3]}；请用训练适配器时的那个底座模型。")
    model.load_state_dict(state, strict=False)  # 只装适配器：底座权重已在模型里，上面已核对适配器的键一个不差
    return model, config
