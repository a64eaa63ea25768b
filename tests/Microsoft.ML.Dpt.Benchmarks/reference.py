#!/usr/bin/env python3
"""PyTorch eager reference for the Microsoft.ML.Dpt benchmark (issue 5).

Defines the same networks as the package (U-Net, U-ViT, SmallCnn, WRN-28-2: same layers, widths and parameter
counts, printed here and by the .NET program), the same training steps (diffusion step with flip, condition dropout,
ε loss, AdamW, global-norm clipping and EMA; FreeMatch step with batched weak/strong augmentation on the device) and
the same guided DPM-Solver++ sampler, and times them the same way: warm-up steps, then the median of timed steps,
each between two device synchronisations. Optimisers and clipping use PyTorch's own defaults (foreach kernels on
CUDA), as a PyTorch user would. Writes reference-results.json, which the .NET benchmark reads with --reference to
print one table with the ratio TorchSharp / PyTorch per row, and the model FLOP utilisation of each row against the
bf16 matmul rate measured here.

Usage: python3 reference.py [--device cuda|cpu] [--small] [--precision fp32,tf32,bf16] [--warmup N] [--repeats N]
                            [--output DIR] [--breakdown]
"""
import argparse
import json
import math
import os
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

NULL_CLASSES = 10


def attention(q, k, v):
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v)
    weights = (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(-1)   # PyTorch < 2.0 (local checks only)
    return weights @ v


def timestep_embedding(t, dim):
    half = dim // 2
    frequencies = torch.exp(torch.arange(half, dtype=torch.float32, device=t.device) * (-math.log(10000.0) / half))
    angles = t.float()[:, None] * frequencies[None]
    return torch.cat([angles.sin(), angles.cos()], 1)


def group_norm(c):
    return nn.GroupNorm(32 if c % 32 == 0 else 8 if c % 8 == 0 else 4 if c % 4 == 0 else 1, c)


# ---------------------------------------------------------------- U-Net (Models/Diffusion/UNet.cs)
class SelfAttention2d(nn.Module):
    def __init__(self, c, heads=4):
        super().__init__()
        self.heads = heads if c % heads == 0 else 1
        self.norm = group_norm(c)
        self.qkv = nn.Conv2d(c, 3 * c, 1)
        self.projection = nn.Conv2d(c, c, 1)

    def forward(self, x):
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n, 3, self.heads, c // self.heads, h * w).permute(1, 0, 2, 4, 3).unbind(0)
        merged = attention(q, k, v).permute(0, 1, 3, 2).reshape(n, c, h, w)
        return x + self.projection(merged)


class ResidualBlock(nn.Module):
    def __init__(self, i, o, embed, use_attention):
        super().__init__()
        self.norm1, self.conv1 = group_norm(i), nn.Conv2d(i, o, 3, padding=1)
        self.embed_projection = nn.Linear(embed, o)
        self.norm2, self.conv2 = group_norm(o), nn.Conv2d(o, o, 3, padding=1)
        self.skip = None if i == o else nn.Conv2d(i, o, 1)
        self.attention = SelfAttention2d(o) if use_attention else None

    def forward(self, x, embedding):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.embed_projection(F.silu(embedding))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        h = h + (x if self.skip is None else self.skip(x))
        return h if self.attention is None else self.attention(h)


class Downsample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, stride=2, padding=1)

    def forward(self, x, embedding):
        return self.conv(x)


