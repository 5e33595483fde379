"""看看里面 (look inside)：`studygpt inspect …` 的四个工具，每个都是一个可以直接调用的函数。

    tokens.py      inspect_tokens：词元、编号、<unk>、损失掩码
    next_token.py  inspect_next：下一个词元的概率，采样设置怎样改变它
    attention.py   attention_maps：注意力热力图；params.py inspect_params：参数与 FLOPs 的分布
"""
