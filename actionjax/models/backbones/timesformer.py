"""TimeSformer (MMAction2's ``TimeSformer``) on channels-last video.

Input ``(B, T, H, W, C)`` with ``T = num_frames`` and ``H x W = img_size``; output the
class token after the final norm, ``(B, embed_dims)``. Three ``attention_type``s:

* ``'divided_space_time'``: each layer attends over time (per patch), then over space
  (per frame, with the class token), then an FFN; every sub-layer normalises its own
  input (``attentions.0`` temporal, ``attentions.1`` spatial, ``ffns.0``);
* ``'joint_space_time'``: one pre-norm attention over all T * P tokens;
* ``'space_only'``: frames are independent images (ViT), averaged at the end.

Names are MMAction2 1.2.0's (mmcv's ``TransformerLayerSequence``): ``cls_token``,
``pos_embed``, ``time_embed``, ``patch_embed.projection``,
``transformer_layers.layers.{i}.attentions.{j}.{norm, attn.in_proj_weight,
attn.out_proj, temporal_fc}``, ``...ffns.0.{layers.0.0, layers.1, norm}``,
``...norms.{0,1}`` and ``norm``. The fused ``in_proj_weight`` of torch's
``nn.MultiheadAttention`` stays one torch-layout parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax.core import FrozenDict

from actionjax.models.common.attention import TorchMultiheadAttention, trunc_normal_02
from actionjax.models.common.conv_module import Conv
from actionjax.models.common.drop_path import DropPath
from actionjax.models.common.ffn import FFN
from actionjax.models.common.layer_norm import build_layer_norm
from actionjax.models.common.module_list import ModuleList
from actionjax.registry import BACKBONES

LN_1E6 = FrozenDict(type='LN', eps=1e-6)
# MMAction2 builds TimeSformer's layers with stochastic depth rising to 0.1, whatever the config.
DROP_PATH_RATE = 0.1


def _pair(value: int | tuple[int, int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)  # type: ignore[return-value]


class PatchEmbed(nn.Module):
    """Non-overlapping ``patch_size`` Conv2d (``projection``) on every frame -> ``(B*T, P, E)``."""

    patch_size: tuple[int, int]
    embed_dims: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = x.reshape((-1,) + x.shape[2:])  # (B, T, H, W, C) -> (B*T, H, W, C)
        lecun = nn.initializers.variance_scaling(1.0, 'fan_in', 'normal')
        x = Conv(self.embed_dims, self.patch_size, strides=self.patch_size, padding='VALID',
                 kernel_init=lecun, name='projection')(x)
        return x.reshape(x.shape[0], -1, self.embed_dims)


class DividedTemporalAttentionWithNorm(nn.Module):
    """Attention over the T frames of each patch; the class token passes through."""

    embed_dims: int
    num_heads: int
    num_frames: int
    drop_path: float
    norm_cfg: Mapping[str, Any] = LN_1E6

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        cls_token, tokens = x[:, :1], x[:, 1:]
        b, pt, m = tokens.shape
        t = self.num_frames
        y = build_layer_norm(self.norm_cfg, 'attn norm_cfg', 'norm')(tokens.reshape(b * (pt // t), t, m))
        y = TorchMultiheadAttention(m, self.num_heads, name='attn')(y, train)
        y = DropPath(self.drop_path)(y, deterministic=not train)
        y = nn.Dense(m, kernel_init=nn.initializers.zeros, name='temporal_fc')(y)
        return jnp.concatenate([cls_token, tokens + y.reshape(b, pt, m)], axis=1)


class DividedSpatialAttentionWithNorm(nn.Module):
    """Attention over the P patches of each frame, each frame with a copy of the class
    token; the copies' outputs are averaged back into one class token."""

    embed_dims: int
    num_heads: int
    num_frames: int
    drop_path: float
    norm_cfg: Mapping[str, Any] = LN_1E6

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        cls_token, tokens = x[:, :1], x[:, 1:]
        b, pt, m = tokens.shape
        t = self.num_frames
        p = pt // t
        frames = tokens.reshape(b, p, t, m).transpose(0, 2, 1, 3).reshape(b * t, p, m)  # (b t) p m
        frames = jnp.concatenate([jnp.repeat(cls_token, t, axis=0).reshape(b * t, 1, m), frames], axis=1)
        y = build_layer_norm(self.norm_cfg, 'attn norm_cfg', 'norm')(frames)
        y = TorchMultiheadAttention(m, self.num_heads, name='attn')(y, train)
        y = DropPath(self.drop_path)(y, deterministic=not train)
        cls_out = y[:, 0].reshape(b, t, m).mean(axis=1, keepdims=True)
        patches = y[:, 1:].reshape(b, t, p, m).transpose(0, 2, 1, 3).reshape(b, pt, m)  # b (p t) m
        return x + jnp.concatenate([cls_out, patches], axis=1)