class Upsample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x, embedding):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class UNet(nn.Module):
    def __init__(self, channels, classes, base, multipliers, blocks, attention_levels):
        super().__init__()
        self.time_features = max(64, base)
        embed = 4 * base
        self.time_mlp = nn.Sequential(nn.Linear(self.time_features, embed), nn.SiLU(), nn.Linear(embed, embed))
        self.class_embedding = nn.Embedding(classes + 1, embed)
        self.stem = nn.Conv2d(channels, base, 3, padding=1)
        skips, current, down = [base], base, []
        for level, m in enumerate(multipliers):
            width = base * m
            for _ in range(blocks):
                down.append(ResidualBlock(current, width, embed, level in attention_levels))
                current = width
                skips.append(current)
            if level + 1 < len(multipliers):
                down.append(Downsample(current))
                skips.append(current)
        self.down = nn.ModuleList(down)
        self.middle = nn.ModuleList([ResidualBlock(current, current, embed, True), ResidualBlock(current, current, embed, False)])
        up = []
        for level in reversed(range(len(multipliers))):
            width = base * multipliers[level]
            for _ in range(blocks + 1):
                up.append(ResidualBlock(current + skips.pop(), width, embed, level in attention_levels))
                current = width
            if level > 0:
                up.append(Upsample(current))
        self.up = nn.ModuleList(up)
        self.out_norm = group_norm(current)
        self.out_conv = nn.Conv2d(current, channels, 3, padding=1)

    def forward(self, x, t, labels):
        embedding = self.time_mlp(timestep_embedding(t, self.time_features).to(x.dtype)) + self.class_embedding(labels)
        h = self.stem(x)
        skips = [h]
        for block in self.down:
            h = block(h, embedding)
            skips.append(h)
        for block in self.middle:
            h = block(h, embedding)
        for block in self.up:
            if isinstance(block, Upsample):
                h = block(h, embedding)
                continue
            skip = skips.pop()
            if h.shape[2:] != skip.shape[2:]:
                h = F.interpolate(h, size=skip.shape[2:], mode="nearest")
            h = block(torch.cat([h, skip], 1), embedding)
        return self.out_conv(F.silu(self.out_norm(h)))


def unet(size, channels, side):
    if size == "Small":
        return UNet(channels, 10, 32, [1, 2, 2], 2, [2])
    return UNet(channels, 10, 64, [1, 2, 2, 2], 2, [1, 2])


# ---------------------------------------------------------------- U-ViT (Models/Diffusion/UViT.cs)
class TransformerBlock(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.norm1, self.qkv, self.projection = nn.LayerNorm(dim), nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x):
        n, length, dim = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(n, length, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        x = x + self.projection(attention(q, k, v).transpose(1, 2).reshape(n, length, dim))
        return x + self.mlp(self.norm2(x))


class UViT(nn.Module):
    def __init__(self, channels, height, width, classes, dim, depth, heads, patch):
        super().__init__()
        self.dim, self.patch, self.channels = dim, patch, channels
        self.grid_h, self.grid_w = height // patch, width // patch
        self.patch_embedding = nn.Conv2d(channels, dim, patch, stride=patch)
        self.time_mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.SiLU(), nn.Linear(4 * dim, dim))
        self.class_embedding = nn.Embedding(classes + 1, dim)
        self.positions = nn.Parameter(torch.randn(1, 2 + self.grid_h * self.grid_w, dim) * 0.02)
        self.in_blocks = nn.ModuleList([TransformerBlock(dim, heads) for _ in range(depth)])
        self.mid_block = TransformerBlock(dim, heads)
        self.out_blocks = nn.ModuleList([TransformerBlock(dim, heads) for _ in range(depth)])
        self.skip_projections = nn.ModuleList([nn.Linear(2 * dim, dim) for _ in range(depth)])
        self.final_norm = nn.LayerNorm(dim)
        self.to_patches = nn.Linear(dim, patch * patch * channels)
        self.final_conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x, t, labels):
        n = x.shape[0]
        patches = self.patch_embedding(x).flatten(2).transpose(1, 2)
        time_token = self.time_mlp(timestep_embedding(t, self.dim).to(x.dtype)).unsqueeze(1)
        label_token = self.class_embedding(labels).unsqueeze(1)
        h = torch.cat([time_token, label_token, patches], 1) + self.positions
        skips = []
        for block in self.in_blocks:
            h = block(h)
            skips.append(h)
        h = self.mid_block(h)
        for block, projection in zip(self.out_blocks, self.skip_projections):
            h = block(projection(torch.cat([h, skips.pop()], -1)))
        tokens = self.to_patches(self.final_norm(h))[:, 2:]
        p, c = self.patch, self.channels
        image = tokens.reshape(n, self.grid_h, self.grid_w, p, p, c).permute(0, 5, 1, 3, 2, 4).reshape(n, c, self.grid_h * p, self.grid_w * p)
        return self.final_conv(image)


