"""VideoMAE's Vision Transformer (MMAction2's ``VisionTransformer``) on channels-last video.

Input ``(B, T, H, W, C)``; tubelets of ``tubelet_size x patch_size x patch_size`` become
tokens (no class token), a position embedding is added (fixed sin-cos by default,
learnable with ``use_learnable_pos_emb``), ``depth`` pre-norm blocks follow. The output is
``fc_norm(mean over tokens)`` with ``use_mean_pooling`` (VideoMAE's fine-tuning), else
``norm(x)[:, 0]``; ``return_feat_map`` returns the ``(B, T', H', W', C)`` token map.

Names are MMAction2 1.2.0's: ``patch_embed.projection``, ``blocks.{i}.{norm1, attn.qkv,
attn.q_bias, attn.v_bias, attn.proj, norm2, mlp.layers.0.0, mlp.layers.1, gamma_1,
gamma_2}``, ``norm`` / ``fc_norm``, ``pos_embed``. The sin-cos table is a persistent
buffer in MMAction2's checkpoints; here it is computed from the config (``torch_buffers()``
gives it back to the converter). A frame size other than ``img_size`` resizes the table
bicubically, as MMAction2 does.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax.core import FrozenDict

from actionjax.models.common.attention import attend, merge_heads, split_heads, trunc_normal_02
from actionjax.models.common.conv_module import Conv
from actionjax.models.common.drop_path import DropPath
from actionjax.models.common.ffn import FFN
from actionjax.models.common.interpolate import resize_axes
from actionjax.models.common.layer_norm import build_layer_norm
from actionjax.models.common.module_list import ModuleList
from actionjax.registry import BACKBONES


def sinusoid_encoding(n_position: int, embed_dims: int) -> np.ndarray:
    """``(1, n_position, embed_dims)`` float32 table: sin on even, cos on odd channels.

    Computed in float64 and rounded once, as MMAction2's ``get_sinusoid_encoding``.
    """
    channels = np.arange(embed_dims, dtype=np.float64)
    inv_freq = np.power(10000.0, -(channels - channels % 2) / embed_dims)
    table = np.arange(n_position, dtype=np.float64)[:, None] * inv_freq[None]
    table[:, 0::2] = np.sin(table[:, 0::2])
    table[:, 1::2] = np.cos(table[:, 1::2])
    return table.astype(np.float32)[None]


class PatchEmbed(nn.Module):
    """mmcv's ``PatchEmbed`` with a Conv3d ``projection`` over non-overlapping tubelets."""

    kernel_size: tuple[int, int, int]
    embed_dims: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return Conv(self.embed_dims, self.kernel_size, strides=self.kernel_size, padding='VALID',
                    name='projection')(x)


