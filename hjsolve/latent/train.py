"""Training the LoRA adapters: relative entropy per unit α through the chain, accelerate, checkpoints.

Each step draws a batch of chains (x_0 and the per-step noise from a generator seeded by
(seed, process, step), so a resumed run draws exactly what the uninterrupted one would), runs the
fine-tuned chain with gradient (`sampler.run_chain`), decodes x_N, and minimises
-mean[r(images)/α - Σ_t KL_t] (`hjsolve.neural.objectives.relative_entropy_objective`, the same
function the low-dimensional solver uses). Gradients reach the LoRA weights only.

accelerate: ``mixed_precision`` (fp16 with loss scaling, or bf16) through `Accelerator.autocast`
and `Accelerator.backward`; with several processes (``accelerate launch``) each draws its own
chains and the LoRA gradients are averaged before the step. A checkpoint (``torch.save``, written
atomically, by the main process) holds the LoRA weights, the optimiser (and loss-scaler) state,
the step, the elapsed time, the history and the options that define the run.
"""
import os
import time
from pathlib import Path

import numpy as np
import torch

from ..errors import HJSolveError
from ..neural.objectives import relative_entropy_objective
from ..neural.rewards import torch_effective
from ..progress import progress
from .lora import load_lora_state, lora_parameters, lora_state
from .sampler import run_chain

#: Options that define a run: a checkpoint written with other values is refused.
RUN_KEYS = ("train_steps", "batch_size", "lr", "grad_clip", "lora_rank", "lora_targets", "backprop_steps",
            "mixed_precision", "seed")


def batch_seed(seed, process, step):
    """An integer seed for (seed, process index, step), from numpy's SeedSequence."""
    return int(np.random.SeedSequence([int(seed), int(process), int(step)]).generate_state(1)[0])


class LatentTrainer:
    """Trains the LoRA adapters of a `hjsolve.latent.solution.LatentSolution`."""

    def __init__(self, solution):
        self.solution = solution
        self.options = opts = solution.options
        self.accelerator = solution.accelerator
        self.unet = solution.model.unet
        self.params = list(lora_parameters(self.unet).values())
        self.optimizer = self.accelerator.prepare(torch.optim.Adam(self.params, lr=opts["lr"]))
        self.prompts = solution.problem.pretrained.prompts_for(opts["batch_size"])
        self.step = 0
        self.elapsed = 0.0
        self.history = []  # (step, elapsed_s, loss, reward, kl)

    # ----- checkpoints -------------------------------------------------------------------------
    def run_config(self):
        return {k: self.options[k] for k in RUN_KEYS}

    def state(self):
        scaler = self.accelerator.scaler
        return {"lora": lora_state(self.unet), "optimizer": self.optimizer.state_dict(), "step": self.step,
                "elapsed": self.elapsed, "history": list(self.history), "config": self.run_config(),
                "scaler": scaler.state_dict() if scaler is not None else None}

    def save(self, path):
        if self.accelerator.is_main_process:
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            torch.save(self.state(), tmp)
            os.replace(tmp, path)
        self.accelerator.wait_for_everyone()

    def load(self, path):
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:  # a truncated or foreign file
            raise HJSolveError(f"solver.neural.latent.checkpoint: cannot read {path} ({exc})") from None
        if not isinstance(state, dict) or state.get("config") != self.run_config():
            saved = state.get("config", {}) if isinstance(state, dict) else {}
            diff = [k for k in RUN_KEYS if saved.get(k) != self.options[k]]
            raise HJSolveError(f"solver.neural.latent.checkpoint: {path} belongs to another run (different "
                               f"{', '.join(diff)}); remove it or change the checkpoint path")
        load_lora_state(self.unet, state["lora"])
        self.optimizer.load_state_dict(state["optimizer"])
        if state["scaler"] is not None and self.accelerator.scaler is not None:
            self.accelerator.scaler.load_state_dict(state["scaler"])
        self.step, self.elapsed, self.history = state["step"], state["elapsed"], list(state["history"])

    # ----- training ----------------------------------------------------------------------------
    def loss(self):
        """(loss, stats) of one batch: stats hold E r, E Σ KL_t and E r/α."""
        sol, opts = self.solution, self.options
        gen = torch.Generator().manual_seed(batch_seed(opts["seed"], self.accelerator.process_index, self.step))
        x0, noise = sol.draw(opts["batch_size"], gen)
        cond = sol.conditioning(self.prompts)
        with self.accelerator.autocast():
            out = run_chain(sol.schedule, self.unet, cond, x0, noise, control=True, grad=True,
                            backprop_steps=opts["backprop_steps"], checkpointing=opts["gradient_checkpointing"])
            r = sol.reward(sol.model.decode(out["x"]), self.prompts).float()
        loss, stats = relative_entropy_objective(torch_effective(sol.problem.divergence, r), out["kl"])
        return loss, {**stats, "reward": float(r.detach().mean())}

    def train(self, checkpoint=None, checkpoint_every=25, stop_after=0, callback=None):
        """Run to ``train_steps`` (resuming from ``checkpoint`` if it exists); see `hjsolve.neural.train`.

        Returns True when the run is complete.
        """
        opts, acc = self.options, self.accelerator
        if checkpoint and Path(checkpoint).exists():
            self.load(checkpoint)
        self.unet.train()
        done_here = 0
        bar = progress(total=opts["train_steps"], initial=self.step, desc="neural (latent): relative entropy")
        try:
            while self.step < opts["train_steps"]:
                if stop_after and done_here >= stop_after:
                    break
                start = time.perf_counter()
                self.optimizer.zero_grad(set_to_none=True)
                loss, stats = self.loss()
                if not torch.isfinite(loss):
                    raise HJSolveError(f"neural: the loss became {float(loss)} at step {self.step}; "
                                       "lower solver.neural.latent.lr")
                acc.backward(loss)
                if acc.num_processes > 1:
                    for p in self.params:
                        p.grad = acc.reduce(p.grad, reduction="mean")
                if opts["grad_clip"] > 0:
                    acc.clip_grad_norm_(self.params, opts["grad_clip"])
                self.optimizer.step()
                self.step += 1
                done_here += 1
                self.elapsed += time.perf_counter() - start
                self.history.append((self.step, self.elapsed, float(loss.detach()), stats["reward"], stats["kl"]))
                bar.update(1)
                bar.set_postfix(loss=f"{float(loss.detach()):.4g}", reward=f"{stats['reward']:.4g}", kl=f"{stats['kl']:.4g}")
                if checkpoint and (self.step % checkpoint_every == 0 or self.step == opts["train_steps"]):
                    self.save(checkpoint)
                if callback is not None:
                    callback(self)
        finally:
            bar.close()
            self.unet.eval()
        if checkpoint and done_here and self.step % checkpoint_every:
            self.save(checkpoint)
        return self.step >= opts["train_steps"]