def uvit(size, channels, side):
    patch = 2 if side % 2 == 0 and side * side <= 32 * 32 else 4
    return UViT(channels, side, side, 10, 192, 4, 4, patch)


# ---------------------------------------------------------------- classifiers (Models/SmallCnn.cs, Models/WideResNet.cs)
class Classifier(nn.Module):
    """forward = head(features(2x - 1)), as ImageClassifierNetwork."""

    def forward(self, images):
        return self.head(self.features(images * 2 - 1))


def conv_bn_relu(i, o):
    return nn.Sequential(nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True))


class SmallCnn(Classifier):
    def __init__(self, channels, classes, width):
        super().__init__()
        w = width
        self.features = nn.Sequential(
            conv_bn_relu(channels, w), conv_bn_relu(w, w), nn.MaxPool2d(2),
            conv_bn_relu(w, 2 * w), conv_bn_relu(2 * w, 2 * w), nn.MaxPool2d(2),
            conv_bn_relu(2 * w, 4 * w), conv_bn_relu(4 * w, 4 * w), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Sequential(nn.Dropout(0.25), nn.Linear(4 * w, classes))


class WideBasicBlock(nn.Module):
    def __init__(self, i, o, stride):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(i), nn.Conv2d(i, o, 3, stride=stride, padding=1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(o), nn.Conv2d(o, o, 3, padding=1, bias=False)
        self.shortcut = None if i == o and stride == 1 else nn.Conv2d(i, o, 1, stride=stride, bias=False)

    def forward(self, x):
        activated = F.leaky_relu(self.bn1(x), 0.1)
        residual = x if self.shortcut is None else self.shortcut(activated)
        h = self.conv2(F.leaky_relu(self.bn2(self.conv1(activated)), 0.1))
        return h + residual


class WideResNet(Classifier):
    def __init__(self, channels, classes, depth=28, widen=2):
        super().__init__()
        per_stage = (depth - 4) // 6
        widths = [16, 16 * widen, 32 * widen, 64 * widen]
        layers = [nn.Conv2d(channels, widths[0], 3, padding=1, bias=False)]
        for stage in range(3):
            for i in range(per_stage):
                layers.append(WideBasicBlock(widths[stage] if i == 0 else widths[stage + 1], widths[stage + 1], 2 if i == 0 and stage > 0 else 1))
        layers += [nn.BatchNorm2d(widths[3]), nn.LeakyReLU(0.1), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(widths[3], classes)


# ---------------------------------------------------------------- training pieces
class ExponentialMovingAverage:
    """Models/ExponentialMovingAverage.cs: warmed-up decay, parameters averaged, buffers copied."""

    def __init__(self, model, average, decay=0.999):
        self.decay, self.updates = decay, 0
        self.parameters = list(zip(model.parameters(), average.parameters()))
        self.buffers = list(zip(model.buffers(), average.buffers()))
        with torch.no_grad():
            for source, avg in self.parameters + self.buffers:
                avg.copy_(source)
        for p in average.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self):
        d = min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))
        self.updates += 1
        for source, avg in self.parameters:
            avg.mul_(d).add_(source, alpha=1 - d)
        for source, avg in self.buffers:
            avg.copy_(source)


def cosine_alpha_bar(steps=1000):
    def f(t):
        return math.cos((t / steps + 0.008) / 1.008 * math.pi / 2) ** 2
    product, result = 1.0, []
    for t in range(steps):
        product *= 1 - min(1 - f(t + 1) / f(t), 0.999)
        result.append(product)
    return result


