"""模型 (model)，课程第 4–6、13 章：词元编号 → 下一个词元的 logits；以及把模型存成文件、读回来。

    transformer.py ModelConfig → RMSNorm → RoPE → Attention → MLP → Block → DialogueModel（+ KV 缓存、lm_loss）
    lora.py        手写 LoRA；checkpoint.py safetensors + config.json + 词表，原子保存、安全加载（load_model）
    checks.py      加载陌生检查点之前的体检（不分配内存）
"""
