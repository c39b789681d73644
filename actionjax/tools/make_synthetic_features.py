"""``python -m actionjax.tools.make_synthetic_features --out DIR``: write the synthetic ActivityNet-style
feature set. What it holds and how it is drawn: ``actionjax/data/synthetic_features.py``.
"""

from __future__ import annotations

import argparse

from actionjax.data.synthetic_features import make_synthetic_features


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog='python -m actionjax.tools.make_synthetic_features',
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', default='data/synthetic_activitynet')
    parser.add_argument('--num-train', type=int, default=160)
    parser.add_argument('--num-val', type=int, default=40)
    parser.add_argument('--temporal-dim', type=int, default=100)
    parser.add_argument('--feat-dim', type=int, default=32)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    summary = make_synthetic_features(args.out, args.num_train, args.num_val, args.temporal_dim,
                                      args.feat_dim, args.seed)
    print(f'wrote {summary["num_train"]} + {summary["num_val"]} videos to {args.out}')


if __name__ == '__main__':
    main()