class Attention(nn.Module):
    """Self-attention with a bias-free fused ``qkv`` Linear plus learned ``q_bias`` / ``v_bias``
    (the key gets none), as VideoMAE."""

    embed_dims: int
    num_heads: int = 8
    qkv_bias: bool = True
    qk_scale: float | None = None
    attn_drop_rate: float = 0.0
    drop_rate: float = 0.0

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        c = self.embed_dims
        qkv = nn.Dense(3 * c, use_bias=False, kernel_init=trunc_normal_02, name='qkv')(x)
        if self.qkv_bias:
            q_bias = self.param('q_bias', nn.initializers.zeros, (c,))
            v_bias = self.param('v_bias', nn.initializers.zeros, (c,))
            qkv = qkv + jnp.concatenate([q_bias, jnp.zeros_like(v_bias), v_bias]).astype(qkv.dtype)
        q, k, v = split_heads(qkv, self.num_heads)
        scale = self.qk_scale or (c // self.num_heads) ** -0.5
        rng = self.make_rng('dropout') if train and self.attn_drop_rate > 0 else None
        out = attend(q, k, v, scale=scale, dropout_rate=self.attn_drop_rate, dropout_rng=rng)
        out = nn.Dense(c, kernel_init=trunc_normal_02, name='proj')(merge_heads(out))
        return nn.Dropout(self.drop_rate, deterministic=not train)(out)


class Block(nn.Module):
    """``x + drop_path(gamma_1 * attn(norm1(x)))``, then the same with ``mlp`` / ``norm2``;
    ``gamma_*`` (layer scale) exist only when ``init_values > 0``."""

    embed_dims: int
    num_heads: int
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    qk_scale: float | None = None
    drop_rate: float = 0.0
    attn_drop_rate: float = 0.0
    drop_path_rate: float = 0.0
    init_values: float = 0.0
    norm_cfg: Mapping[str, Any] = FrozenDict(type='LN', eps=1e-6)

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        c = self.embed_dims
        drop_path = DropPath(self.drop_path_rate)
        y = build_layer_norm(self.norm_cfg, 'backbone.norm_cfg', 'norm1')(x)
        y = Attention(c, self.num_heads, self.qkv_bias, self.qk_scale, self.attn_drop_rate, self.drop_rate,
                      name='attn')(y, train)
        layer_scale = isinstance(self.init_values, float) and self.init_values > 0  # as MMAction2
        if layer_scale:
            y = self.param('gamma_1', nn.initializers.constant(self.init_values), (c,)) * y
        x = x + drop_path(y, deterministic=not train)
        y = build_layer_norm(self.norm_cfg, 'backbone.norm_cfg', 'norm2')(x)
        y = FFN(c, int(c * self.mlp_ratio), ffn_drop=self.drop_rate, name='mlp')(y, train)
        if layer_scale:
            y = self.param('gamma_2', nn.initializers.constant(self.init_values), (c,)) * y
        return x + drop_path(y, deterministic=not train)


@BACKBONES.register_module()
class VisionTransformer(nn.Module):
    """VideoMAE's ViT; arguments as MMAction2 1.2.0's ``VisionTransformer``.

    ``pretrained`` is kept for the config's sake: weights come from converted checkpoints.
    """

    img_size: int = 224
    patch_size: int = 16
    in_channels: int = 3
    embed_dims: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    qk_scale: float | None = None
    drop_rate: float = 0.0
    attn_drop_rate: float = 0.0
    drop_path_rate: float = 0.0
    norm_cfg: Mapping[str, Any] = FrozenDict(type='LN', eps=1e-6)
    init_values: float = 0.0
    use_learnable_pos_emb: bool = False
    num_frames: int = 16
    tubelet_size: int = 2
    use_mean_pooling: bool = True
    pretrained: str | None = None
    return_feat_map: bool = False
    init_cfg: Any = None

    @property
    def grid_size(self) -> tuple[int, int, int]:
        """Tokens along (T, H, W) for the configured clip."""
        side = self.img_size // self.patch_size
        return (self.num_frames // self.tubelet_size, side, side)

    @property
    def clip_shape(self) -> tuple[int, int, int]:
        """The ``(T, H, W)`` clip the position embedding was made for."""
        return (self.num_frames, self.img_size, self.img_size)

    def sinusoid_pos_embed(self) -> np.ndarray:
        return sinusoid_encoding(int(np.prod(self.grid_size)), self.embed_dims)

    def pos_embed(self, grid: tuple[int, int, int]) -> jax.Array:
        """The position embedding for a ``grid`` of tokens, resized from the configured one."""
        if self.use_learnable_pos_emb:
            shape = (1, int(np.prod(self.grid_size)), self.embed_dims)
            table = self.param('pos_embed', trunc_normal_02, shape)
        else:
            table = jnp.asarray(self.sinusoid_pos_embed())
        if grid == self.grid_size:
            return table
        if grid[0] != self.grid_size[0]:
            raise ValueError(f'VisionTransformer: {grid[0] * self.tubelet_size} frames give {grid[0]} '
                             f'tubelets, the position embedding has {self.grid_size[0]} '
                             f'(backbone.num_frames={self.num_frames}); MMAction2 resizes only the '
                             'spatial grid')
        table = table.reshape(-1, *self.grid_size[1:], self.embed_dims)
        table = resize_axes(table, grid[1:], axes=(1, 2), mode='bicubic')
        return table.reshape(1, -1, self.embed_dims)

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        if x.ndim != 5 or x.shape[-1] != self.in_channels:
            raise ValueError(f'VisionTransformer takes (B, T, H, W, {self.in_channels}) clips '
                             f'(backbone.in_channels), got shape {x.shape}')
        b, e = x.shape[0], self.embed_dims
        x = PatchEmbed((self.tubelet_size, self.patch_size, self.patch_size), e, name='patch_embed')(x)
        grid = tuple(x.shape[1:4])
        x = x.reshape(b, -1, e) + self.pos_embed(grid).astype(x.dtype)
        x = nn.Dropout(self.drop_rate, deterministic=not train)(x)
        rates = np.linspace(0, self.drop_path_rate, self.depth, dtype=np.float32)
        blocks = ModuleList(name='blocks')
        for i in range(self.depth):
            x = blocks(partial(Block, e, self.num_heads, self.mlp_ratio, self.qkv_bias, self.qk_scale,
                               self.drop_rate, self.attn_drop_rate, float(rates[i]), self.init_values,
                               self.norm_cfg, name=str(i)), x, train)
        if not self.use_mean_pooling:
            x = build_layer_norm(self.norm_cfg, 'backbone.norm_cfg', 'norm')(x)
        if self.return_feat_map:
            return x.reshape(b, *grid, e)
        if self.use_mean_pooling:
            return build_layer_norm(self.norm_cfg, 'backbone.norm_cfg', 'fc_norm')(x.mean(axis=1))
        return x[:, 0]  # MMAction2 returns the first token (this ViT has no class token)

    def torch_buffers(self) -> dict[str, np.ndarray]:
        """MMAction2's persistent buffers (keys relative to the backbone): the fixed sin-cos
        ``pos_embed`` (none with ``use_learnable_pos_emb``)."""
        return {} if self.use_learnable_pos_emb else {'pos_embed': self.sinusoid_pos_embed()}
