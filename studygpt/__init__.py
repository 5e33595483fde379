"""学习GPT (StudyGPT)：从零训练一个中文对话 Transformer，用来学习 LLM 的每一步。

`from studygpt import *` 给出 README 里 Python 接口用到的全部名字：
ConvDataset, Tokenizer, DialogueDataset, DialogueModel, TransformerTrainer, load_checkpoint, generate_response
（ConvDataset、DialogueDataset、load_checkpoint 在兼容层 compat.py 里）。
"""
from studygpt.compat import ConvDataset, DialogueDataset, load_checkpoint
from studygpt.corpus.read import read_dialogues
from studygpt.generation.generate import (
           GenerationSettings,
           generate_response,
           stream_response,
)
from studygpt.model.checkpoint import load_model
from studygpt.model.transformer import DialogueModel, ModelConfig
from studygpt.tokenizer.char import Tokenizer
from studygpt.tokenizer.chat_format import render_conversation
from studygpt.training.trainer import TransformerTrainer

__version__ = "0.1.0"
__all__ = ["ConvDataset", "read_dialogues", "Tokenizer", "DialogueDataset", "DialogueModel", "ModelConfig",
           "TransformerTrainer", "load_checkpoint", "load_model", "generate_response", "stream_response",
           "GenerationSettings", "render_conversation"]