class FFNWithNorm(FFN):
    """mmcv's FFN with its own pre-norm (``norm``): ``x + drop_path(fcs(norm(x)))``."""

    norm_cfg: Mapping[str, Any] = LN_1E6

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        return x + super().__call__(build_layer_norm(self.norm_cfg, 'ffn norm_cfg', 'norm')(x), train)


class MultiheadAttention(nn.Module):
    """mmcv's ``MultiheadAttention``: ``identity + drop_path(attn(query))`` around torch's (``attn``)."""

    embed_dims: int
    num_heads: int
    drop_path: float

    @nn.compact
    def __call__(self, query: jax.Array, identity: jax.Array, train: bool = False) -> jax.Array:
        y = TorchMultiheadAttention(self.embed_dims, self.num_heads, name='attn')(query, train)
        return identity + DropPath(self.drop_path)(y, deterministic=not train)


class DividedSpaceTimeLayer(nn.Module):
    """mmcv's ``BaseTransformerLayer`` with ``operation_order=('self_attn', 'self_attn', 'ffn')``."""

    embed_dims: int
    num_heads: int
    num_frames: int
    drop_path: float

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        args = (self.embed_dims, self.num_heads, self.num_frames, self.drop_path)
        attentions = ModuleList(name='attentions')
        x = attentions(partial(DividedTemporalAttentionWithNorm, *args, name='0'), x, train)
        x = attentions(partial(DividedSpatialAttentionWithNorm, *args, name='1'), x, train)
        ffns = ModuleList(name='ffns')
        return ffns(partial(FFNWithNorm, self.embed_dims, 4 * self.embed_dims, drop_path=self.drop_path,
                            name='0'), x, train)


class PreNormLayer(nn.Module):
    """mmcv's ``BaseTransformerLayer`` with ``operation_order=('norm', 'self_attn', 'norm', 'ffn')``."""

    embed_dims: int
    num_heads: int
    drop_path: float

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        norms = ModuleList(name='norms')
        attentions = ModuleList(name='attentions')
        ffns = ModuleList(name='ffns')
        y = norms(partial(build_layer_norm, LN_1E6, 'norm_cfg', '0'), x)
        x = attentions(partial(MultiheadAttention, self.embed_dims, self.num_heads, self.drop_path, name='0'),
                       y, x, train)
        y = norms(partial(build_layer_norm, LN_1E6, 'norm_cfg', '1'), x)
        ffn = partial(FFN, self.embed_dims, 4 * self.embed_dims, drop_path=self.drop_path, name='0')
        return x + ffns(ffn, y, train)


class TransformerLayerSequence(nn.Module):
    """``layers.{i}``: ``num_layers`` layers of the attention type, stochastic depth 0 -> 0.1."""

    attention_type: str
    embed_dims: int
    num_heads: int
    num_frames: int
    num_layers: int

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        rates = np.linspace(0, DROP_PATH_RATE, self.num_layers)
        layers = ModuleList(name='layers')
        for i, rate in enumerate(rates):
            if self.attention_type == 'divided_space_time':
                make = partial(DividedSpaceTimeLayer, self.embed_dims, self.num_heads, self.num_frames,
                               float(rate), name=str(i))
            else:
                make = partial(PreNormLayer, self.embed_dims, self.num_heads, float(rate), name=str(i))
            x = layers(make, x, train)
        return x


