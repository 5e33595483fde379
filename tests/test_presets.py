"""预设只写与默认不同的几项；展开后的完整设置必须与当初逐项写出的完全一样。"""
import pytest

from studygpt.errors import StudyGPTError
from studygpt.model.transformer import ModelConfig
from studygpt.recipes.presets import PRESETS, get_preset
from studygpt.training.optim import TrainConfig

# 当初每个预设逐项写出的设置（改预设时这里要一起改，说明是有意的）
WRITTEN_OUT = {
    "tiny": ({"d_model": 128, "n_head": 4, "n_layers": 2, "max_len": 192},
             {"lr": 3e-3, "batch_size": 16, "seq_len": 192, "weight_decay": 0.1, "warmup_ratio": 0.03}),
    "small": ({"d_model": 256, "n_head": 4, "n_layers": 4, "max_len": 256},
              {"lr": 2e-3, "batch_size": 16, "seq_len": 256, "weight_decay": 0.1, "warmup_ratio": 0.03}),
    "study": ({"d_model": 512, "n_head": 8, "n_layers": 4, "max_len": 256},
              {"lr": 1e-3, "batch_size": 16, "seq_len": 256, "weight_decay": 0.1, "warmup_ratio": 0.03}),
    # auto：训练前按预算换掉模型大小与学习率（recipes/sizing.py）；换之前就是默认值，上下文 256 与家族相同
    "auto": ({"d_model": 512, "n_head": 8, "n_layers": 4, "max_len": 256},
             {"lr": 1e-3, "batch_size": 16, "seq_len": 256, "weight_decay": 0.1, "warmup_ratio": 0.03}),
}


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_expands_to_the_written_out_settings(name):
    model, train = WRITTEN_OUT[name]
    preset = get_preset(name)
    assert ModelConfig(vocab_size=100, **preset["model"]) == ModelConfig(vocab_size=100, **model)
    assert TrainConfig.from_dict(preset["train"]) == TrainConfig.from_dict(train)
    assert preset["max_vocab_size"] == 10000


def test_presets_do_not_restate_defaults():
    model_defaults, train_defaults = ModelConfig(vocab_size=100), TrainConfig()
    for name, preset in PRESETS.items():
        for key, value in preset["model"].items():
            assert getattr(model_defaults, key) != value, (name, key)
        for key, value in preset["train"].items():
            assert getattr(train_defaults, key) != value, (name, key)


def test_unknown_preset_is_a_clear_error():
    with pytest.raises(StudyGPTError, match="tiny"):
        get_preset("huge")
