"""``python -m actionjax.benchmark --what {data,loop,model,optim,schedule,train}``: speed checks.

Each mode lives in ``actionjax/benchmarks/<what>.py`` with ``add_arguments(parser)`` and
``run(args) -> dict``. Modes time their candidates side by side in one process,
interleaved, and report medians and ratios: machines here are shared and noisy.
"""

from __future__ import annotations

import argparse
import importlib
import json

MODES = ('data', 'loop', 'model', 'optim', 'schedule', 'train')


def main(argv: list[str] | None = None) -> dict:
    # --what picks the mode, whose options join the parser; --help without it lists the modes.
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument('--what', choices=MODES)
    known, _ = pre.parse_known_args(argv)

    parser = argparse.ArgumentParser(
        prog='python -m actionjax.benchmark', description=__doc__,
        epilog=None if known.what else "a mode's options: python -m actionjax.benchmark --what MODE --help",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--what', choices=MODES, required=True, help='what to benchmark')
    parser.add_argument('--json', help='also write the results to this JSON file')
    if known.what:
        mode = importlib.import_module(f'actionjax.benchmarks.{known.what}')
        mode.add_arguments(parser)
    args = parser.parse_args(argv)
    results = mode.run(args)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == '__main__':
    main()
