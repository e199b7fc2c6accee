"""The cases in PyTorch: the architectures of jaxmodels' models, written here, trained eagerly or torch.compile'd.

Initialisation follows the jaxmodels model of each case: PyTorch's defaults for the MNIST-1D models (jaxmodels'
`torch_init`), N(0, 0.02) for the transformers (residual projections scaled by 1/sqrt(2 x layers) in the GPT),
He fan-out normal for the ResNet's convolutions. The GPT is nanoGPT's architecture (fused QKV projection,
`scaled_dot_product_attention`, tied output layer) with jaxmodels' choices where they differ from nanoGPT's
CPU recipe: biases on, tanh GELU. Optimizers: torch's Adam/AdamW/SGD with weight decay on matrices only, global
gradient-norm clipping and the jaxmodels schedule (set per step, as nanoGPT does).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from peers.optim_settings import learning_rate


class MNIST1DCNN(nn.Module):
    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.convs = nn.ModuleList(
            [
                nn.Conv1d(1, channels, 5, stride=2, padding=1),
                nn.Conv1d(channels, channels, 3, stride=2, padding=1),
                nn.Conv1d(channels, channels, 3, stride=2, padding=1),
            ]
        )
        self.out = nn.Linear(5 * channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x[:, None, :]
        for conv in self.convs:
            h = F.relu(conv(h))
        return self.out(h.flatten(1))


class MNIST1DMLP(nn.Module):
    def __init__(self, hidden: int, num_classes: int):
        super().__init__()
        self.fc1, self.fc2, self.out = nn.Linear(40, hidden), nn.Linear(hidden, hidden), nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.fc1(x))
        return self.out(h + F.relu(self.fc2(h)))


class MNIST1DGRU(nn.Module):
    def __init__(self, hidden: int, num_classes: int):
        super().__init__()
        self.gru = nn.GRU(1, hidden, batch_first=True, bidirectional=True)
        self.out = nn.Linear(40 * 2 * hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs, _ = self.gru(x[..., None])
        return self.out(outputs.flatten(1))


class CharRNN(nn.Module):
    def __init__(self, vocab_size: int, embed_dim: int, hidden_size: int, num_layers: int, cell: str):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.rnn = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[cell](
            embed_dim, hidden_size, num_layers, batch_first=True
        )
        self.out = nn.Linear(hidden_size, vocab_size)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h, _ = self.rnn(self.embed(tokens))
        return self.out(h)


class CausalSelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float, bias: bool = True):
        super().__init__()
        self.heads, self.c_attn, self.c_proj = heads, nn.Linear(dim, 3 * dim, bias), nn.Linear(dim, dim, bias)
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, time, dim = x.shape
        q, k, v = (
            t.view(batch, time, self.heads, dim // self.heads).transpose(1, 2) for t in self.c_attn(x).split(dim, 2)
        )
        dropout = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True)
        return self.c_proj(y.transpose(1, 2).reshape(batch, time, dim))


class GPTBlock(nn.Module):
    """Pre-LN: x + Dropout(f(LayerNorm(x))) for the attention and the MLP, dropout as in nanoGPT and jaxmodels.

    `bias` (Linear and LayerNorm biases) and `gelu` ('tanh' or 'none', i.e. exact) default to jaxmodels' choices;
    nanoGPT's shakespeare_char recipe is bias=False, gelu='none'.
    """

    def __init__(self, dim: int, heads: int, dropout: float, bias: bool = True, gelu: str = "tanh"):
        super().__init__()
        self.ln_1, self.attn = nn.LayerNorm(dim, bias=bias), CausalSelfAttention(dim, heads, dropout, bias)
        self.ln_2, self.drop = nn.LayerNorm(dim, bias=bias), nn.Dropout(dropout)
        self.mlp = nn.Sequential(
            nn.Linear(dim, 4 * dim, bias), nn.GELU(approximate=gelu), nn.Linear(4 * dim, dim, bias)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.ln_1(x)))
        return x + self.drop(self.mlp(self.ln_2(x)))


class GPT(nn.Module):
    """nanoGPT's model (Karpathy), rewritten: pre-LN blocks, learned positions, tied output layer."""

    def __init__(
        self,
        vocab_size: int,
        block_size: int,
        num_layers: int,
        num_heads: int,
        embed_dim: int,
        dropout: float = 0.0,
        bias: bool = True,
        gelu: str = "tanh",
    ):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab_size, embed_dim), nn.Embedding(block_size, embed_dim)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList([GPTBlock(embed_dim, num_heads, dropout, bias, gelu) for _ in range(num_layers)])
        self.ln_f = nn.LayerNorm(embed_dim, bias=bias)
        _normal_init(self)
        for name, parameter in self.named_parameters():
            if name.endswith("c_proj.weight") or name.endswith("mlp.2.weight"):
                nn.init.normal_(parameter, std=0.02 / math.sqrt(2 * num_layers))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.drop(self.wte(tokens) + self.wpe(torch.arange(tokens.shape[1], device=tokens.device)))
        for block in self.blocks:
            h = block(h)
        return self.ln_f(h) @ self.wte.weight.T


