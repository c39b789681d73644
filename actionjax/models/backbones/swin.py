"""Video Swin Transformer (MMAction2's ``SwinTransformer3D``) on channels-last video.

Input ``(B, T, H, W, C)``, output the ``(B, T', H', W', C')`` map of each stage in
``out_indices`` after its ``norm{i}`` (MMAction2 returns it as NCTHW). Module names are
MMAction2 1.2.0's: ``patch_embed.proj``/``.norm``, ``layers.{i}.blocks.{j}.{norm1, attn.qkv,
attn.proj, attn.relative_position_bias_table, norm2, mlp.fc1, mlp.fc2}``,
``layers.{i}.downsample.{norm, reduction}`` and ``norm{i}``.

What MMAction2 computes and keeps as buffers is computed here in numpy when tracing,
never stored as variables: the relative position index of every block
(``torch_buffers()`` gives it back to the checkpoint converter) and the attention mask of
the shifted windows. Both follow MMAction2 exactly, including two details that matter for
inputs smaller than a window: the window shrinks to the input along that axis and its
shift drops to 0, and the index table of the configured window is then cut to
``[:N, :N]`` (N = tokens of the shrunk window), not rebuilt for the smaller window.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax.core import FrozenDict

from actionjax.models.common.attention import attend, merge_heads, split_heads, trunc_normal_02
from actionjax.models.common.conv_module import Conv
from actionjax.models.common.drop_path import DropPath
from actionjax.models.common.ffn import build_activation
from actionjax.models.common.layer_norm import build_layer_norm
from actionjax.models.common.module_list import ModuleList
from actionjax.registry import BACKBONES

Triple = tuple[int, int, int]
MASKED = -100.0  # MMAction2's additive mask between tokens of different shifted regions


# ----------------------------------------------------------------------------- windows (numpy)

def window_and_shift(x_size: Sequence[int], window_size: Sequence[int],
                     shift_size: Sequence[int]) -> tuple[Triple, Triple]:
    """The window and shift a block uses on a ``(D, H, W)`` input: where the input is not
    larger than the window, the window is the input and there is no shift."""
    window = tuple(x if x <= w else w for x, w in zip(x_size, window_size, strict=True))
    shift = tuple(0 if x <= w else s for x, w, s in zip(x_size, window_size, shift_size, strict=True))
    return window, shift


def relative_position_index(window_size: Sequence[int]) -> np.ndarray:
    """``(N, N)`` int64 index into the bias table for every token pair of a window, N = Wd*Wh*Ww.

    The pair's offset along each axis, shifted to start at 0, in mixed radix
    ``(2Wh - 1)(2Ww - 1)``, ``2Ww - 1``, 1.
    """
    wd, wh, ww = window_size
    coords = np.stack(np.meshgrid(np.arange(wd), np.arange(wh), np.arange(ww), indexing='ij')).reshape(3, -1)
    offsets = (coords[:, :, None] - coords[:, None, :]).transpose(1, 2, 0)
    offsets = offsets + np.array([wd - 1, wh - 1, ww - 1])
    radix = np.array([(2 * wh - 1) * (2 * ww - 1), 2 * ww - 1, 1])
    return (offsets * radix).sum(-1).astype(np.int64)


def window_partition(x: jax.Array, window: Sequence[int]) -> jax.Array:
    """``(B, D, H, W, C)`` -> ``(B * num_windows, Wd * Wh * Ww, C)``, windows in (d, h, w) order."""
    b, d, h, w, c = x.shape
    wd, wh, ww = window
    x = x.reshape(b, d // wd, wd, h // wh, wh, w // ww, ww, c)
    return x.transpose(0, 1, 3, 5, 2, 4, 6, 7).reshape(-1, wd * wh * ww, c)


def window_reverse(windows: jax.Array, window: Sequence[int], shape: Sequence[int]) -> jax.Array:
    """The inverse of :func:`window_partition` for a ``(B, D, H, W)`` map."""
    b, d, h, w = shape
    wd, wh, ww = window
    x = windows.reshape(b, d // wd, h // wh, w // ww, wd, wh, ww, -1)
    return x.transpose(0, 1, 4, 2, 5, 3, 6, 7).reshape(b, d, h, w, -1)


def shifted_window_mask(padded_size: Sequence[int], window: Sequence[int],
                        shift: Sequence[int]) -> np.ndarray:
    """``(num_windows, N, N)`` float32: 0 within a region of the rolled map, -100 across regions.

    Regions are the three slices ``[:-window]``, ``[-window:-shift]``, ``[-shift:]`` per
    axis, assigned in that order; with a zero shift the last slice is the whole axis and
    overwrites the others, as in MMAction2.
    """
    img = np.zeros((1, *padded_size, 1), np.float32)
    slices = [(slice(-w), slice(-w, -s), slice(-s, None)) for w, s in zip(window, shift, strict=True)]
    for count, (d, h, w) in enumerate(itertools.product(*slices)):
        img[:, d, h, w, :] = count
    regions = np.asarray(window_partition(img, window))[..., 0]
    same = regions[:, None, :] == regions[:, :, None]
    return np.where(same, 0.0, MASKED).astype(np.float32)


# ----------------------------------------------------------------------------- modules

class WindowAttention3D(nn.Module):
    """Multi-head self-attention inside windows, with a learned relative position bias."""

    embed_dims: int
    window_size: Triple
    num_heads: int
    qkv_bias: bool = True
    qk_scale: float | None = None
    attn_drop: float = 0.0
    proj_drop: float = 0.0

    @nn.compact
    def __call__(self, x: jax.Array, mask: np.ndarray | None, train: bool = False) -> jax.Array:
        """``x``: ``(B * num_windows, N, C)``; ``mask``: ``(num_windows, N, N)`` or None."""
        windows, n, c = x.shape
        wd, wh, ww = self.window_size
        table = self.param('relative_position_bias_table', trunc_normal_02,
                           ((2 * wd - 1) * (2 * wh - 1) * (2 * ww - 1), self.num_heads))
        index = relative_position_index(self.window_size)[:n, :n]
        bias = table[index.reshape(-1)].reshape(n, n, -1).transpose(2, 0, 1).astype(x.dtype)  # (heads, N, N)
        qkv = nn.Dense(3 * c, use_bias=self.qkv_bias, kernel_init=trunc_normal_02, name='qkv')(x)
        q, k, v = split_heads(qkv, self.num_heads)
        scale = self.qk_scale or (c // self.num_heads) ** -0.5
        rng = self.make_rng('dropout') if train and self.attn_drop > 0 else None
        if mask is None:
            out = attend(q, k, v, bias, scale=scale, dropout_rate=self.attn_drop, dropout_rng=rng)
        else:  # windows come as (batch, num_windows): each window's mask applies to all its heads
            q, k, v = (t.reshape(-1, mask.shape[0], *t.shape[1:]) for t in (q, k, v))
            out = attend(q, k, v, (bias, mask[:, None].astype(x.dtype)), scale=scale,
                         dropout_rate=self.attn_drop, dropout_rng=rng).reshape(windows, n, *q.shape[-2:])
        out = nn.Dense(c, kernel_init=trunc_normal_02, name='proj')(merge_heads(out))
        return nn.Dropout(self.proj_drop, deterministic=not train)(out)


class Mlp(nn.Module):
    """``fc1`` -> activation -> dropout -> ``fc2`` -> dropout (Swin's own MLP names)."""

    hidden_features: int
    act_cfg: Mapping[str, Any] = FrozenDict(type='GELU')
    drop: float = 0.0

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        out_features = x.shape[-1]
        x = nn.Dense(self.hidden_features, kernel_init=trunc_normal_02, name='fc1')(x)
        x = build_activation(self.act_cfg, 'backbone.act_cfg')(x)
        x = nn.Dropout(self.drop, deterministic=not train)(x)
        x = nn.Dense(out_features, kernel_init=trunc_normal_02, name='fc2')(x)
        return nn.Dropout(self.drop, deterministic=not train)(x)


class SwinTransformerBlock3D(nn.Module):
    """LayerNorm -> (shifted) window attention -> residual; LayerNorm -> MLP -> residual."""

    embed_dims: int
    num_heads: int
    window_size: Triple = (8, 7, 7)
    shift_size: Triple = (0, 0, 0)
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    qk_scale: float | None = None
    drop: float = 0.0
    attn_drop: float = 0.0
    drop_path: float = 0.1
    act_cfg: Mapping[str, Any] = FrozenDict(type='GELU')
    norm_cfg: Mapping[str, Any] = FrozenDict(type='LN')

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        b, d, h, w, c = x.shape
        window, shift = window_and_shift((d, h, w), self.window_size, self.shift_size)
        drop_path = DropPath(self.drop_path)

        y = build_layer_norm(self.norm_cfg, 'backbone.norm_cfg', 'norm1')(x)
        pads = [(-size) % win for size, win in zip((d, h, w), window, strict=True)]
        y = jnp.pad(y, ((0, 0), *((0, p) for p in pads), (0, 0)))
        padded = y.shape[1:4]
        shifted = any(s > 0 for s in shift)
        if shifted:
            y = jnp.roll(y, [-s for s in shift], axis=(1, 2, 3))
        mask = shifted_window_mask(padded, window, shift) if shifted else None
        attn = WindowAttention3D(self.embed_dims, self.window_size, self.num_heads, self.qkv_bias,
                                 self.qk_scale, self.attn_drop, self.drop, name='attn')
        y = window_reverse(attn(window_partition(y, window), mask, train), window, (b, *padded))
        if shifted:
            y = jnp.roll(y, shift, axis=(1, 2, 3))
        x = x + drop_path(y[:, :d, :h, :w], deterministic=not train)

        y = build_layer_norm(self.norm_cfg, 'backbone.norm_cfg', 'norm2')(x)
        y = Mlp(int(self.embed_dims * self.mlp_ratio), self.act_cfg, self.drop, name='mlp')(y, train)
        return x + drop_path(y, deterministic=not train)


class PatchMerging(nn.Module):
    """2x2 spatial neighbours concatenated (4C), LayerNorm, Linear to 2C without bias."""

    embed_dims: int
    norm_cfg: Mapping[str, Any] = FrozenDict(type='LN')

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        h, w = x.shape[2:4]
        x = jnp.pad(x, ((0, 0), (0, 0), (0, h % 2), (0, w % 2), (0, 0)))
        x = jnp.concatenate([x[:, :, 0::2, 0::2], x[:, :, 1::2, 0::2],
                             x[:, :, 0::2, 1::2], x[:, :, 1::2, 1::2]], axis=-1)
        x = build_layer_norm(self.norm_cfg, 'backbone.norm_cfg', 'norm')(x)
        return nn.Dense(2 * self.embed_dims, use_bias=False, kernel_init=trunc_normal_02, name='reduction')(x)


class BasicLayer(nn.Module):
    """One stage: ``depth`` blocks (odd ones shifted by half a window), then PatchMerging.

    Returns the blocks' output and the downsampled one (None for the last stage).
    """

    embed_dims: int
    depth: int
    num_heads: int
    window_size: Triple
    drop_paths: Sequence[float]
    block_args: Mapping[str, Any]
    downsample: bool
    with_cp: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array | None]:
        block_cls = nn.remat(SwinTransformerBlock3D, static_argnums=(2,)) if self.with_cp \
            else SwinTransformerBlock3D
        half = tuple(w // 2 for w in self.window_size)
        blocks = ModuleList(name='blocks')
        for i in range(self.depth):
            x = blocks(partial(block_cls, self.embed_dims, self.num_heads, self.window_size,
                               (0, 0, 0) if i % 2 == 0 else half, drop_path=self.drop_paths[i],
                               **self.block_args, name=str(i)), x, train)
        if not self.downsample:
            return x, None
        merged = PatchMerging(self.embed_dims, self.block_args['norm_cfg'], name='downsample')(x)
        return x, merged


class PatchEmbed3D(nn.Module):
    """Non-overlapping ``patch_size`` Conv3d (``proj``), input padded at the end to whole
    patches, then an optional LayerNorm (``norm``)."""

    patch_size: Triple
    embed_dims: int
    norm_cfg: Mapping[str, Any] | None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        pads = [(-size) % p for size, p in zip(x.shape[1:4], self.patch_size, strict=True)]
        x = jnp.pad(x, ((0, 0), *((0, p) for p in pads), (0, 0)))
        x = Conv(self.embed_dims, self.patch_size, strides=self.patch_size, padding='VALID',
                 name='proj')(x)
        if self.norm_cfg is not None:
            x = build_layer_norm(self.norm_cfg, 'backbone.norm_cfg', 'norm')(x)
        return x


@BACKBONES.register_module()
class SwinTransformer3D(nn.Module):
    """Video Swin Transformer; arguments as MMAction2 1.2.0's ``SwinTransformer3D``.

    ``arch`` is 'tiny' / 'small' / 'base' / 'large' (or 't', 's', 'b', 'l') or a dict with
    ``embed_dims``, ``depths`` and ``num_heads``. ``frozen_stages=k`` freezes the patch
    embedding (k >= 0) and stages ``0..k-1`` (their parameters get no update, their
    dropouts and stochastic depth are off). ``with_cp`` rematerialises every block in the
    backward pass (activation checkpointing). ``pretrained`` / ``pretrained2d`` are kept
    for the config's sake: weights come from converted checkpoints.
    """

    arch_zoo: ClassVar[dict[str, dict[str, Any]]] = {
        **dict.fromkeys(['t', 'tiny'], dict(embed_dims=96, depths=(2, 2, 6, 2),
                                            num_heads=(3, 6, 12, 24))),
        **dict.fromkeys(['s', 'small'], dict(embed_dims=96, depths=(2, 2, 18, 2),
                                             num_heads=(3, 6, 12, 24))),
        **dict.fromkeys(['b', 'base'], dict(embed_dims=128, depths=(2, 2, 18, 2),
                                            num_heads=(4, 8, 16, 32))),
        **dict.fromkeys(['l', 'large'], dict(embed_dims=192, depths=(2, 2, 18, 2),
                                             num_heads=(6, 12, 24, 48))),
    }

    arch: str | Mapping[str, Any]
    pretrained: str | None = None
    pretrained2d: bool = True
    patch_size: int | Sequence[int] = (2, 4, 4)
    in_channels: int = 3
    window_size: Sequence[int] = (8, 7, 7)
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    qk_scale: float | None = None
    drop_rate: float = 0.0
    attn_drop_rate: float = 0.0
    drop_path_rate: float = 0.1
    act_cfg: Mapping[str, Any] = FrozenDict(type='GELU')
    norm_cfg: Mapping[str, Any] | None = FrozenDict(type='LN')
    patch_norm: bool = True
    frozen_stages: int = -1
    with_cp: bool = False
    out_indices: Sequence[int] = (3,)
    out_after_downsample: bool = False
    init_cfg: Any = None

    def __post_init__(self) -> None:
        self._check_args()
        super().__post_init__()

    @property
    def arch_settings(self) -> dict[str, Any]:
        if isinstance(self.arch, str):
            return self.arch_zoo[self.arch.lower()]
        return dict(self.arch)

    def _check_args(self) -> None:
        if isinstance(self.arch, str):
            if self.arch.lower() not in self.arch_zoo:
                raise KeyError(f'backbone.arch {self.arch!r} is not one of {sorted(self.arch_zoo)}')
        elif not isinstance(self.arch, Mapping) or set(self.arch) != {'embed_dims', 'depths', 'num_heads'}:
            raise ValueError('backbone.arch must be a name or a dict with exactly embed_dims, depths and '
                             f'num_heads, got {self.arch!r}')
        depths, heads = self.arch_settings['depths'], self.arch_settings['num_heads']
        if len(depths) != len(heads) or not 1 <= len(depths) <= 4:
            raise ValueError(f'backbone.arch: depths {tuple(depths)} and num_heads {tuple(heads)} need the '
                             'same length, 1 to 4 stages')
        if not self.out_indices or max(self.out_indices) >= len(depths):
            raise ValueError(f'backbone.out_indices {tuple(self.out_indices)} must be non-empty and below '
                             f'the number of stages ({len(depths)})')
        if len(self.window_size) != 3 or len(self.patch_triple) != 3:
            raise ValueError('backbone.window_size and backbone.patch_size need 3 entries (t, h, w), got '
                             f'{tuple(self.window_size)} and {self.patch_size}')

    @property
    def patch_triple(self) -> tuple[int, ...]:
        return (self.patch_size,) * 3 if isinstance(self.patch_size, int) else tuple(self.patch_size)

    @property
    def num_features(self) -> list[int]:
        """Channels of each stage's output (after the downsample with ``out_after_downsample``)."""
        n = len(self.arch_settings['depths'])
        dims = [self.arch_settings['embed_dims'] * 2 ** i for i in range(n)]
        if self.out_after_downsample:
            return [d * 2 if i < n - 1 else d for i, d in enumerate(dims)]
        return dims

    def drop_path_rates(self) -> list[float]:
        """Stochastic depth per block, rising linearly from 0 to ``drop_path_rate`` over all blocks."""
        total = sum(self.arch_settings['depths'])
        return [float(r) for r in np.linspace(0, self.drop_path_rate, total, dtype=np.float32)]

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array | tuple[jax.Array, ...]:
        if x.ndim != 5 or x.shape[-1] != self.in_channels:
            raise ValueError(f'SwinTransformer3D takes (B, T, H, W, {self.in_channels}) input '
                             f'(backbone.in_channels), got shape {x.shape}')
        settings = self.arch_settings
        depths = settings['depths']
        window = tuple(self.window_size)
        x = PatchEmbed3D(self.patch_triple, settings['embed_dims'],
                         self.norm_cfg if self.patch_norm else None, name='patch_embed')(x)
        x = nn.Dropout(self.drop_rate, deterministic=not train or self.frozen_stages >= 1)(x)
        block_args = dict(mlp_ratio=self.mlp_ratio, qkv_bias=self.qkv_bias, qk_scale=self.qk_scale,
                          drop=self.drop_rate, attn_drop=self.attn_drop_rate, act_cfg=self.act_cfg,
                          norm_cfg=self.norm_cfg)
        rates = self.drop_path_rates()
        layers = ModuleList(name='layers')
        outs = []
        for i, (depth, heads) in enumerate(zip(depths, settings['num_heads'], strict=True)):
            stage = partial(BasicLayer, settings['embed_dims'] * 2 ** i, depth, heads, window,
                            tuple(rates[sum(depths[:i]):sum(depths[:i + 1])]), FrozenDict(block_args),
                            downsample=i < len(depths) - 1, with_cp=self.with_cp, name=str(i))
            blocks_out, merged = layers(stage, x, train and i >= self.frozen_stages)
            if i in self.out_indices:
                out = merged if self.out_after_downsample and merged is not None else blocks_out
                if self.norm_cfg is not None:
                    out = build_layer_norm(self.norm_cfg, 'backbone.norm_cfg', f'norm{i}')(out)
                outs.append(out)
            x = merged if merged is not None else blocks_out
        return outs[0] if len(outs) == 1 else tuple(outs)

    # -- what the checkpoint holds besides variables, and what never trains -------------

    def torch_buffers(self) -> dict[str, np.ndarray]:
        """MMAction2's persistent buffers (keys relative to the backbone): every block's
        ``attn.relative_position_index``, which this module computes instead of storing."""
        index = relative_position_index(tuple(self.window_size))
        return {f'layers.{i}.blocks.{j}.attn.relative_position_index': index
                for i, depth in enumerate(self.arch_settings['depths']) for j in range(depth)}

    def frozen_prefixes(self) -> tuple[str, ...]:
        """Dotted prefixes (relative to the backbone) of parameters that get no update."""
        if self.frozen_stages < 0:
            return ()
        stages = min(self.frozen_stages, len(self.arch_settings['depths']))
        return ('patch_embed.', *(f'layers.{i}.' for i in range(stages)))
