"""``python -m actionjax.test CONFIG CHECKPOINT``: evaluate a checkpoint on the test set.

Multi-clip / multi-crop testing comes from the config's test pipeline
(``SampleFrames(num_clips=...)``, ``ThreeCrop``/``TenCrop``): every view of a video
goes through the model in one batch row and the recognizer averages them as
``model.test_cfg.average_clips`` says ('score', 'prob' or None), as MMAction2 does.
``CHECKPOINT`` is a training checkpoint (``work_dir/epoch_N``, ``best_*``; only its
parameters and batch statistics are read) or a directory written by ``python -m
convert.mmaction2``. MMAction2's ``tools/test.py CONFIG CHECKPOINT --eval top_k_accuracy
--out result.json`` works as typed; ``--config`` / ``--checkpoint`` do too. Every readable
test video is scored; unreadable ones are listed, counted and written to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any

from actionjax.config import DictAction
from actionjax.runtime_config import load_config


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog='python -m actionjax.test',
                                     description='Evaluate a recognizer checkpoint on data.test.',
                                     usage='python -m actionjax.test CONFIG CHECKPOINT [--eval METRIC ...] '
                                           '[--out result.json] [...]')
    parser.add_argument('positional', nargs='*', metavar='CONFIG CHECKPOINT',
                        help='the config file and the checkpoint, as MMAction2\'s tools/test.py takes them')
    parser.add_argument('--config', help='config file (or the first positional argument)')
    parser.add_argument('--checkpoint',
                        help='training checkpoint (work_dir/epoch_N, work_dir/best, work_dir/latest) '
                             'or converted MMAction2 checkpoint dir (or the second positional argument)')
    parser.add_argument('--out', help='write metrics and per-video scores to this JSON file')
    parser.add_argument('--eval', nargs='+', metavar='METRIC',
                        help='metrics (default: evaluation.metrics of the config): top_k_accuracy '
                             'mean_class_accuracy mean_average_precision')
    parser.add_argument('--average-clips', choices=['score', 'prob', 'None'],
                        help="override model.test_cfg.average_clips ('None': no averaging)")
    parser.add_argument('--batch-size', type=int,
                        help='videos per device (default: data.test_dataloader.videos_per_gpu)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={}, metavar='KEY=VALUE',
                        help='override config values, as for actionjax.train')
    args = parser.parse_args(argv)
    given = [name for name in ('config', 'checkpoint') if getattr(args, name)]
    wanted = [name for name in ('config', 'checkpoint') if name not in given]
    if len(args.positional) != len(wanted):
        parser.error('give the config and the checkpoint: python -m actionjax.test CONFIG CHECKPOINT '
                     '(or --config CONFIG --checkpoint CHECKPOINT)')
    for name, value in zip(wanted, args.positional, strict=True):
        setattr(args, name, value)
    return args


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(argv)
    from actionjax.engine.logger import setup_logger
    from actionjax.errors import is_user_error, one_line

    setup_logger()
    cfg = load_config(args.config, args.cfg_options)
    from actionjax.engine.compile_cache import enable_compilation_cache
    from actionjax.precision import enable_precision
    enable_precision(cfg.precision)  # dtype='float64': jax_enable_x64 before any array exists
    enable_compilation_cache()
    try:
        results = test(cfg, args.checkpoint, metrics=args.eval, out=args.out,
                       average_clips=args.average_clips, batch_size=args.batch_size)
    except Exception as err:
        if not is_user_error(err):
            raise
        sys.exit(f'error: {one_line(err)}')
    return results


def test(cfg: Any, checkpoint: str, metrics: list[str] | None = None, out: str | None = None,
         average_clips: str | None = None, batch_size: int | None = None) -> dict[str, Any]:
    """Score every readable test sample once with the config's test metrics; print and return
    the results (and write ``out``). Unreadable samples are listed, not fatal."""
    import jax

    from actionjax.config import ConfigError
    from actionjax.data import build_dataset
    from actionjax.data.loader import sample_name
    from actionjax.engine import build
    from actionjax.engine.checkpoint import resolve_checkpoint
    from actionjax.engine.evaluation import build_metrics, run_evaluation
    from actionjax.engine.logger import progress_bar
    from actionjax.engine.sharding import batch_sharded, local_batch_size, make_mesh, replicated
    from actionjax.engine.steps import make_eval_step
    from actionjax.engine.trace_cache import trace_key
    from actionjax.models import build_model
    from actionjax.runtime_config import runtime_config

    logger = logging.getLogger('actionjax')
    checkpoint = resolve_checkpoint(checkpoint)
    cfg = runtime_config(cfg)
    if average_clips is not None:
        cfg['model']['cls_head']['average_clips'] = None if average_clips == 'None' else average_clips
    if cfg.data.test is None:
        raise ConfigError('the config has no test data (data.test or test_dataloader)')
    build.check_data(cfg, ('test',))
    mesh = make_mesh()
    test_set = build_dataset(cfg, 'data.test', test_mode=True)
    per_device = batch_size or cfg.data.test.batch_size
    loader = build.eval_data(cfg, test_set, local_batch_size(per_device, mesh), 'test')

    model = build_model(cfg)
    variables = build.checkpoint_variables(model, build.sample_batch(test_set), checkpoint)
    state_sharding = replicated(mesh)
    variables = jax.device_put(variables, state_sharding)
    eval_step = make_eval_step(model, state_sharding, batch_sharded(mesh), cache_key=trace_key(cfg))
    metric_cfgs = cfg.test_metrics if metrics is None else [dict(type='AccMetric', metric_list=metrics)]
    metric_objs = build_metrics(metric_cfgs, 'test_metrics', cfg.model)
    kept = _Predictions()
    logger.info(f'testing {checkpoint} on {test_set!r}')
    bar = progress_bar('test', len(loader))
    try:
        results, unreadable = run_evaluation(eval_step, variables, loader, batch_sharded(mesh),
                                             [*metric_objs, kept], test_set, on_batch=bar.update)
    finally:
        bar.close()
        loader.close()
    for name, value in results.items():
        print(f'{name}: {value:.4f}')
    unreadable_paths = [sample_name(test_set, i) for i in unreadable]
    if unreadable:
        print(f'{len(unreadable)} unreadable sample(s) not scored (the metrics cover the other '
              f'{len(test_set) - len(unreadable)}): {", ".join(unreadable_paths)}')
    if out:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out, 'w') as f:
            json.dump({'checkpoint': checkpoint, 'metrics': results, 'num_videos': kept.count,
                       'unreadable': unreadable_paths, 'num_unreadable': len(unreadable),
                       **kept.as_json()}, f)
        print(f'wrote {out}')
    return results


class _Predictions:
    """A metric that keeps every prediction and label, for ``--out``."""

    def __init__(self) -> None:
        self.rows: dict[str, list] = {}
        self.count = 0

    def process(self, predictions: dict, batch: dict) -> None:
        for key, value in {**predictions, 'labels': batch.get('label')}.items():
            if value is not None:
                self.rows.setdefault(key, []).extend(value.tolist())
        self.count += len(batch['valid'])

    def compute(self, dataset: Any = None) -> dict[str, float]:
        return {}

    def as_json(self) -> dict[str, list]:
        return self.rows


if __name__ == '__main__':
    main()