class BertMLM(nn.Module):
    """BERT (post-LN, exact GELU, LayerNorm epsilon 1e-12) with its masked-LM head and tied decoder."""

    def __init__(self, vocab_size: int, max_length: int, num_segments: int, num_layers: int, num_heads: int,
                 embed_dim: int, mlp_dim: int):  # fmt: skip
        super().__init__()
        self.token, self.position = nn.Embedding(vocab_size, embed_dim), nn.Embedding(max_length, embed_dim)
        self.segment = nn.Embedding(num_segments, embed_dim)
        self.norm = nn.LayerNorm(embed_dim, eps=1e-12)
        layer = dict(dim_feedforward=mlp_dim, dropout=0.0, activation="gelu", batch_first=True, layer_norm_eps=1e-12)
        self.blocks = nn.ModuleList(
            [nn.TransformerEncoderLayer(embed_dim, num_heads, **layer) for _ in range(num_layers)]
        )
        self.transform, self.transform_norm = nn.Linear(embed_dim, embed_dim), nn.LayerNorm(embed_dim, eps=1e-12)
        self.output_bias = nn.Parameter(torch.zeros(vocab_size))
        _normal_init(self)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        h = self.norm(self.token(tokens) + self.position(positions) + self.segment(torch.zeros_like(tokens)))
        for block in self.blocks:
            h = block(h)
        h = self.transform_norm(F.gelu(self.transform(h)))
        return h @ self.token.weight.T + self.output_bias


def _normal_init(model: nn.Module) -> None:
    """jaxmodels' transformer init: N(0, 0.02) for every matrix and embedding, zero biases, unit LayerNorm scales."""
    for name, parameter in model.named_parameters():
        if parameter.dim() >= 2:
            nn.init.normal_(parameter, std=0.02)
        elif "norm" not in name and not name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
            nn.init.zeros_(parameter)


class CIFARBlock(nn.Module):
    """He et al. (2016) section 4.2 basic block with the option-A shortcut (subsample, zero-pad channels)."""

    def __init__(self, inputs: int, filters: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, filters, 3, stride, 1, bias=False)
        self.conv2 = nn.Conv2d(filters, filters, 3, 1, 1, bias=False)
        self.bn1, self.bn2 = nn.BatchNorm2d(filters), nn.BatchNorm2d(filters)
        self.stride, self.extra = stride, filters - inputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        shortcut = x[:, :, :: self.stride, :: self.stride]
        if self.extra:
            shortcut = F.pad(shortcut, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))
        return F.relu(out + shortcut)


class CIFARResNet(nn.Module):
    def __init__(self, depth: int, num_classes: int, channels: int):
        super().__init__()
        blocks, inputs, layers = (depth - 2) // 6, 16, []
        for stage, filters in enumerate((16, 32, 64)):
            for block in range(blocks):
                layers.append(CIFARBlock(inputs, filters, 2 if stage > 0 and block == 0 else 1))
                inputs = filters
        self.stem, self.bn = nn.Conv2d(channels, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16)
        self.layers, self.out = nn.Sequential(*layers), nn.Linear(64, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.layers(F.relu(self.bn(self.stem(x)))).mean((2, 3)))


class Bottleneck(nn.Module):
    """He et al. (2016) Fig. 5 right, stride on the 3x3 convolution ("v1.5", as torchvision and jaxmodels)."""

    def __init__(self, inputs: int, filters: int, stride: int):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(inputs, filters, 1, bias=False), nn.BatchNorm2d(filters)
        self.conv2, self.bn2 = nn.Conv2d(filters, filters, 3, stride, 1, bias=False), nn.BatchNorm2d(filters)
        self.conv3, self.bn3 = nn.Conv2d(filters, 4 * filters, 1, bias=False), nn.BatchNorm2d(4 * filters)
        self.shortcut = nn.Identity()
        if stride != 1 or inputs != 4 * filters:
            self.shortcut = nn.Sequential(
                nn.Conv2d(inputs, 4 * filters, 1, stride, bias=False), nn.BatchNorm2d(4 * filters)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        return F.relu(self.bn3(self.conv3(out)) + self.shortcut(x))


class BottleneckResNet(nn.Module):
    """The ImageNet ResNet of jaxmodels' `resnet` family with bottleneck blocks (ResNet-50: stages 3, 4, 6, 3)."""

    def __init__(self, stage_sizes: tuple[int, ...], num_classes: int, num_filters: int = 64):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, num_filters, 7, 2, 3, bias=False), nn.BatchNorm2d(num_filters), nn.ReLU(),
            nn.MaxPool2d(3, 2, 1),
        )  # fmt: skip
        layers, inputs = [], num_filters
        for stage, blocks in enumerate(stage_sizes):
            filters = num_filters * 2**stage
            for block in range(blocks):
                layers.append(Bottleneck(inputs, filters, 2 if stage > 0 and block == 0 else 1))
                inputs = 4 * filters
        self.layers, self.out = nn.Sequential(*layers), nn.Linear(inputs, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.layers(self.stem(x)).mean((2, 3)))