class DiffusionStep:
    """Training/DiffusionTrainingStep.cs with DiffusionTrainerOptions' defaults."""

    def __init__(self, network, average, device):
        self.network, self.average = network, average
        self.alpha_bar = torch.tensor(cosine_alpha_bar(), dtype=torch.float32, device=device)
        self.optimizer = torch.optim.AdamW(network.parameters(), lr=2e-4, weight_decay=0.01)

    def run(self, x0, labels):
        b, device = x0.shape[0], x0.device
        x0 = torch.where(torch.rand(b, 1, 1, 1, device=device) < 0.5, x0.flip(3), x0)
        y = torch.where(torch.rand(b, device=device) < 0.1, torch.full_like(labels, NULL_CLASSES), labels)
        t = torch.randint(1000, (b,), device=device)
        selected = self.alpha_bar.index_select(0, t).view(-1, 1, 1, 1)
        signal, noise_scale = selected.sqrt().to(x0.dtype), (1 - selected).sqrt().to(x0.dtype)
        noise = torch.randn_like(x0)
        loss = F.mse_loss(self.network(signal * x0 + noise_scale * noise, t.float(), y), noise)
        self.optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.network.parameters(), 1.0)
        self.optimizer.step()
        self.average.update()
        return loss.detach()


def in_float32(images, view):
    return view(images.float()).to(images.dtype)


class Augmentation:
    """Data/Augmentation.cs: weak (flip + translate) and strong (RandAugment-style + Cutout) views in batches."""
    P = 2.0 / 12

    def weak(self, images):
        return in_float32(images, lambda x: self.resample(x, self.base_affine(x.shape[0], x.device)))

    def strong(self, images):
        def view(x):
            n = x.shape[0]
            theta = self.base_affine(n, x.device).matmul(self.geometric(n, x.device))
            return self.cutout(self.pixel(self.resample(x, theta)))
        return in_float32(images, view)

    @staticmethod
    def base_affine(n, device):
        flip = torch.where(torch.rand(n, device=device) < 0.5, -1.0, 1.0)
        shift = (torch.rand(n, 2, device=device) * 2 - 1) * (2 * 0.125)
        theta = torch.zeros(n, 3, 3, device=device)
        theta[:, 0, 0] = flip
        theta[:, 1, 1] = torch.ones(n, device=device)
        theta[:, 0, 2] = shift[:, 0]
        theta[:, 1, 2] = shift[:, 1]
        theta[:, 2, 2] = torch.ones(n, device=device)
        return theta

    def geometric(self, n, device):
        def apply(m):
            return m * (torch.rand(n, device=device) < self.P)

        def signed(limit):
            return (torch.rand(n, device=device) * 2 - 1) * limit
        angle, shear_x, shear_y = apply(signed(math.pi / 6)), apply(signed(0.3)), apply(signed(0.3))
        move_x, move_y = apply(signed(0.25)), apply(signed(0.25))
        cos, sin = angle.cos(), angle.sin()
        m = torch.zeros(n, 3, 3, device=device)
        m[:, 0, 0] = cos - sin * shear_y
        m[:, 0, 1] = -sin + cos * shear_x
        m[:, 1, 0] = sin + cos * shear_y
        m[:, 1, 1] = cos + sin * shear_x
        m[:, 0, 2] = move_x
        m[:, 1, 2] = move_y
        m[:, 2, 2] = torch.ones(n, device=device)
        return m

    @staticmethod
    def resample(images, theta):
        grid = F.affine_grid(theta[:, :2, :], list(images.shape), align_corners=False)
        return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    def pixel(self, x):
        n, device = x.shape[0], x.device

        def mask():
            return (torch.rand(n, 1, 1, 1, device=device) < self.P).to(x.dtype)

        def factor():
            return 0.1 + torch.rand(n, 1, 1, 1, device=device) * 1.8

        def blend(current, changed):
            return current + mask() * (changed - current)
        low, high = x.amin((1, 2, 3), keepdim=True), x.amax((1, 2, 3), keepdim=True)
        x = blend(x, (x - low) / (high - low).clamp_min(1e-3))
        x = blend(x, (x * factor()).clamp(0, 1))
        mean = x.mean((1, 2, 3), keepdim=True)
        x = blend(x, (mean + (x - mean) * factor()).clamp(0, 1))
        smooth = self.smooth(x)
        x = blend(x, (smooth + (x - smooth) * factor()).clamp(0, 1))
        levels = torch.pow(2.0, torch.randint(4, 9, (n, 1, 1, 1), device=device).to(x.dtype))
        x = blend(x, (x * (levels - 1)).round() / (levels - 1))
        threshold = torch.rand(n, 1, 1, 1, device=device)
        return blend(x, torch.where(x >= threshold, 1 - x, x))

    @staticmethod
    def smooth(x):
        c = x.shape[1]
        kernel = torch.ones(3, 3, device=x.device, dtype=x.dtype)
        kernel[1, 1] = 5.0
        kernel = (kernel / 13).expand(c, 1, 3, 3).contiguous()
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel, groups=c)

    @staticmethod
    def cutout(x):
        n, _, h, w = x.shape
        device = x.device
        side = torch.rand(n, 1, 1, device=device) * 0.5
        cy, cx = torch.rand(n, 1, 1, device=device), torch.rand(n, 1, 1, device=device)
        ys = (torch.arange(h, device=device, dtype=x.dtype) + 0.5) / h
        xs = (torch.arange(w, device=device, dtype=x.dtype) + 0.5) / w
        inside = ((ys.view(1, h, 1) - cy).abs() <= side / 2) & ((xs.view(1, 1, w) - cx).abs() <= side / 2)
        return torch.where(inside.unsqueeze(1), 0.5, x)


