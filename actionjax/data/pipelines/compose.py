"""``Compose``: a list of transform configs becomes one callable, as in MMAction2."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from actionjax.registry import PIPELINES


@PIPELINES.register_module()
class Compose:
    """Apply transforms in order: ``results = t(results)`` for each ``t``.

    Args:
        transforms: transform configs (``dict(type='Resize', scale=(-1, 256))``) or
            callables. Configs are built from ``PIPELINES``.
        key_path: where the list sits in the config (e.g. ``'data.train.pipeline'``),
            so an unknown ``type`` names ``'data.train.pipeline.3.type'``.

    A transform returning ``None`` stops the pipeline and ``Compose`` returns
    ``None`` (MMAction2's way of dropping a sample). An exception raised inside a
    transform keeps its type and gets a note naming the step, so the loader can still
    tell a broken video (``OSError``) from a bug.
    """

    def __init__(self, transforms: Sequence[Mapping[str, Any] | Callable[[dict], dict]],
                 key_path: str = 'pipeline') -> None:
        if isinstance(transforms, (str, bytes, Mapping)) or not isinstance(transforms, Sequence):
            raise TypeError(f'config key {key_path!r} must be a list of transform dicts, '
                            f'got {type(transforms).__name__}')
        self.transforms: list[Callable[[dict], dict]] = []
        for i, transform in enumerate(transforms):
            if isinstance(transform, Mapping):
                transform = PIPELINES.build(transform, key_path=f'{key_path}.{i}')
            elif not callable(transform):
                raise TypeError(f'config key {key_path}.{i} must be a transform dict or a callable, '
                                f'got {transform!r}')
            self.transforms.append(transform)

    def __call__(self, results: dict) -> dict | None:
        for i, transform in enumerate(self.transforms):
            try:
                results = transform(results)
            except Exception as err:
                err.add_note(f'in pipeline step {i}: {transform!r}')
                raise
            if results is None:
                return None
        return results

    def __len__(self) -> int:
        return len(self.transforms)

    def __getitem__(self, index: int) -> Callable[[dict], dict]:
        return self.transforms[index]

    def __repr__(self) -> str:
        body = ''.join(f'\n    {t!r},' for t in self.transforms)
        return f'{type(self).__name__}([{body}\n])'
