"""UniFormerV2 (MMAction2's ``UniFormerV2``) on channels-last video.

Input ``(B, T, H, W, C)`` with ``H = W = input_resolution``; output ``(B, n_dim)``. A CLIP
ViT runs on every frame (``conv1`` patches, ``class_embedding``, ``positional_embedding``,
``ln_pre``, ``transformer.resblocks``), optionally with local temporal mixing in each block
(``lmhra1`` / ``lmhra2``: BatchNorm and a depthwise temporal conv between 1x1x1 convs). The
blocks in ``return_list`` feed a video-level decoder: their patch tokens get a depthwise 3D
conv position encoding (``transformer.dpe.{j}``) and a learned video class token
(``temporal_cls_token``) cross-attends to all of them (``transformer.dec.{j}``). The output
mixes that token with the frames' averaged class tokens (``balance``) and normalises.

MMAction2 runs these blocks sequence-first (``(L, N*T, C)``) and applies stochastic depth
to that layout, i.e. per token position (per the whole batch in the decoder); the same
axis is dropped here, so training behaves the same.

Names are MMAction2 1.2.0's; ``attn`` is torch's ``nn.MultiheadAttention`` (fused
``in_proj_weight``), ``lmhra{1,2}.pos_embed.{0,1,2,3}`` its ``nn.Sequential``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from actionjax.models.common.attention import TorchMultiheadAttention
from actionjax.models.common.conv_module import Conv
from actionjax.models.common.drop_path import DropPath
from actionjax.models.common.layer_norm import LayerNorm
from actionjax.models.common.module_list import ModuleList
from actionjax.models.common.norm import BatchNorm
from actionjax.registry import BACKBONES


def quick_gelu(x: jax.Array) -> jax.Array:
    """CLIP's GELU approximation ``x * sigmoid(1.702 x)``."""
    return x * jax.nn.sigmoid(1.702 * x)


def drop_path_seq_first(drop_path: DropPath, x: jax.Array, train: bool) -> jax.Array:
    """Stochastic depth over axis 1 of a batch-first ``(B, L, C)``: axis 0 of MMAction2's
    sequence-first layout."""
    return drop_path(x.swapaxes(0, 1), deterministic=not train).swapaxes(0, 1)


class Mlp(nn.Module):
    """CLIP's MLP: ``c_fc`` -> QuickGELU -> dropout -> ``c_proj``."""

    hidden: int
    dropout: float = 0.0

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        y = quick_gelu(nn.Dense(self.hidden, name='c_fc')(x))
        y = nn.Dropout(self.dropout, deterministic=not train)(y)
        return nn.Dense(x.shape[-1], name='c_proj')(y)