class FreeMatch:
    """Training/SemiSupervised/FreeMatchObjective.cs (USB's FreeMatch without boolean indexing)."""

    def __init__(self, classes, device, momentum=0.999, fairness=0.001):
        self.k, self.m, self.fairness_weight = classes, momentum, fairness
        self.class_probabilities = torch.ones(classes, device=device) / classes
        self.label_histogram = torch.ones(classes, device=device) / classes
        self.threshold = torch.ones(1, device=device) / classes
        self.mask_rate = None

    def loss(self, weak_logits, strong_logits):
        probabilities = weak_logits.softmax(-1)
        confidence, pseudo_label = probabilities.max(-1)
        with torch.no_grad():
            m = self.m
            histogram = F.one_hot(pseudo_label, self.k).to(probabilities.dtype).mean(0)
            self.threshold = self.threshold * m + (1 - m) * confidence.mean()
            self.class_probabilities = self.class_probabilities * m + (1 - m) * probabilities.mean(0)
            self.label_histogram = self.label_histogram * m + (1 - m) * histogram
        scale = self.class_probabilities / self.class_probabilities.max()
        mask = (confidence >= self.threshold * scale.index_select(0, pseudo_label)).to(strong_logits.dtype)
        self.mask_rate = mask.mean().detach()
        consistency = (F.cross_entropy(strong_logits, pseudo_label, reduction="none") * mask).mean()
        return consistency + self.fairness_weight * self.fairness(mask, strong_logits)

    def fairness(self, mask, strong_logits):
        strong_probabilities = strong_logits.softmax(-1)
        weights, count = mask.unsqueeze(1), mask.sum()
        histogram = (F.one_hot(strong_probabilities.argmax(-1), self.k).to(mask.dtype) * weights).sum(0) / count.clamp_min(1)
        mean_probability = (strong_probabilities * weights).sum(0) / count.clamp_min(1)

        def reciprocal(x):
            return torch.where(x > 0, 1 / x.clamp_min(1e-12), torch.zeros_like(x))

        def normalise(x):
            return x / x.sum().clamp_min(1e-12)
        model_scaled = normalise(self.class_probabilities * reciprocal(self.label_histogram))
        batch_scaled = normalise(mean_probability * reciprocal(histogram).detach())
        loss = (model_scaled * (batch_scaled + 1e-12).log()).sum()
        return loss * (count > 0).to(loss.dtype)


