"""模型 (model)，课程第 4–6、13 章：词元编号 → 下一个词元的 logits；以及把模型存成文件、读回来。

    transformer.py ModelConfig → RMSNorm → RoPE → Attention → MLP → Block → DialogueModel
    scoring.py     训练的损失 lm_loss 与 eval_mode；kv_cache.py 生成时的 KV 缓存
    lora.py        手写 LoRA；checkpoint.py safetensors + config.json + 词表，原子保存、安全加载（load_model）
    checks.py      加载陌生检查点之前的体检（不分配内存）
"""
