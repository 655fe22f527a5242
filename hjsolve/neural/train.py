"""The training loop: Adam, a geometric learning-rate decay, a progress bar, resumable checkpoints.

A checkpoint (``torch.save``, written atomically) holds the network and optimiser states, the
step, the training generator's RNG state, the elapsed training time, the loss history, the
options that define the run and, for bridge matching, its pair buffer and running statistics.
Resuming from it continues the *same* run: the final parameters equal those of an uninterrupted
run (tests/test_neural.py checks this bit for bit).
"""
import os
import time
from pathlib import Path

import numpy as np
import torch

from ..errors import HJSolveError
from ..progress import progress
from .objectives import BridgeMatching, adjoint_matching_loss, relative_entropy_loss
from .paths import time_grid

#: Options that define a run: a checkpoint written with other values is refused.
RUN_KEYS = ("objective", "train_steps", "batch_size", "steps", "lr", "lr_final", "hidden", "layers",
            "frequencies", "network", "reward_skip", "reward_transport", "score_feature", "weighting",
            "segments", "seed", "dtype", "grad_clip", "bridge_points", "bridge_times", "bridge_buffer",
            "bridge_bins", "bridge_reuse", "bridge_rao_blackwell", "ema")


def learning_rate(options, step):
    """lr · (lr_final/lr)^(step/train_steps): geometric decay from ``lr`` to ``lr_final``."""
    frac = step / max(options["train_steps"], 1)
    return options["lr"] * (options["lr_final"] / options["lr"]) ** frac