class ClassifierStep:
    """Training/ClassifierTrainingStep.cs with SemiSupervisedTrainerOptions' defaults (SGD Nesterov, FreeMatch)."""

    def __init__(self, network, average, device):
        self.network, self.average = network, average
        self.augmentation, self.objective = Augmentation(), FreeMatch(10, device)
        self.optimizer = torch.optim.SGD(network.parameters(), lr=0.03, momentum=0.9, weight_decay=5e-4, nesterov=True)

    def run(self, labeled, targets, weights, unlabeled):
        a = self.augmentation
        b, u = labeled.shape[0], unlabeled.shape[0]
        logits = self.network(torch.cat([a.weak(labeled), a.weak(unlabeled), a.strong(unlabeled)]))
        labeled_logits, weak_logits, strong_logits = logits.split([b, u, u])
        supervised = (F.cross_entropy(labeled_logits, targets, reduction="none") * weights).sum() / weights.sum().clamp_min(1e-12)
        loss = supervised + 1.0 * self.objective.loss(weak_logits.detach(), strong_logits)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.average.update()
        with torch.no_grad():
            return torch.stack([loss.detach().reshape(1), supervised.detach().reshape(1), self.objective.mask_rate.reshape(1)]).flatten()


def dpm_solver_sample(network, labels, noise, steps=25, scale=1.0):
    """Diffusion/Samplers/DpmSolverPlusPlusSampler.cs with ClassifierFreeGuidance.cs (one batched [cond, uncond] pass)
    inside ClippedCleanEstimate.cs (x0 clamped to [-1, 1] and eps derived again from it), as ConditionalGenerator
    samples by default; the same elementwise ops in the same order."""
    alpha_bar = cosine_alpha_bar()
    total = len(alpha_bar)
    timesteps = [total - 1] if steps == 1 else [int(round((total - 1) * (1 - i / (steps - 1)))) for i in range(steps)]
    signal = [math.sqrt(a) for a in alpha_bar]
    noise_scale = [math.sqrt(1 - a) for a in alpha_bar]
    half_log_snr = [0.5 * (math.log(a) - math.log(1 - a)) for a in alpha_bar]
    both_labels = torch.cat([labels, torch.full_like(labels, NULL_CLASSES)])
    x, previous_x0, previous_h = noise.clone(), None, 0.0
    for i, t in enumerate(timesteps):
        tt = torch.full((2 * x.shape[0],), float(t), device=x.device)
        conditional, unconditional = network(torch.cat([x, x]), tt, both_labels).chunk(2)
        eps = conditional + scale * (conditional - unconditional)
        clipped = ((x - noise_scale[t] * eps) / signal[t]).clamp(-1, 1)
        eps = (x - signal[t] * clipped) / noise_scale[t]
        x0 = (x - noise_scale[t] * eps) / signal[t]
        if i + 1 < len(timesteps):
            s = timesteps[i + 1]
            h = half_log_snr[s] - half_log_snr[t]
            d = x0
            if previous_x0 is not None and i + 2 != len(timesteps):
                r = previous_h / h
                d = (1 + 1 / (2 * r)) * x0 - 1 / (2 * r) * previous_x0
            x = noise_scale[s] / noise_scale[t] * x - signal[s] * (math.exp(-h) - 1) * d
            previous_h, previous_x0 = h, x0
        else:
            x = x0
    return x


# ---------------------------------------------------------------- timing
def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_ms(device, warmup, repeats, step):
    return measure(device, warmup, repeats, step)[0]


def measure(device, warmup, repeats, step):
    """Median step time and median host time (until the step returned, before synchronising)."""
    for _ in range(warmup):
        step()
    times, host_times = [], []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        step()
        host_times.append((time.perf_counter() - start) * 1000)
        synchronize(device)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), statistics.median(host_times)


