"""学习GPT (StudyGPT)：从零训练一个中文对话 Transformer，用来学习 LLM 的每一步。

`from studygpt import *` 给出原项目的全部接口名：
ConvDataset, Tokenizer, DialogueDataset, DialogueModel, TransformerTrainer, load_checkpoint, generate_response。
"""
from studygpt.chat_format import render_conversation
from studygpt.data import ConvDataset, read_dialogues
from studygpt.dataset import DialogueDataset
from studygpt.generate import generate_response, stream_response
from studygpt.model import DialogueModel, ModelConfig
from studygpt.tokenizer import Tokenizer
from studygpt.train import TransformerTrainer
from studygpt.checkpoint import load_checkpoint, load_model

__version__ = "0.1.0"
__all__ = ["ConvDataset", "read_dialogues", "Tokenizer", "DialogueDataset", "DialogueModel", "ModelConfig",
           "TransformerTrainer", "load_checkpoint", "load_model", "generate_response", "stream_response",
           "render_conversation"]
