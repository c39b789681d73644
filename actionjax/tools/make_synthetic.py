"""``python -m actionjax.tools.make_synthetic --out data/synthetic``: write the synthetic video sets.

What the sets hold and how they are drawn: ``actionjax/data/synthetic.py``.
"""

from __future__ import annotations

import argparse
import os
import time

from actionjax.data.synthetic import SETS, make_synthetic


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog='python -m actionjax.tools.make_synthetic',
                                     description='Write the synthetic motion and appearance video sets.')
    parser.add_argument('--out', default='data/synthetic', help='output folder (default: data/synthetic)')
    parser.add_argument('--sets', nargs='+', choices=SETS, default=list(SETS))
    parser.add_argument('--num-train', type=int, default=200, help='training videos per set')
    parser.add_argument('--num-val', type=int, default=80, help='validation videos per set')
    parser.add_argument('--size', type=int, default=64, help='frame height and width in pixels')
    parser.add_argument('--frames', type=int, default=32, help='frames per video')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    os.makedirs(args.out, exist_ok=True)
    make_synthetic(args.out, args.sets, num_train=args.num_train, num_val=args.num_val, size=args.size,
                   num_frames=args.frames, seed=args.seed)
    total = len(args.sets) * (args.num_train + args.num_val)
    seconds = time.perf_counter() - start
    print(f'wrote {total} videos ({", ".join(args.sets)}) to {args.out} in {seconds:.1f} s')


if __name__ == '__main__':
    main()
