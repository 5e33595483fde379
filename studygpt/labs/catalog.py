"""实验目录 (the lab catalog)：每个实验拆掉哪一处、问什么、每个选项按什么规则判、为什么。

判分只看量出来的数 (graded by the measurement)：每个选项是一句话加一条规则，规则拿两组的数（labs/arms.py 的 Arm）
算出"成立 / 不成立"。学习者选的那一项成立，预测就成立；不看选项的文字，也不看课程期望的是哪一项
(expected)。expected 是课程认为会成立的那一项，docs/zh/labs.md 的表格记下它在几个种子上成立了几次。
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from studygpt.labs import broken
from studygpt.labs.arms import Arm, Variant
from studygpt.recipes.presets import get_preset

QUICKSTART_LR = get_preset("tiny")["train"]["lr"]
LAB_STEPS = 600  # 每组默认训练的步数：对照组在 3 个种子上留出加法都 ≥ 90%（300 步时只有 12–55%，见 docs/zh/labs.md）


@dataclass(frozen=True)
class Choice:
    """一个选项：text 给学习者看，rule 是判分规则的文字，holds(对照组, 实验组) 是同一条规则的代码。"""
    text: str
    rule: str
    holds: Callable[[Arm, Arm], bool]


@dataclass(frozen=True)
class Lab:
    name: str                     # 命令行里的名字：studygpt lab NAME
    title: str
    chapter: str                  # 讲这个部件的那一章：docs/zh/ 下的文件名
    change: str                   # 一句话：改了什么
    variant: Variant
    question: str
    choices: tuple[Choice, ...]
    expected: str                 # 课程认为会成立的选项
    why: tuple[str, str, str]     # 三行解释

    def lettered(self) -> list[tuple[str, Choice]]:
        return [(chr(ord("A") + i), c) for i, c in enumerate(self.choices)]


# ===== 判分规则的零件 =====
def val_choices(better: str, worse: str, same: str, margin: float = 0.05) -> tuple[Choice, Choice, Choice]:
    """只看验证损失的三个选项，正好把结果分成三份：低 margin 以上 / 高 margin 以上 / 相差不到 margin。"""
    return (Choice(better, f"实验组验证损失 < 对照组 − {margin}", lambda b, v: v.val_loss < b.val_loss - margin),
            Choice(worse, f"实验组验证损失 > 对照组 + {margin}", lambda b, v: v.val_loss > b.val_loss + margin),
            Choice(same, f"|实验组验证损失 − 对照组| ≤ {margin}", lambda b, v: abs(v.val_loss - b.val_loss) <= margin))


def better_or_not(better: str, not_better: str, margin: float = 0.05) -> tuple[Choice, Choice]:
    """"会不会更好"的两个选项：验证损失低 margin 以上 / 不低于对照组 − margin（差不多或更高）。"""
    return (Choice(better, f"实验组验证损失 < 对照组 − {margin}", lambda b, v: v.val_loss < b.val_loss - margin),
            Choice(not_better, f"实验组验证损失 ≥ 对照组 − {margin}", lambda b, v: v.val_loss >= b.val_loss - margin))


def similar(b: Arm, v: Arm) -> bool:
    """"差不多"：验证损失相差不到 0.05，两场考试的正确率都相差不到 5 个百分点。"""
    return abs(v.val_loss - b.val_loss) < 0.05 and abs(v.sums - b.sums) < 0.05 and abs(v.chat - b.chat) < 0.05


SIMILAR_RULE = "|Δ验证损失| < 0.05，且两场考试的正确率都相差不到 5 个百分点"


def better(text: str) -> Choice:
    return Choice(text, "实验组验证损失 < 对照组", lambda b, v: v.val_loss < b.val_loss)


LABS_LIST = [
    Lab("no-mask", "去掉因果掩码 (no causal mask)", "05_attention.md",
        "注意力不再挡住后面的词元：训练时每个词元都看得见同一段对话里它后面的词元。",
        Variant(make_model=broken.NoMaskModel),
        "训练完，和对照组比：",
        (Choice("训练损失更高：看得太多，反而学糊涂了", "实验组训练损失 > 对照组",
                lambda b, v: v.train_loss > b.train_loss),
         Choice("训练损失不到对照组的一半，留出的加法却几乎全错", "实验组训练损失 < 对照组 × 0.5，且实验组加法 < 10%",
                lambda b, v: v.train_loss < 0.5 * b.train_loss and v.sums < 0.10),
         Choice("差不多：掩码只是让训练快一点", SIMILAR_RULE, similar),
         Choice("训练损失更低，加法也更准：多看一些总是好事", "实验组训练损失 < 对照组，且实验组加法 > 对照组",
                lambda b, v: v.train_loss < b.train_loss and v.sums > b.sums)),
        "B",
        ("训练时下一个词元就在眼前：模型学会的是\"把后面那个字抄过来\"，损失当然低。",
         "生成时后面还没有字可抄，它从没学过真正的预测，回答成了乱码，加法全错；验证损失也低，因为验证时它同样在抄。",
         "因果掩码不是加速技巧，而是\"考试不许看答案\"：训练时看到的必须和生成时一样多。损失低不等于学会了。")),
    Lab("no-rope", "去掉位置信息 (no RoPE)", "04_embeddings_rope.md",
        "RoPE 的旋转角全设为 0：q、k 里不再带位置，注意力只知道前面有哪些字，不知道它们离得多远、谁先谁后。",
        Variant(make_model=broken.NoRopeModel),
        "因果掩码还在。训练完，和对照组比：",
        (Choice("完全学不会：验证损失比对照组高 2 以上", "实验组验证损失 > 对照组 + 2",
                lambda b, v: v.val_loss > b.val_loss + 2),
         Choice("能学会聊天，但更差，加法尤其差：验证损失高出 0.1 以上，留出的加法低 20 个百分点以上",
                "实验组验证损失 > 对照组 + 0.1，且实验组加法 < 对照组 − 20 个百分点",
                lambda b, v: v.val_loss > b.val_loss + 0.1 and v.sums < b.sums - 0.20),
         Choice("差不多：字的顺序从上下文就猜得出来", SIMILAR_RULE, similar),
         better("更好：少了一个部件，模型更简单")),
        "B",
        ("没有位置，\"23加58\"和\"32加85\"在注意力眼里是同一堆字；只剩因果掩码透露一点顺序（前面有几个字）。",
         "靠这点线索，常见的问答还能背下来，但加法要知道哪一位是十位、哪一位是个位，于是错得最多。",
         "RoPE 把\"相距多远\"直接转进 q·k 的角度里：每个头不必自己去数位置。")),
    Lab("no-residual", "去掉残差连接 (no residual)", "06_transformer_block.md",
        "每层的输出整个换掉输入：x = Attn(Norm(x))，而不是 x + Attn(Norm(x))；前馈网络同样。",
        Variant(make_model=broken.NoResidualModel),
        "只有两层，很浅。训练完，和对照组比：",
        (Choice("两层而已，残差无所谓：差不多", SIMILAR_RULE, similar),
         Choice("学得慢得多：训练损失和验证损失都高出 0.3 以上",
                "实验组训练损失 > 对照组 + 0.3，且验证损失 > 对照组 + 0.3",
                lambda b, v: v.train_loss > b.train_loss + 0.3 and v.val_loss > b.val_loss + 0.3),
         better("学得更快：少了一条旁路，信号更集中")),
        "B",
        ("有残差时，每层只在残差流上\"加一点\"：词元本身一路直达输出层，梯度也有一条直路回到最底层。",
         "去掉残差，\"这是哪个字\"只能挤过注意力和前馈两道窄门，而刚初始化时每层的输出又很小：信息和梯度都被冲淡了。",
         "所以两层也学得慢得多；层数一多，不用残差几乎训练不动。")),
    Lab("no-attention", "去掉注意力 (no attention)", "05_attention.md",
        "每个 Block 跳过注意力那一支，只剩 x + MLP(Norm(x))：每个位置各算各的，词元之间没有任何通道。",
        Variant(make_model=broken.NoAttentionModel),
        "前馈网络占了每层三分之二的参数，注意力只占三分之一。训练完，和对照组比：",
        (Choice("差不多：参数的大头还在", SIMILAR_RULE, similar),
         Choice("聊天还行，加法不行：聊天 ≥ 50%，加法比对照组低 20 个百分点以上",
                "实验组聊天 ≥ 50%，且实验组加法 < 对照组 − 20 个百分点",
                lambda b, v: v.chat >= 0.5 and v.sums < b.sums - 0.20),
         Choice("回答与问题无关：两场考试都不到 10%，验证损失高出 0.5 以上",
                "实验组聊天 < 10%，且加法 < 10%，且验证损失 > 对照组 + 0.5",
                lambda b, v: v.chat < 0.10 and v.sums < 0.10 and v.val_loss > b.val_loss + 0.5)),
        "C",
        ("没有注意力，位置 t 只看得见自己这一个词元：预测下一个字只能靠\"当前是哪个字\"，和二元模型 (bigram) 一样。",
         "回答的第一个字只取决于 <|assistant|>，所以每个问题得到的是同一个回答；加法题的两个数它根本看不见。",
         "参数多少不说明作用大小：注意力是词元之间唯一的通道，前馈网络只在每个位置上各自加工。")),
    Lab("user-loss", "损失也算用户的话 (loss on user tokens)", "03_chat_format.md",
        "训练的标签不再只有助手的回答：用户说的话也要学着预测。验证损失仍然只算助手的回答。",
        Variant(objective=broken.EveryTokenLoss()),
        "验证损失只算助手的回答。用户的话也拿来学，同样的步数，助手的回答会学得更好吗？",
        better_or_not("会更好：要学的词元多了，信号更多（验证损失低 0.05 以上）",
                      "不会更好：差不多，或者更差"),
        "B",
        ("用户的问题大多猜不到（\"23加58\"里的两个数是随机的）：这部分损失又大又降不下去，却占去了每一步梯度的一块。",
         "量出来（docs/zh/labs.md）：助手回答的验证损失有的种子差不多、有的更高，没有一个种子更好。",
         "损失掩码让模型只学要它说的话，不为猜不到的东西花力气；第 3 章 render_conversation 给出的 labels 就是这张掩码。")),
    Lab("lr-x10", "学习率 ×10、不预热 (LR ×10, no warm-up)", "07_training.md",
        f"学习率从 {QUICKSTART_LR:g} 提到 {10 * QUICKSTART_LR:g}，第一步就用满（warmup_steps=0）；梯度裁剪还在。",
        Variant(train={"lr": 10 * QUICKSTART_LR, "warmup_steps": 0}),
        "学习率大了 10 倍，第一步就用满。和对照组比：",
        (better("学得更快：步子大，同样的步数走得更远"),
         Choice("训练乱掉：验证损失高出 0.5 以上，留出的加法 < 10%",
                "实验组验证损失 > 对照组 + 0.5，且实验组加法 < 10%",
                lambda b, v: v.val_loss > b.val_loss + 0.5 and v.sums < 0.10),
         Choice("差不多：AdamW 会自己调好步长", SIMILAR_RULE, similar)),
        "B",
        ("AdamW 每一步把每个参数挪动大约一个学习率那么远：0.03 的步子，对 0.02 左右的初始权重来说太大了。",
         "第一步就用满，一开始的梯度方向又乱，模型被推到一个很难爬出来的地方，损失停在高处，回答成了重复的字。",
         "预热 (warm-up) 让学习率从 0 慢慢升上来：先用小步子找到方向，再迈大步。快速上手的 0.003 已经接近能用的上限。")),
    Lab("lr-div10", "学习率 ÷10 (LR ÷ 10)", "07_training.md",
        f"学习率从 {QUICKSTART_LR:g} 降到 {QUICKSTART_LR / 10:g}；预热、裁剪、步数都不变。",
        Variant(train={"lr": QUICKSTART_LR / 10}),
        "步子小了 10 倍，同样的步数，和对照组比：",
        (better("更好：步子小，走得稳"),
         Choice("学得慢得多：验证损失高出 0.2 以上，留出的加法比对照组低 50 个百分点以上",
                "实验组验证损失 > 对照组 + 0.2，且实验组加法 < 对照组 − 50 个百分点",
                lambda b, v: v.val_loss > b.val_loss + 0.2 and v.sums < b.sums - 0.50),
         Choice("差不多：AdamW 会自己调好步长", SIMILAR_RULE, similar)),
        "B",
        ("AdamW 的每一步大约把每个参数挪动一个学习率那么远：步子小 10 倍，同样的步数走过的路就短得多。",
         "预算用完时损失还在往下走：20 个固定聊天问题几乎一个也答不对，加法更没成形。",
         "学习率有一个合适的范围：太大（lr-x10）训练乱掉，太小在预算里学不完；先量一量再定。")),
    Lab("no-clip", "不裁剪梯度 (no gradient clipping)", "07_training.md",
        f"max_grad_norm 从 1 改成 1e9（永远不会触发）。快速上手的学习率 {QUICKSTART_LR:g} 对 AdamW 来说已经很高"
        f"（常见的是 1e-4 到 1e-3；再大 10 倍就训练不动，见 lr-x10）。",
        Variant(train={"max_grad_norm": 1e9}),
        "在这么高的学习率下拿掉梯度裁剪，和对照组比：",
        val_choices("更好：不裁剪，梯度的信息一点不丢（验证损失低 0.05 以上）",
                    "更差：大梯度把模型打乱（验证损失高 0.05 以上）",
                    "差不多（相差不到 0.05）"),
        "C",
        ("这个配方里梯度的总长度开头约 2、之后在 1 上下：裁剪常常触发，但每次只把这一步缩小一两倍。",
         "AdamW 的步长本来就按梯度平方的滑动平均缩放：梯度整体大一两倍，步子几乎一样大，所以裁不裁结果差不多。",
         "裁剪是安全带：防的是偶尔一次大几十倍的梯度（怪样本、更深的模型、更高的学习率）；这次没出事，不等于可以不系。")),
    Lab("untied", "输出层不共享词嵌入 (untied embeddings)", "04_embeddings_rope.md",
        "输出层换成一个单独的 (V, C) 矩阵，不再与输入的词嵌入共享：参数多了约 19 万个（多三成）。",
        Variant(make_model=broken.UntiedModel),
        "参数多了三成，验证损失会更低吗？",
        better_or_not("会：参数多了，验证损失低 0.05 以上", "不会：差不多，或者更高"),
        "B",
        ("共享时，一个字在输入端和输出端用同一个向量：每次读到它、每次预测它，训练的都是这同一行。",
         "解绑后多了 19 万个参数，两张表各学各的；量出来验证损失差不多或略高，没有一个种子更低。",
         "所以小模型常常共享：省下三成参数，什么也不丢；大模型里词表矩阵只占一小部分，有的就不共享（如 Llama 2）。")),
    Lab("one-layer", "只要一层 (one layer instead of two)", "06_transformer_block.md",
        "n_layers 从 2 改成 1：少一个 Block（参数少约三成）。",
        Variant(model={"n_layers": 1}),
        "少了一层，和对照组比：",
        (Choice("差不多：一层已经够这点语料用了", SIMILAR_RULE, similar),
         Choice("更差，加法尤其差：验证损失高出 0.05 以上，加法低 10 个百分点以上",
                "实验组验证损失 > 对照组 + 0.05，且实验组加法 < 对照组 − 10 个百分点",
                lambda b, v: v.val_loss > b.val_loss + 0.05 and v.sums < b.sums - 0.10),
         better("更好：模型小，同样的步数学得更快")),
        "B",
        ("只有一层时，每个位置只能做一次注意力：看一眼前文，然后直接预测。",
         "加法要先找到两个数的同一位、再处理进位，是\"看了再看\"的事：第二层能读第一层整理好的结果，一层做不到。",
         "层数是\"能做几步推理\"，宽度是\"每一步记得多少\"：同样的参数，深一点常常更会组合。")),
]
LABS = {lab.name: lab for lab in LABS_LIST}
