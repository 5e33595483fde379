"""过拟合警报与早停 (overfitting guard and early stopping)。

过拟合 (overfitting)：模型开始背训练集，训练损失还在降，没见过的验证集上的损失却在升。
OverfitGuard 看每一次验证的 (验证损失, 这段时间的平均训练损失)：
- 验证损失连续 rises 次高于最低点、同时训练损失在降 → 给出一句带数字的中文警告（每个最低点只说一次）；
- 验证损失连续 patience 次没有创新低 → should_stop，训练循环提前停下 (early stopping)。
  最好的模型早已存在 best/，停下不丢任何东西，只省下时间。patience = 0 表示不早停。
"""
from __future__ import annotations


class OverfitGuard:
    def __init__(self, rises: int = 3, patience: int = 5, keeps_best: bool = True):
        self.rises, self.patience = rises, patience
        self.keeps_best = keeps_best   # 最低点的模型是否另存在 best/（--keep-best）：消息里说它在哪
        self.points: list[dict] = []   # 每次验证一条：step, epoch, val_loss, train_loss
        self.best_index = -1
        self.warned = False            # 这一段上升已经警告过

    @property
    def best(self) -> dict | None:
        return self.points[self.best_index] if self.best_index >= 0 else None

    @property
    def since_best(self) -> int:
        """最好的那次之后，又验证了几次（都没有更好）。"""
        return len(self.points) - 1 - self.best_index if self.best_index >= 0 else 0

    @property
    def where_best(self) -> str:
        """最好的模型在哪：写进警告、早停消息和 report.md。"""
        if self.keeps_best:
            return f"最好的模型（第 {self.best['step']} 步）保存在 best/，chat / eval 默认用它。"
        return "这次只存了训练结束时的模型 last/（--keep-best false）。"

    @property
    def should_stop(self) -> bool:
        return self.patience > 0 and self.since_best >= self.patience

    def observe(self, step: int, epoch: int, val_loss: float, train_loss: float | None) -> tuple[bool, str | None]:
        """记下一次验证。返回 (是不是新的最好, 过拟合警告或 None)。epoch 从 0 数。"""
        is_best = self.best is None or val_loss < self.best["val_loss"]
        self.points.append({"step": step, "epoch": epoch, "val_loss": val_loss, "train_loss": train_loss})
        if is_best:
            self.best_index, self.warned = len(self.points) - 1, False
            return True, None
        return False, self.warning()

    def warning(self) -> str | None:
        """验证损失已经连续 rises 次高于最低点、训练损失却比那时更低：返回警告（每个最低点只警告一次）。

        不要求"一次比一次高"：验证损失有噪声，上上下下地升也是升；比的是最低点之后的每一次。
        """
        best, last = self.best, self.points[-1]
        if self.warned or self.since_best < self.rises:
            return None
        if None in (best["train_loss"], last["train_loss"]) or last["train_loss"] >= best["train_loss"]:
            return None  # 训练损失也没降：是学不动了（学习率、模型太小），不是过拟合
        self.warned = True
        return (f"过拟合警告 (overfitting)：从第 {best['epoch'] + 1} 个 epoch（第 {best['step']} 步）起验证损失上升，"
                f"连续 {self.since_best} 次高于最低点 {best['val_loss']:.3f}（现在 {last['val_loss']:.3f}），"
                f"训练损失却从 {best['train_loss']:.3f} 降到 {last['train_loss']:.3f}：模型在背训练集；"
                + self.where_best)

    def stop_message(self) -> str:
        best = self.best
        return (f"早停 (early stopping)：验证损失已经连续 {self.since_best} 次没有低于第 {best['step']} 步的 "
                f"{best['val_loss']:.3f}，提前结束训练。{self.where_best}（不想早停：--early-stop-patience 0）")

    def state_dict(self) -> dict:
        return {"points": self.points, "best_index": self.best_index, "warned": self.warned}

    def load_state_dict(self, state: dict) -> None:
        self.points = list(state.get("points", []))
        self.best_index = state.get("best_index", len(self.points) - 1 if self.points else -1)
        self.warned = state.get("warned", False)