class LocalMHRA(nn.Module):
    """Local temporal relation on ``(N, T, H, W, C)``: BatchNorm, 1x1x1 conv to
    ``C // dw_reduction``, depthwise ``(k, 1, 1)`` conv, 1x1x1 conv back (``pos_embed.0..3``)."""

    d_model: int
    dw_reduction: float = 1.5
    pos_kernel_size: int = 3

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        reduced = int(self.d_model // self.dw_reduction)
        pad = self.pos_kernel_size // 2
        seq = ModuleList(name='pos_embed')
        x = seq(partial(BatchNorm, use_running_average=not train, name='0'), x)
        x = seq(partial(Conv, reduced, (1, 1, 1), name='1'), x)
        x = seq(partial(Conv, reduced, (self.pos_kernel_size, 1, 1), padding=((pad, pad), (0, 0), (0, 0)),
                        feature_group_count=reduced, name='2'), x)
        return seq(partial(Conv, self.d_model, (1, 1, 1), kernel_init=nn.initializers.zeros, name='3'), x)


class ResidualAttentionBlock(nn.Module):
    """A CLIP block on ``(N*T, 1 + H*W, C)`` tokens, with optional local temporal mixing
    before the attention (``lmhra1``) and before the MLP (``lmhra2``)."""

    d_model: int
    n_head: int
    drop_path: float = 0.0
    dw_reduction: float = 1.5
    no_lmhra: bool = False
    double_lmhra: bool = True

    def local_mixing(self, name: str, x: jax.Array, t: int, train: bool) -> jax.Array:
        nt, length, c = x.shape
        side = int((length - 1) ** 0.5)
        tokens = x[:, 1:].reshape(nt // t, t, side, side, c)
        mixed = LocalMHRA(self.d_model, self.dw_reduction, name=name)(tokens, train)
        tokens = tokens + DropPath(self.drop_path)(mixed, deterministic=not train)
        return jnp.concatenate([x[:, :1], tokens.reshape(nt, length - 1, c)], axis=1)

    @nn.compact
    def __call__(self, x: jax.Array, t: int, train: bool = False) -> jax.Array:
        drop_path = DropPath(self.drop_path)
        if not self.no_lmhra:
            x = self.local_mixing('lmhra1', x, t, train)
        y = TorchMultiheadAttention(self.d_model, self.n_head, name='attn')(LayerNorm(name='ln_1')(x), train)
        x = x + drop_path_seq_first(drop_path, y, train)
        if not self.no_lmhra and self.double_lmhra:
            x = self.local_mixing('lmhra2', x, t, train)
        y = Mlp(4 * self.d_model, name='mlp')(LayerNorm(name='ln_2')(x), train)
        return x + drop_path_seq_first(drop_path, y, train)


class Extractor(nn.Module):
    """The decoder block: the video token cross-attends to a block's tokens of every frame."""

    d_model: int
    n_head: int
    mlp_factor: float = 4.0
    dropout: float = 0.0
    drop_path: float = 0.0

    @nn.compact
    def __call__(self, x: jax.Array, y: jax.Array, train: bool = False) -> jax.Array:
        """``x``: ``(N, 1, C)`` video token; ``y``: ``(N, T * L, C)`` tokens."""
        drop_path = DropPath(self.drop_path)
        attn = TorchMultiheadAttention(self.d_model, self.n_head, name='attn')
        out = attn(LayerNorm(name='ln_1')(x), train, key_value=LayerNorm(name='ln_3')(y))
        x = x + drop_path_seq_first(drop_path, out, train)
        out = Mlp(round(self.mlp_factor * self.d_model), self.dropout, name='mlp')(LayerNorm(name='ln_2')(x),
                                                                                  train)
        return x + drop_path_seq_first(drop_path, out, train)


class Transformer(nn.Module):
    """``resblocks`` over the frames, ``dpe`` + ``dec`` on those in ``return_list``."""

    width: int
    layers: int
    heads: int
    backbone_drop_path_rate: float
    t_size: int
    dw_reduction: float
    no_lmhra: bool
    double_lmhra: bool
    return_list: Sequence[int]
    n_layers: int
    n_dim: int
    n_head: int
    mlp_factor: float
    drop_path_rate: float
    mlp_dropout: Sequence[float]

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        t = self.t_size
        nt, length, c = x.shape
        n = nt // t
        side = int((length - 1) ** 0.5)
        video_token = self.param('temporal_cls_token', nn.initializers.zeros, (1, 1, self.n_dim))
        video_token = jnp.broadcast_to(video_token, (n, 1, self.n_dim))
        block_rates = np.linspace(0, self.backbone_drop_path_rate, self.layers, dtype=np.float32)
        dec_rates = np.linspace(0, self.drop_path_rate, self.n_layers, dtype=np.float32)
        resblocks, dpe, dec = (ModuleList(name=name) for name in ('resblocks', 'dpe', 'dec'))
        j = -1
        for i in range(self.layers):
            block = partial(ResidualAttentionBlock, self.width, self.heads, float(block_rates[i]),
                            self.dw_reduction, self.no_lmhra, self.double_lmhra, name=str(i))
            x = resblocks(block, x, t, train)
            if i not in self.return_list:
                continue
            j += 1
            frames = x.reshape(n, t, length, c)
            grid = frames[:, :, 1:].reshape(n, t, side, side, c)
            encoded = dpe(partial(Conv, self.n_dim, (3, 3, 3), padding=((1, 1),) * 3,
                                  feature_group_count=self.n_dim, name=str(j)), grid)
            frames = frames.at[:, :, 1:].add(encoded.reshape(n, t, length - 1, c))
            extractor = partial(Extractor, self.n_dim, self.n_head, self.mlp_factor, self.mlp_dropout[j],
                                float(dec_rates[j]), name=str(j))
            video_token = dec(extractor, video_token, frames.reshape(n, -1, c), train)
        weight = jax.nn.sigmoid(self.param('balance', nn.initializers.zeros, (self.n_dim,)))
        frame_tokens = x.reshape(n, t, length, c)[:, :, 0].mean(axis=1)
        return LayerNorm(name='norm')((1 - weight) * video_token[:, 0] + weight * frame_tokens)


@BACKBONES.register_module()
class UniFormerV2(nn.Module):
    """UniFormerV2; arguments as MMAction2 1.2.0's ``UniFormerV2``.

    ``clip_pretrained`` / ``pretrained`` are kept for the config's sake: MMAction2 loads
    (and inflates) a CLIP checkpoint by name; here weights come from converted checkpoints.
    """

    input_resolution: int = 224
    patch_size: int = 16
    width: int = 768
    layers: int = 12
    heads: int = 12
    backbone_drop_path_rate: float = 0.0
    t_size: int = 8
    kernel_size: int = 3
    dw_reduction: float = 1.5
    temporal_downsample: bool = False
    no_lmhra: bool = True
    double_lmhra: bool = False
    return_list: Sequence[int] = (8, 9, 10, 11)
    n_layers: int = 4
    n_dim: int = 768
    n_head: int = 12
    mlp_factor: float = 4.0
    drop_path_rate: float = 0.0
    mlp_dropout: Sequence[float] = (0.5, 0.5, 0.5, 0.5)
    clip_pretrained: bool = True
    pretrained: str | None = None
    init_cfg: Any = None

    def __post_init__(self) -> None:
        if self.n_layers != len(self.return_list) or len(self.mlp_dropout) < self.n_layers:
            raise ValueError(f'backbone.n_layers={self.n_layers} needs as many return_list entries '
                             f'({tuple(self.return_list)}) and mlp_dropout rates ({tuple(self.mlp_dropout)})')
        if self.width != self.n_dim:
            raise ValueError(f'backbone.n_dim={self.n_dim} must equal backbone.width={self.width} '
                             '(the decoder reads the frame tokens)')
        super().__post_init__()

    @property
    def clip_shape(self) -> tuple[int, int, int]:
        """The ``(T, H, W)`` this backbone takes (its position embedding fixes the grid)."""
        return (self.t_size, self.input_resolution, self.input_resolution)

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        t, h, w = self.clip_shape
        if x.ndim != 5 or x.shape[2:4] != (h, w):
            raise ValueError(f'UniFormerV2 takes (B, T, {h}, {w}, C) clips (backbone.input_resolution), '
                             f'got shape {x.shape}')
        p = self.patch_size
        if self.temporal_downsample:
            pad = (self.kernel_size - 1) // 2
            conv = Conv(self.width, (self.kernel_size, p, p), strides=(2, p, p),
                        padding=((pad, pad), (0, 0), (0, 0)), use_bias=False, name='conv1')
            t_down = self.t_size // 2
        else:
            conv = Conv(self.width, (1, p, p), strides=(1, p, p), padding='VALID', use_bias=False,
                        name='conv1')
            t_down = self.t_size
        x = conv(x)  # (N, T', H', W', C)
        n, frames, gh, gw, c = x.shape
        if frames != t_down:
            raise ValueError(f'UniFormerV2: {frames} frames after the patch embedding, backbone.t_size gives '
                             f'{t_down}; feed clips of {self.t_size} frames')
        x = x.reshape(n * frames, gh * gw, c)
        scale = c ** -0.5
        class_embedding = self.param('class_embedding', nn.initializers.normal(scale), (c,))
        positional = self.param('positional_embedding', nn.initializers.normal(scale), (gh * gw + 1, c))
        x = jnp.concatenate([jnp.broadcast_to(class_embedding, (x.shape[0], 1, c)), x], axis=1) + positional
        x = LayerNorm(name='ln_pre')(x)
        return Transformer(self.width, self.layers, self.heads, self.backbone_drop_path_rate, t_down,
                           self.dw_reduction, self.no_lmhra, self.double_lmhra, tuple(self.return_list),
                           self.n_layers, self.n_dim, self.n_head, self.mlp_factor, self.drop_path_rate,
                           tuple(self.mlp_dropout), name='transformer')(x, train)