def diffusion_phases(name, dtype, device, small, warmup, repeats):
    """Benchmarks.DiffusionPhases: the U-Net Small step built up phase by phase."""
    torch.manual_seed(1)
    batch = 32 if small else 256
    network, average_network = unet("Small", 1, 28).to(device, dtype), unet("Small", 1, 28).to(device, dtype)
    step = DiffusionStep(network, ExponentialMovingAverage(network, average_network), device)
    images = (torch.rand(batch, 1, 28, 28, device=device) * 2 - 1).to(dtype)
    labels = torch.randint(10, (batch,), device=device)
    t = torch.randint(1000, (batch,), device=device)
    noise = torch.randn_like(images)
    network.train()

    def loss():
        selected = step.alpha_bar.index_select(0, t).view(-1, 1, 1, 1)
        noisy = selected.sqrt().to(dtype) * images + (1 - selected).sqrt().to(dtype) * noise
        return F.mse_loss(network(noisy, t.float(), labels), noise)

    def phase(n):
        def run():
            if n == 0:
                return loss()
            step.optimizer.zero_grad()
            loss().backward()
            if n >= 2:
                torch.nn.utils.clip_grad_norm_(network.parameters(), 1.0)
            if n >= 3:
                step.optimizer.step()
            if n >= 4:
                step.average.update()
        return run
    for n, label in enumerate(["forward and loss", "+ backward", "+ clipping", "+ AdamW", "+ EMA"]):
        ms, host = measure(device, warmup, repeats, phase(n))
        print(f"phases U-Net Small [{name}] {label}: {ms:.2f} ms, host {host:.2f} ms", flush=True)


def count_flops(step):
    """FLOPs of one call of step (forward and backward where it has one), by PyTorch's FlopCounterMode."""
    try:
        from torch.utils.flop_counter import FlopCounterMode
    except ImportError:
        return None
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    return float(counter.get_total_flops())


def parameter_count(module):
    return sum(p.numel() for p in module.parameters())


def diffusion_row(name, make, channels, side, batch, dtype, device, warmup, repeats):
    torch.manual_seed(1)
    network, average_network = make().to(device, dtype), make().to(device, dtype)
    step = DiffusionStep(network, ExponentialMovingAverage(network, average_network), device)
    images = (torch.rand(batch, channels, side, side, device=device) * 2 - 1).to(dtype)
    labels = torch.randint(10, (batch,), device=device)
    network.train()
    ms = median_ms(device, warmup, repeats, lambda: step.run(images, labels))
    return dict(name=name, parameters=parameter_count(network), images_per_step=batch, median_ms=ms,
                flops=count_flops(lambda: step.run(images, labels)))


def classifier_row(name, make, channels, side, labeled_batch, unlabeled_batch, dtype, device, warmup, repeats):
    torch.manual_seed(1)
    network, average_network = make().to(device, dtype), make().to(device, dtype)
    step = ClassifierStep(network, ExponentialMovingAverage(network, average_network), device)
    labeled = torch.rand(labeled_batch, channels, side, side, device=device).to(dtype)
    unlabeled = torch.rand(unlabeled_batch, channels, side, side, device=device).to(dtype)
    targets = torch.randint(10, (labeled_batch,), device=device)
    weights = torch.ones(labeled_batch, device=device).to(dtype)
    network.train()
    ms = median_ms(device, warmup, repeats, lambda: step.run(labeled, targets, weights, unlabeled))
    return dict(name=name, parameters=parameter_count(network), images_per_step=labeled_batch + 2 * unlabeled_batch, median_ms=ms,
                flops=count_flops(lambda: step.run(labeled, targets, weights, unlabeled)))