class Trainer:
    """Trains ``net`` for ``problem`` with the options of `hjsolve.solvers.neural`."""

    def __init__(self, problem, sampler, net, options, reward_eff=None):
        self.problem, self.sampler, self.net, self.options = problem, sampler, net, options
        self.reward_eff = reward_eff
        self.coeffs = sampler.grid(time_grid(0.0, sampler.T, options["steps"], sampler.sde))
        self.optimizer = torch.optim.Adam(net.parameters(), lr=options["lr"])
        self.generator = torch.Generator(device="cpu").manual_seed(int(options["seed"]))
        self.step = 0
        self.elapsed = 0.0
        self.history = []  # (step, elapsed_s, loss, reward, kl)
        self.noise_std = problem.noise_std()
        self.bridge = None  # the bridge-matching buffer and statistics, part of the checkpoint
        # the exponential moving average of the parameters (``ema``), part of the checkpoint
        self.average = [p.detach().clone() for p in net.parameters()] if options["ema"] > 0 else None
        if options["objective"] == "bridge_matching":
            self.bridge = BridgeMatching(sampler, self.coeffs, problem, options)

    # ----- checkpoints -------------------------------------------------------------------------
    def run_config(self):
        return {k: self.options[k] for k in RUN_KEYS}

    def state(self):
        return {"net": self.net.state_dict(), "optimizer": self.optimizer.state_dict(), "step": self.step,
                "rng": self.generator.get_state(), "elapsed": self.elapsed, "history": list(self.history),
                "config": self.run_config(),
                "objective_state": self.bridge.state_dict() if self.bridge is not None else None,
                "average": [p.clone() for p in self.average] if self.average is not None else None}

    def save(self, path):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        torch.save(self.state(), tmp)
        os.replace(tmp, path)

    def load(self, path):
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:  # a truncated or foreign file
            raise HJSolveError(f"solver.neural.checkpoint: cannot read {path} ({exc})") from None
        if state.get("config") != self.run_config():
            diff = [k for k in RUN_KEYS if state.get("config", {}).get(k) != self.options[k]]
            raise HJSolveError(f"solver.neural.checkpoint: {path} belongs to another run (different {', '.join(diff)}); "
                               "remove it or change the checkpoint path")
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["rng"])
        self.step, self.elapsed, self.history = state["step"], state["elapsed"], list(state["history"])
        if self.bridge is not None:
            self.bridge.load_state_dict(state["objective_state"])
        if self.average is not None:
            self.average = [p.clone() for p in state["average"]]

    # ----- training ----------------------------------------------------------------------------
    def batch(self):
        """Initial points (n, d) from p_noise and the Euler noise (N, n, d), from the run's generator."""
        n, d, N = self.options["batch_size"], self.sampler.dimension, len(self.coeffs.times)
        dtype = self.sampler.dtype
        y0 = self.noise_std * torch.randn(n, d, generator=self.generator, dtype=dtype)
        noise = torch.randn(N, n, d, generator=self.generator, dtype=dtype)
        return y0.to(self.sampler.device), noise.to(self.sampler.device)

    def loss(self):
        y0, noise = self.batch()
        if self.options["objective"] == "relative_entropy":
            return relative_entropy_loss(self.coeffs, self.net, self.reward_eff, y0, noise, self.options["segments"])
        if self.options["objective"] == "bridge_matching":
            return self.bridge.loss(self.net, y0, noise, self.generator, self.step % self.options["bridge_reuse"] == 0)
        return adjoint_matching_loss(self.coeffs, self.net, self.problem, y0, noise, self.options["weighting"])

    def update_average(self):
        """Exponential moving average of the parameters, decay min(ema, (1 + k)/(10 + k)) at step k
        (the warm-up forgets the initial weights in short runs); at the last step the network
        takes the averaged parameters, which are what the trained solution evaluates."""
        decay = min(self.options["ema"], (1.0 + self.step) / (10.0 + self.step))
        with torch.no_grad():
            params = list(self.net.parameters())
            for avg, p in zip(self.average, params):
                avg.mul_(decay).add_(p.detach(), alpha=1.0 - decay)
            if self.step >= self.options["train_steps"]:
                for avg, p in zip(self.average, params):
                    p.copy_(avg)

    def train(self, checkpoint=None, checkpoint_every=50, stop_after=0, callback=None):
        """Run to ``train_steps`` (resuming from ``checkpoint`` if it exists).

        stop_after > 0 stops this call after that many steps, as if the process were killed
        (the checkpoint is written first). callback(trainer) runs after every step.
        Returns True when the run is complete.
        """
        opts = self.options
        if checkpoint and Path(checkpoint).exists():
            self.load(checkpoint)
        done_here = 0
        bar = progress(total=opts["train_steps"], initial=self.step, desc=f"neural: {opts['objective']}")
        try:
            while self.step < opts["train_steps"]:
                if stop_after and done_here >= stop_after:
                    break
                start = time.process_time()
                for group in self.optimizer.param_groups:
                    group["lr"] = learning_rate(opts, self.step)
                self.optimizer.zero_grad(set_to_none=True)
                loss, stats = self.loss()
                if not torch.isfinite(loss):
                    raise HJSolveError(f"neural: the loss became {float(loss)} at step {self.step}; lower solver.neural.lr")
                loss.backward()
                if opts["grad_clip"] > 0:
                    torch.nn.utils.clip_grad_norm_(self.net.parameters(), opts["grad_clip"])
                self.optimizer.step()
                self.step += 1
                if self.average is not None:
                    self.update_average()
                done_here += 1
                self.elapsed += time.process_time() - start
                reward = float(np.mean(self.problem.reward(stats["y"].double().cpu().numpy())))
                loss = loss.detach()
                self.history.append((self.step, self.elapsed, float(loss), reward, stats["kl"]))
                bar.update(1)
                bar.set_postfix(loss=f"{float(loss):.4g}", reward=f"{reward:.4g}", kl=f"{stats['kl']:.4g}")
                if checkpoint and (self.step % checkpoint_every == 0 or self.step == opts["train_steps"]):
                    self.save(checkpoint)
                if callback is not None:
                    callback(self)
        finally:
            bar.close()
        if checkpoint and done_here and self.step % checkpoint_every:
            self.save(checkpoint)
        return self.step >= opts["train_steps"]
