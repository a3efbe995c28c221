"""How the SFT loss averages over tokens (`loss_averaging`), and the trainers that do it.

`token` (our default): the mean over every trained token of the global batch, so a trajectory weighs by its
length: one with 30 times the trained tokens of a short text-only answer counts 30 times as much. TRL's SFTTrainer
does that over the micro-batches of one optimizer step only when Trainer counts the step's trained tokens, which
it does only for a model that declares it accepts loss kwargs; Qwen2.5-VL declares it does not, so each
micro-batch took its own token mean (with one-sample micro-batches, as in the 7B recipe, a per-sample mean).
`TokenMeanSFTTrainer` makes Trainer count them.
`sample` (the official trainer): each sample's mean token loss, averaged over the samples. The official
`sft_tooltrainer.py` took `sum(-logp * mask) / mask.sum()` per micro-batch of one sample and let Trainer divide
by the accumulation steps; `SampleMeanSFTTrainer` computes the same mean for micro-batches of any size:

    loss = mean over samples i of ( sum_t -log p(token_t) * mask_it / sum_t mask_it )

and leaves the accumulation scaling to Trainer (`loss_is_scaled_for_ga = False`), so a global batch of B samples
gives every sample the weight 1/B. Data parallelism averages the ranks' gradients, which keeps that weight.
"""
from __future__ import annotations

import torch
from trl import SFTTrainer


def sample_mean_loss(log_probs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over samples of each sample's mean negative log-probability on its trained positions.

    `log_probs` and `mask` are (batch, positions); a sample without trained positions contributes 0 to the sum
    and still counts in the mean (as a one-sample micro-batch without trained tokens would in the official code).
    """
    mask = mask.to(log_probs.dtype)
    per_sample = -(log_probs * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
    return per_sample.mean()


class TokenMeanSFTTrainer(SFTTrainer):
    """SFTTrainer with `loss_averaging: token` across gradient accumulation: Trainer counts the trained tokens of
    all of a step's micro-batches (`num_items_in_batch`), TRL divides each micro-batch's summed loss by that count,
    and Trainer, seeing the loss so scaled, does not divide it by the accumulation steps again. TRL's forward does
    not pass the count to the model, so the model's own `accepts_loss_kwargs` does not matter here."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.model_accepts_loss_kwargs = True


class SampleMeanSFTTrainer(SFTTrainer):
    """SFTTrainer with `loss_averaging: sample`; everything else (data, optimisation, TRL's training metrics) is
    TRL's. The forward is TRL's fused LM head (per-token log-probabilities, no full logits)."""

    loss_is_scaled_for_ga = False  # a per-micro-batch mean: Trainer divides it by the accumulation steps

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if return_outputs:
            raise ValueError("loss_averaging=sample computes the loss only (Pixel Reasoner SFT has no evaluation "
                             "loop); use loss_averaging=token to get model outputs from compute_loss")
        inputs["use_cache"] = False
        outputs = model(**inputs, fused_lm_head=True)
        loss = sample_mean_loss(outputs.log_probs, outputs.label_mask)
        self._log_token_metrics(outputs, inputs)
        return loss

    def _log_token_metrics(self, outputs, inputs) -> None:
        """The metrics TRL's own `compute_loss` logs (entropy, token accuracy, tokens seen), computed the same way."""
        mode = "train" if self.model.training else "eval"
        gather = self.accelerator.gather_for_metrics
        valid = gather(outputs.label_mask.sum()).sum()
        entropy = gather(outputs.entropy.detach().sum()).sum()
        correct = gather(outputs.is_top1.sum()).sum()
        self._metrics[mode]["entropy"].append((entropy / valid).item() if valid > 0 else 0.0)
        self._metrics[mode]["mean_token_accuracy"].append((correct / valid).item() if valid > 0 else 0.0)
        if mode == "train":
            self._total_train_tokens += gather(inputs["attention_mask"].sum()).sum().item() // self._tp_size
        self._metrics[mode]["num_tokens"] = [self._total_train_tokens]


def trainer_class(loss_averaging: str) -> type[SFTTrainer]:
    """The trainer for a `loss_averaging` setting ("token" or "sample", checked by SFTScriptArguments)."""
    return SampleMeanSFTTrainer if loss_averaging == "sample" else TokenMeanSFTTrainer