def sampling_row(name, batch, dtype, device, warmup, repeats):
    torch.manual_seed(1)
    network = unet("Small", 1, 28).to(device, dtype).eval()
    labels = torch.randint(10, (batch,), device=device)

    @torch.no_grad()
    def sample():
        dpm_solver_sample(network, labels, torch.randn(batch, 1, 28, 28, device=device).to(dtype))
    ms = median_ms(device, min(warmup, 1), max(1, repeats // 4), sample)
    return dict(name=name, parameters=parameter_count(network), images_per_step=batch, median_ms=ms, flops=count_flops(sample))


def bf16_matmul_tflops(device):
    if device.type != "cuda":
        return None
    a = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    ms = median_ms(device, 3, 20, lambda: a @ b)
    return 2 * 8192 ** 3 / (ms / 1000) / 1e12


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--small", action="store_true", help="small batches, for a CPU")
    parser.add_argument("--precision", default=None, help="comma list of fp32, tf32, bf16 (default: all on CUDA, fp32 on CPU)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--output", default="out/benchmarks")
    parser.add_argument("--breakdown", action="store_true", help="print where the time of a U-Net diffusion step goes")
    args = parser.parse_args()
    device = torch.device(args.device)
    on_cuda = device.type == "cuda"
    precisions = (args.precision or ("fp32,tf32,bf16" if on_cuda else "fp32")).split(",")

    def size(full, small):
        return small if args.small else full
    rows = [
        ("diffusion step, U-Net Small, 1x28x28", diffusion_row, (lambda: unet("Small", 1, 28), 1, 28, size(256, 32))),
        ("diffusion step, U-Net Large, 3x32x32", diffusion_row, (lambda: unet("Large", 3, 32), 3, 32, size(128, 16))),
        ("diffusion step, U-ViT Small, 1x28x28", diffusion_row, (lambda: uvit("Small", 1, 28), 1, 28, size(256, 32))),
        ("FreeMatch step, SmallCnn w32, 1x28x28", classifier_row, (lambda: SmallCnn(1, 10, 32), 1, 28, size(64, 16), size(448, 112))),
        ("FreeMatch step, WRN-28-2, 3x32x32", classifier_row, (lambda: WideResNet(3, 10, 28, 2), 3, 32, size(64, 8), size(448, 56))),
        ("DPM-Solver++ 25 steps + guidance + clamped x0, U-Net Small, 1x28x28", sampling_row, (size(1000, 100),)),
    ]
    settings = {"fp32": (torch.float32, False), "tf32": (torch.float32, True), "bf16": (torch.bfloat16, True)}
    if args.breakdown:
        for precision in precisions:
            dtype, tf32 = settings[precision]
            if on_cuda:
                torch.backends.cuda.matmul.allow_tf32 = tf32
                torch.backends.cudnn.allow_tf32 = tf32
            diffusion_phases(precision, dtype, device, args.small, args.warmup, args.repeats)
        return
    results = []
    for name, measure, extra in rows:
        for precision in precisions:
            dtype, tf32 = settings[precision]
            if on_cuda:
                torch.backends.cuda.matmul.allow_tf32 = tf32
                torch.backends.cudnn.allow_tf32 = tf32
            try:
                row = measure(name, *extra, dtype, device, args.warmup, args.repeats)
                row["error"] = None
            except Exception as e:   # one failed row must not lose the others
                row = dict(name=name, parameters=0, images_per_step=0, median_ms=None, flops=None, error=f"{type(e).__name__}: {e}".split("\n")[0])
            row["precision"] = precision
            results.append(row)
            flops = f", {row['flops'] / 1e9:.1f} GFLOP/step" if row.get("flops") else ""
            print(f"{name} [{precision}]: {row['median_ms'] or float('nan'):.2f} ms median, {row['parameters']:,} parameters{flops}"
                  + (f" ERROR {row['error']}" if row["error"] else ""), flush=True)
    peak = bf16_matmul_tflops(device)
    machine = f"PyTorch {torch.__version__} eager, {torch.cuda.get_device_name(device) if on_cuda else 'CPU'}, batches {'small' if args.small else 'full'}"
    if peak:
        print(f"bf16 matmul 8192^3: {peak:.0f} TFLOP/s")
    os.makedirs(args.output, exist_ok=True)
    with open(os.path.join(args.output, "reference-results.json"), "w") as f:
        json.dump(dict(machine=machine, bf16_matmul_tflops=peak, rows=results), f, indent=2)


if __name__ == "__main__":
    main()
