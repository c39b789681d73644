"""MViTv2 (MMAction2's ``MViT``) on channels-last video.

Input ``(B, T, H, W, C)``. A strided Conv3d embeds patches, a class token is prepended
and ``num_layers`` multi-scale blocks follow. Each block attends with *pooled* queries,
keys and values (depthwise Conv3d + LayerNorm per head): at the first block of a stage
the queries are pooled 2x in space (the token grid halves, channels and heads double),
and keys/values are pooled by ``adaptive_kv_stride`` (halved at every stage). Attention
logits get a decomposed relative position bias (``rel_pos_t/h/w``, one table per axis,
resized linearly when the grid differs from the configured one) and the pooled query is
added back to the output (``residual_pooling``).

The output is a tuple with one entry per ``out_scales`` stage: ``(patch_tokens, cls_token)``
with ``patch_tokens`` ``(B, T', H', W', C)`` (MMAction2's is NCTHW) and ``cls_token``
``(B, C)``, or the patch tokens alone without ``output_cls_token``.

Names are MMAction2 1.2.0's: ``patch_embed.projection``, ``cls_token``, ``pos_embed``,
``blocks.{i}.{norm1, attn.{qkv, proj, pool_q, norm_q, pool_k, norm_k, pool_v, norm_v,
rel_pos_h, rel_pos_w, rel_pos_t}, norm2, mlp.{fc1, fc2}, proj}`` and ``norm{stage}``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax.core import FrozenDict

from actionjax.models.common.attention import attend, trunc_normal_02
from actionjax.models.common.conv_module import Conv
from actionjax.models.common.drop_path import DropPath
from actionjax.models.common.ffn import build_activation
from actionjax.models.common.interpolate import resize_axes
from actionjax.models.common.layer_norm import build_layer_norm
from actionjax.models.common.module_list import ModuleList
from actionjax.registry import BACKBONES

Triple = tuple[int, int, int]


def conv_out_size(size: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
                  padding: Sequence[int]) -> Triple:
    """Output grid of a convolution / pooling (torch's floor formula)."""
    return tuple((s + 2 * p - k) // st + 1 for s, k, st, p in zip(size, kernel, stride, padding, strict=True))


# ----------------------------------------------------------------------------- relative positions

def rel_pos_index(q_size: int, k_size: int) -> np.ndarray:
    """``(q, k)`` rows of the table for each query / key position along one axis.

    Positions of the smaller grid are stretched to the larger one; computed in float32
    and truncated, as MMAction2 (torch) does.
    """
    q_ratio = np.float32(max(k_size / q_size, 1.0))
    k_ratio = np.float32(max(q_size / k_size, 1.0))
    coords = (np.arange(q_size, dtype=np.float32)[:, None] * q_ratio
              - np.arange(k_size, dtype=np.float32)[None, :] * k_ratio)
    return (coords + np.float32((k_size - 1) * float(k_ratio))).astype(np.int64)


def decomposed_rel_pos(table: jax.Array, q_size: int, k_size: int) -> jax.Array:
    """``(q, k, head_dim)`` embeddings of every query-key offset along one axis; the table
    is resized (linearly) to ``2 * max(q, k) - 1`` rows first when it has another length."""
    rows = 2 * max(q_size, k_size) - 1
    if table.shape[0] != rows:
        table = resize_axes(table, (rows,), axes=(0,), mode='linear')
    return table[rel_pos_index(q_size, k_size)]


def rel_pos_bias(q: jax.Array, q_shape: Triple, k_shape: Triple, rel_pos_h: jax.Array,
                 rel_pos_w: jax.Array, rel_pos_t: jax.Array) -> jax.Array:
    """``(B, heads, Nq, Nk)`` decomposed relative position bias for the grid tokens of ``q``
    ``(B, heads, Nq, head_dim)``: ``q . R_t + q . R_h + q . R_w`` per key position."""
    b, heads, _, dim = q.shape
    r_q = q.reshape(b, heads, *q_shape, dim)
    rel_t = jnp.einsum('bythwc,tkc->bythwk', r_q, decomposed_rel_pos(rel_pos_t, q_shape[0], k_shape[0]))
    rel_h = jnp.einsum('bythwc,hkc->bythwk', r_q, decomposed_rel_pos(rel_pos_h, q_shape[1], k_shape[1]))
    rel_w = jnp.einsum('bythwc,wkc->bythwk', r_q, decomposed_rel_pos(rel_pos_w, q_shape[2], k_shape[2]))
    bias = (rel_t[..., :, None, None] + rel_h[..., None, :, None] + rel_w[..., None, None, :])
    return bias.reshape(b, heads, int(np.prod(q_shape)), int(np.prod(k_shape)))


# ----------------------------------------------------------------------------- modules

def attention_pool(x: jax.Array, pool: nn.Module, norm: nn.Module | None, in_size: Triple,
                   with_cls_token: bool) -> tuple[jax.Array, Triple]:
    """Pool the grid tokens of ``(B, heads, L, C)`` with ``pool`` (on ``(B * heads, T, H, W, C)``),
    then apply ``norm`` to every token, the class token included."""
    b, heads, _, dim = x.shape
    cls_token, tokens = (x[:, :, :1], x[:, :, 1:]) if with_cls_token else (None, x)
    tokens = pool(tokens.reshape(b * heads, *in_size, dim))
    out_size = tuple(tokens.shape[1:4])
    x = tokens.reshape(b, heads, -1, dim)
    if cls_token is not None:
        x = jnp.concatenate([cls_token, x], axis=2)
    return (x if norm is None else norm(x)), out_size


class MultiScaleAttention(nn.Module):
    """Pooling attention with decomposed relative positions and residual pooling."""

    in_dims: int
    out_dims: int
    num_heads: int
    input_size: Triple
    qkv_bias: bool = True
    norm_cfg: Mapping[str, Any] = FrozenDict(type='LN')
    pool_kernel: Triple = (3, 3, 3)
    stride_q: Triple = (1, 1, 1)
    stride_kv: Triple = (1, 1, 1)
    rel_pos_embed: bool = True
    residual_pooling: bool = True
    rel_pos_zero_init: bool = False
    with_cls_token: bool = True

    def rel_pos_shapes(self) -> dict[str, tuple[int, int]]:
        """Shapes of ``rel_pos_h/w/t`` for the configured input (MMAction2 needs H == W)."""
        dim = self.out_dims // self.num_heads
        size = self.input_size[1]
        rows = 2 * max(size // self.stride_q[1], size // self.stride_kv[1]) - 1
        return dict(rel_pos_h=(rows, dim), rel_pos_w=(rows, dim), rel_pos_t=(2 * self.input_size[0] - 1, dim))

    @nn.compact
    def __call__(self, x: jax.Array, in_size: Triple) -> tuple[jax.Array, Triple]:
        b, n, _ = x.shape
        heads, dim = self.num_heads, self.out_dims // self.num_heads
        qkv = nn.Dense(3 * self.out_dims, use_bias=self.qkv_bias, kernel_init=trunc_normal_02, name='qkv')(x)
        q, k, v = qkv.reshape(b, n, 3, heads, dim).transpose(2, 0, 3, 1, 4)  # each (B, heads, N, dim)
        padding = [(size // 2, size // 2) for size in self.pool_kernel]
        pooled = []
        for name, t, stride in (('q', q, self.stride_q), ('k', k, self.stride_kv), ('v', v, self.stride_kv)):
            # a depthwise Conv3d per head channel, then LayerNorm: torch's pool_{q,k,v} / norm_{q,k,v}
            pool = Conv(dim, self.pool_kernel, strides=stride, padding=padding, feature_group_count=dim,
                        use_bias=False, kernel_init=trunc_normal_02, name=f'pool_{name}')
            norm = build_layer_norm(self.norm_cfg, 'backbone.norm_cfg', f'norm_{name}')
            pooled.append(attention_pool(t, pool, norm, in_size, self.with_cls_token))
        (q, q_shape), (k, k_shape), (v, _) = pooled
        bias = None
        if self.rel_pos_embed:
            init = nn.initializers.zeros if self.rel_pos_zero_init else trunc_normal_02
            tables = {name: self.param(name, init, shape) for name, shape in self.rel_pos_shapes().items()}
            start = 1 if self.with_cls_token else 0
            bias = rel_pos_bias(q[:, :, start:], q_shape, k_shape, tables['rel_pos_h'], tables['rel_pos_w'],
                                tables['rel_pos_t'])
            bias = jnp.pad(bias, ((0, 0), (0, 0), (start, 0), (start, 0)))  # the class token has none
        out = attend(*(t.transpose(0, 2, 1, 3) for t in (q, k, v)), bias, scale=dim ** -0.5)
        out = out.transpose(0, 2, 1, 3)  # (B, heads, Nq, dim)
        if self.residual_pooling:
            start = 1 if self.with_cls_token else 0
            out = out.at[:, :, start:].add(q[:, :, start:])
        out = out.transpose(0, 2, 1, 3).reshape(b, -1, self.out_dims)
        return nn.Dense(self.out_dims, kernel_init=trunc_normal_02, name='proj')(out), q_shape


class MLP(nn.Module):
    """``fc1`` -> activation -> ``fc2`` (MViT's own MLP: its output width may differ)."""

    hidden_channels: int
    out_channels: int
    act_cfg: Mapping[str, Any] = FrozenDict(type='GELU')

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = nn.Dense(self.hidden_channels, kernel_init=trunc_normal_02, name='fc1')(x)
        x = build_activation(self.act_cfg, 'backbone.act_cfg')(x)
        return nn.Dense(self.out_channels, kernel_init=trunc_normal_02, name='fc2')(x)


def pool_skip(x: jax.Array, in_size: Triple, stride: Triple, with_cls_token: bool) -> jax.Array:
    """The shortcut of a query-pooling block: max pool (kernel stride + 1 where strided,
    padding kernel // 2, -inf padded as torch's MaxPool3d) over the grid tokens of ``(B, L, C)``."""
    kernel = tuple(s + 1 if s > 1 else s for s in stride)
    b, _, c = x.shape
    cls_token, tokens = (x[:, :1], x[:, 1:]) if with_cls_token else (None, x)
    tokens = nn.max_pool(tokens.reshape(b, *in_size, c), kernel, stride, [(k // 2, k // 2) for k in kernel])
    tokens = tokens.reshape(b, -1, c)
    return tokens if cls_token is None else jnp.concatenate([cls_token, tokens], axis=1)


@dataclasses.dataclass(frozen=True)
class BlockSetting:
    """What block ``i`` of an MViT is built with (MMAction2's ``MViT.__init__`` loop)."""

    in_dims: int
    out_dims: int
    num_heads: int
    stride_q: Triple
    stride_kv: Triple
    input_size: Triple
    drop_path: float


class MultiScaleBlock(nn.Module):
    """norm1 -> pooling attention (+ pooled / projected shortcut); norm2 -> MLP (+ shortcut)."""

    setting: BlockSetting
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    norm_cfg: Mapping[str, Any] = FrozenDict(type='LN')
    act_cfg: Mapping[str, Any] = FrozenDict(type='GELU')
    pool_kernel: Triple = (3, 3, 3)
    rel_pos_embed: bool = True
    residual_pooling: bool = True
    with_cls_token: bool = True
    dim_mul_in_attention: bool = True
    rel_pos_zero_init: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, in_size: Triple, train: bool = False) -> tuple[jax.Array, Triple]:
        s = self.setting
        attn_dims = s.out_dims if self.dim_mul_in_attention else s.in_dims
        drop_path = DropPath(s.drop_path)
        proj = None
        if s.in_dims != s.out_dims:
            proj = nn.Dense(s.out_dims, kernel_init=trunc_normal_02, name='proj')
        x_norm = build_layer_norm(self.norm_cfg, 'backbone.norm_cfg', 'norm1')(x)
        x_attn, out_size = MultiScaleAttention(
            s.in_dims, attn_dims, s.num_heads, s.input_size, self.qkv_bias, self.norm_cfg, self.pool_kernel,
            s.stride_q, s.stride_kv, self.rel_pos_embed, self.residual_pooling, self.rel_pos_zero_init,
            self.with_cls_token, name='attn')(x_norm, in_size)
        skip = proj(x_norm) if self.dim_mul_in_attention and proj is not None else x
        if np.prod(s.stride_q) > 1:
            skip = pool_skip(skip, in_size, s.stride_q, self.with_cls_token)
        x = skip + drop_path(x_attn, deterministic=not train)
        x_norm = build_layer_norm(self.norm_cfg, 'backbone.norm_cfg', 'norm2')(x)
        x_mlp = MLP(int(attn_dims * self.mlp_ratio), s.out_dims, self.act_cfg, name='mlp')(x_norm)
        skip = proj(x_norm) if not self.dim_mul_in_attention and proj is not None else x
        return skip + drop_path(x_mlp, deterministic=not train), out_size


class PatchEmbed3D(nn.Module):
    """A Conv3d ``projection`` with explicit padding; returns tokens and their grid."""

    embed_dims: int
    kernel_size: Triple
    stride: Triple
    padding: Triple

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, Triple]:
        x = Conv(self.embed_dims, self.kernel_size, strides=self.stride,
                 padding=[(p, p) for p in self.padding], kernel_init=trunc_normal_02, name='projection')(x)
        return x.reshape(x.shape[0], -1, self.embed_dims), tuple(x.shape[1:4])


def _triple(value: int | Sequence[int]) -> Triple:
    return (value,) * 3 if isinstance(value, int) else tuple(value)  # type: ignore[return-value]


@BACKBONES.register_module()
class MViT(nn.Module):
    """MViTv2; arguments as MMAction2 1.2.0's ``MViT``.

    ``pretrained`` / ``pretrained_type`` are kept for the config's sake: weights come from
    converted checkpoints.
    """

    arch_zoo: ClassVar[dict[str, dict[str, Any]]] = {
        'tiny': dict(embed_dims=96, num_layers=10, num_heads=1, downscale_indices=(1, 3, 8)),
        'small': dict(embed_dims=96, num_layers=16, num_heads=1, downscale_indices=(1, 3, 14)),
        'base': dict(embed_dims=96, num_layers=24, num_heads=1, downscale_indices=(2, 5, 21)),
        'large': dict(embed_dims=144, num_layers=48, num_heads=2, downscale_indices=(2, 8, 44)),
    }

    arch: str | Mapping[str, Any] = 'base'
    spatial_size: int = 224
    temporal_size: int = 16
    in_channels: int = 3
    pretrained: str | None = None
    pretrained_type: str | None = None
    out_scales: int | Sequence[int] = -1
    drop_path_rate: float = 0.0
    use_abs_pos_embed: bool = False
    interpolate_mode: str = 'trilinear'
    pool_kernel: Sequence[int] = (3, 3, 3)
    dim_mul: int = 2
    head_mul: int = 2
    adaptive_kv_stride: Sequence[int] = (1, 8, 8)
    rel_pos_embed: bool = True
    residual_pooling: bool = True
    dim_mul_in_attention: bool = True
    with_cls_token: bool = True
    output_cls_token: bool = True
    rel_pos_zero_init: bool = False
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    norm_cfg: Mapping[str, Any] = FrozenDict(type='LN', eps=1e-6)
    patch_cfg: Mapping[str, Any] = FrozenDict(kernel_size=(3, 7, 7), stride=(2, 4, 4), padding=(1, 3, 3))
    init_cfg: Any = None

    def __post_init__(self) -> None:
        if isinstance(self.arch, str) and self.arch.lower() not in self.arch_zoo:
            raise KeyError(f'backbone.arch {self.arch!r} is not one of {sorted(self.arch_zoo)}')
        if not isinstance(self.arch, str):
            missing = {'embed_dims', 'num_layers', 'num_heads', 'downscale_indices'} - set(self.arch)
            if missing:
                raise ValueError(f'backbone.arch needs the keys {sorted(missing)}')
        if self.output_cls_token and not self.with_cls_token:
            raise ValueError('backbone.output_cls_token=True needs backbone.with_cls_token=True')
        if self.interpolate_mode != 'trilinear':
            raise NotImplementedError(f'backbone.interpolate_mode {self.interpolate_mode!r}: only '
                                      "'trilinear' is supported")
        super().__post_init__()

    @property
    def arch_settings(self) -> dict[str, Any]:
        return dict(self.arch_zoo[self.arch.lower()] if isinstance(self.arch, str) else self.arch)

    @property
    def num_scales(self) -> int:
        return len(self.arch_settings['downscale_indices']) + 1

    @property
    def scales_out(self) -> list[int]:
        """``out_scales`` with negative indices counted from the end, sorted."""
        scales = [self.out_scales] if isinstance(self.out_scales, int) else list(self.out_scales)
        scales = [s + self.num_scales if s < 0 else s for s in scales]
        if any(not 0 <= s <= self.num_scales for s in scales):
            raise ValueError(f'backbone.out_scales {self.out_scales} out of range for {self.num_scales} '
                             'scales')
        return sorted(scales)

    @property
    def stage_ends(self) -> dict[int, int]:
        """``{block index: stage index}`` of the last block of every stage."""
        settings = self.arch_settings
        ends = {index - 1: i for i, index in enumerate(settings['downscale_indices'])}
        ends[settings['num_layers'] - 1] = self.num_scales - 1
        return ends

    @property
    def patch_resolution(self) -> Triple:
        """The token grid of the configured input (``temporal_size`` x ``spatial_size``^2)."""
        return conv_out_size(self.clip_shape, *self.patch_geometry())

    def patch_geometry(self) -> tuple[Triple, Triple, Triple]:
        """``(kernel_size, stride, padding)`` of the patch embedding."""
        cfg = self.patch_cfg
        return _triple(cfg['kernel_size']), _triple(cfg['stride']), _triple(cfg['padding'])

    def block_settings(self) -> list[BlockSetting]:
        settings = self.arch_settings
        downscale = list(settings['downscale_indices'])
        dim_mul_indices = list(settings.get('dim_mul_indices', downscale))
        rates = np.linspace(0, self.drop_path_rate, settings['num_layers'])
        heads, dims = settings['num_heads'], settings['embed_dims']
        stride_kv = _triple(self.adaptive_kv_stride)
        input_size = self.patch_resolution
        blocks = []
        for i in range(settings['num_layers']):
            if i in downscale or i in dim_mul_indices:
                heads *= self.head_mul
            if i in downscale:
                stride_q = (1, 2, 2)
                stride_kv = tuple(max(s // 2, 1) for s in stride_kv)
            else:
                stride_q = (1, 1, 1)
            if (self.dim_mul_in_attention and i in dim_mul_indices) or \
                    (not self.dim_mul_in_attention and i + 1 in dim_mul_indices):
                out_dims = dims * self.dim_mul
            else:
                out_dims = dims
            blocks.append(BlockSetting(dims, out_dims, heads, stride_q, stride_kv, input_size,
                                       float(rates[i])))
            if np.prod(stride_q) > 1:
                input_size = tuple(s // st for s, st in zip(input_size, stride_q, strict=True))
            dims = out_dims
        return blocks

    @property
    def clip_shape(self) -> Triple:
        """The ``(T, H, W)`` the relative position tables were made for."""
        return (self.temporal_size, self.spatial_size, self.spatial_size)

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> tuple[Any, ...]:
        if x.ndim != 5 or x.shape[-1] != self.in_channels:
            raise ValueError(f'MViT takes (B, T, H, W, {self.in_channels}) clips (backbone.in_channels), '
                             f'got shape {x.shape}')
        dims = self.arch_settings['embed_dims']
        x, grid = PatchEmbed3D(dims, *self.patch_geometry(), name='patch_embed')(x)
        cls_token = self.param('cls_token', trunc_normal_02, (1, 1, dims))
        x = jnp.concatenate([jnp.broadcast_to(cls_token, (x.shape[0], 1, dims)), x], axis=1)
        if self.use_abs_pos_embed:
            num_tokens = int(np.prod(self.patch_resolution)) + 1
            pos_embed = self.param('pos_embed', trunc_normal_02, (1, num_tokens, dims))
            x = x + self.resize_pos_embed(pos_embed, grid)
        if not self.with_cls_token:
            x = x[:, 1:]
        block_args = dict(mlp_ratio=self.mlp_ratio, qkv_bias=self.qkv_bias, norm_cfg=self.norm_cfg,
                          pool_kernel=_triple(self.pool_kernel), rel_pos_embed=self.rel_pos_embed,
                          residual_pooling=self.residual_pooling, with_cls_token=self.with_cls_token,
                          dim_mul_in_attention=self.dim_mul_in_attention,
                          rel_pos_zero_init=self.rel_pos_zero_init)
        blocks = ModuleList(name='blocks')
        outs = []
        for i, setting in enumerate(self.block_settings()):
            x, grid = blocks(partial(MultiScaleBlock, setting, **block_args, name=str(i)), x, grid, train)
            stage = self.stage_ends.get(i)
            if stage is not None and stage in self.scales_out:
                x = build_layer_norm(self.norm_cfg, 'backbone.norm_cfg', f'norm{stage}')(x)
                tokens = x[:, 1:] if self.with_cls_token else x
                patch_tokens = tokens.reshape(x.shape[0], *grid, x.shape[-1])
                outs.append((patch_tokens, x[:, 0]) if self.output_cls_token else patch_tokens)
        return tuple(outs)

    def resize_pos_embed(self, pos_embed: jax.Array, grid: Triple) -> jax.Array:
        """The absolute position embedding for ``grid``, trilinearly resized from the configured one."""
        if grid == self.patch_resolution:
            return pos_embed
        table = pos_embed[:, 1:].reshape(1, *self.patch_resolution, -1)
        table = resize_axes(table, grid, axes=(1, 2, 3), mode='linear')
        return jnp.concatenate([pos_embed[:, :1], table.reshape(1, -1, table.shape[-1])], axis=1)