@BACKBONES.register_module()
class TimeSformer(nn.Module):
    """TimeSformer; arguments as MMAction2 1.2.0's ``TimeSformer``.

    ``transformer_layers`` (a custom mmcv layer config) is not supported: the layers are
    the ones MMAction2 builds for ``attention_type``. ``pretrained`` is kept for the
    config's sake: weights come from converted checkpoints.
    """

    supported_attention_types: ClassVar[tuple[str, ...]] = (
        'divided_space_time', 'space_only', 'joint_space_time')

    num_frames: int
    img_size: int | tuple[int, int]
    patch_size: int | tuple[int, int]
    pretrained: str | None = None
    embed_dims: int = 768
    num_heads: int = 12
    num_transformer_layers: int = 12
    in_channels: int = 3
    dropout_ratio: float = 0.0
    transformer_layers: Any = None
    attention_type: str = 'divided_space_time'
    norm_cfg: Mapping[str, Any] = LN_1E6
    init_cfg: Any = None

    def __post_init__(self) -> None:
        if self.attention_type not in self.supported_attention_types:
            raise ValueError(f'backbone.attention_type {self.attention_type!r} is not one of '
                             f'{list(self.supported_attention_types)}')
        if self.transformer_layers is not None:
            raise NotImplementedError('backbone.transformer_layers (a custom mmcv layer config) is not '
                                      'supported; leave it None to get the layers of attention_type')
        if any(s % p for s, p in zip(_pair(self.img_size), _pair(self.patch_size), strict=True)):
            raise ValueError(f'backbone.img_size {self.img_size} must be a multiple of backbone.patch_size '
                             f'{self.patch_size}')
        super().__post_init__()

    @property
    def num_patches(self) -> int:
        (h, w), (ph, pw) = _pair(self.img_size), _pair(self.patch_size)
        return (h // ph) * (w // pw)

    @property
    def clip_shape(self) -> tuple[int, int, int]:
        """The ``(T, H, W)`` this backbone takes (its embeddings fix the token grid)."""
        return (self.num_frames, *_pair(self.img_size))

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        if x.ndim != 5 or tuple(x.shape[1:4]) != self.clip_shape or x.shape[-1] != self.in_channels:
            t, h, w = self.clip_shape
            raise ValueError(f'TimeSformer takes (B, {t}, {h}, {w}, {self.in_channels}) clips '
                             f'(backbone.num_frames, img_size, in_channels), got shape {x.shape}')
        b, e, t = x.shape[0], self.embed_dims, self.num_frames
        cls_token = self.param('cls_token', trunc_normal_02, (1, 1, e))
        pos_embed = self.param('pos_embed', trunc_normal_02, (1, self.num_patches + 1, e))
        x = PatchEmbed(_pair(self.patch_size), e, name='patch_embed')(x)  # (B*T, P, E)
        x = jnp.concatenate([jnp.broadcast_to(cls_token, (x.shape[0], 1, e)), x], axis=1) + pos_embed
        x = nn.Dropout(self.dropout_ratio, deterministic=not train)(x)
        if self.attention_type != 'space_only':
            time_embed = self.param('time_embed', nn.initializers.zeros, (1, t, e))
            cls_tokens = x[:b, :1]  # MMAction2 takes the first B rows of the (B*T) batch
            p = x.shape[1] - 1
            tokens = x[:, 1:].reshape(b, t, p, e).transpose(0, 2, 1, 3) + time_embed  # (b, p, t, m)
            tokens = nn.Dropout(self.dropout_ratio, deterministic=not train)(tokens)
            x = jnp.concatenate([cls_tokens, tokens.reshape(b, p * t, e)], axis=1)
        x = TransformerLayerSequence(self.attention_type, e, self.num_heads, t, self.num_transformer_layers,
                                     name='transformer_layers')(x, train)
        if self.attention_type == 'space_only':
            x = x.reshape(-1, t, *x.shape[1:]).mean(axis=1)
        x = build_layer_norm(self.norm_cfg, 'backbone.norm_cfg', 'norm')(x)
        return x[:, 0]