def build_model(case: str, model: dict[str, Any], batches: dict[str, np.ndarray]) -> nn.Module:
    """The case's network with the jaxmodels model's sizes (`model`: the resolved model fields)."""
    if case == "mnist1d_cnn":
        return MNIST1DCNN(model["channels"], model["num_classes"])
    if case == "mnist1d_mlp":
        return MNIST1DMLP(model["hidden"], model["num_classes"])
    if case == "mnist1d_gru":
        return MNIST1DGRU(model["hidden"], model["num_classes"])
    if case == "char_lstm":
        return CharRNN(
            model["vocab_size"], model["embed_dim"], model["hidden_size"], model["num_layers"], model["cell"]
        )
    if case == "char_gpt":
        sizes = ("vocab_size", "block_size", "num_layers", "num_heads", "embed_dim", "dropout")
        return GPT(*(model[key] for key in sizes))
    if case == "bert_mlm":
        sizes = ("vocab_size", "max_length", "num_segments", "num_layers", "num_heads", "embed_dim", "mlp_dim")
        return BertMLM(*(model[key] for key in sizes))
    if case == "cifar_resnet20":
        return CIFARResNet(model["depth"], model["num_classes"], batches["inputs"].shape[-1])
    raise ValueError(f"no PyTorch model for case {case!r}")


def loss_of(logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The task's loss: cross-entropy over examples, tokens, or the masked tokens (weighted) of an MLM batch."""
    if "label" in batch:
        return F.cross_entropy(logits, batch["label"])
    losses = F.cross_entropy(logits.flatten(0, 1), batch["targets"].flatten(), reduction="none")
    if "target_weights" in batch:
        weights = batch["target_weights"].flatten()
        return (losses * weights).sum() / weights.sum().clamp(min=1)
    return losses.mean()


def make_optimizer(model: nn.Module, optimizer: dict[str, Any]) -> torch.optim.Optimizer:
    """Adam (L2), AdamW (decoupled) or SGD (L2, momentum) with weight decay on matrices only, as jaxmodels.optim."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": optimizer["weight_decay"]}, {"params": rest, "weight_decay": 0.0}]
    rate = optimizer["learning_rate"]
    if optimizer["name"] == "sgd":
        return torch.optim.SGD(groups, rate, momentum=optimizer["momentum"], nesterov=optimizer["nesterov"])
    kind = torch.optim.AdamW if optimizer["name"] == "adamw" else torch.optim.Adam
    return kind(groups, rate, betas=(optimizer["b1"], optimizer["b2"]), eps=optimizer["eps"])


class TorchRunner:
    """One case in PyTorch on the CPU; `run(n)` trains n steps on the shared batches (eager or compiled)."""

    def __init__(self, case: str, batches: dict[str, np.ndarray], config: dict[str, Any], compiled: bool):
        torch.manual_seed(0)
        self.model = build_model(case, config["model"], batches)
        self.forward = torch.compile(self.model) if compiled else self.model
        self.optimizer = make_optimizer(self.model, config["optimizer"])
        self.settings, self.num_steps = config["optimizer"], config["train"]["num_steps"]
        if batches["inputs"].ndim == 5:  # (batches, batch, H, W, C) images -> NCHW
            batches = {**batches, "inputs": batches["inputs"].transpose(0, 1, 4, 2, 3)}
        self.batches = [
            {key: as_tensor(value[i]) for key, value in batches.items()} for i in range(len(batches["inputs"]))
        ]
        self.step = 0
        self.run(1)

    def run(self, steps: int) -> None:
        clip = self.settings["grad_clip_norm"]
        for _ in range(steps):
            batch = self.batches[self.step % len(self.batches)]
            for group in self.optimizer.param_groups:
                group["lr"] = learning_rate(self.settings, self.num_steps, self.step)
            loss = loss_of(self.forward(batch["inputs"]), batch)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip:
                nn.utils.clip_grad_norm_(self.model.parameters(), clip)
            self.optimizer.step()
            self.step += 1


def as_tensor(array: np.ndarray) -> torch.Tensor:
    """Integers as int64 (what embeddings and cross-entropy take), everything else as float32."""
    if np.issubdtype(array.dtype, np.integer) or array.dtype == bool:
        return torch.from_numpy(np.ascontiguousarray(array.astype(np.int64)))
    return torch.from_numpy(np.ascontiguousarray(array.astype(np.float32)))
