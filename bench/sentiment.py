"""Retrain the shipped sentiment adapter from seed 0 and check that it is the shipped one (the reproduction the test
suite used to run: about 130 s on 2 cores), then print its held-out and challenge accuracies.

    python bench/sentiment.py
"""

import sys

import torch
from safetensors.torch import load_file

from shatterbox.classifiers.sentiment import _adapter_path, train


def main() -> int:
    result = train(seed=0)
    shipped = load_file(str(_adapter_path()))
    differences = {name: float((result.adapter[name] - tensor).abs().max()) for name, tensor in shipped.items()}
    same = sorted(result.adapter) == sorted(shipped) and max(differences.values()) <= 1e-4
    print(f"retrained in {result.seconds:.0f} s; largest difference from the shipped adapter {max(differences.values()):.2e} "
          f"({'reproduced' if same else 'NOT reproduced'})")
    print(f"held-out accuracy {result.test_accuracy:.3f} on {result.n_test} sentences ("
          + ", ".join(f"{k} {v:.3f}" for k, v in result.test_by_kind.items()) + f"); challenge {result.challenge_accuracy:.3f} ("
          + ", ".join(f"{k} {v:.3f}" for k, v in result.challenge_by_kind.items()) + ")")
    return 0 if same and torch.isfinite(torch.tensor(result.test_accuracy)) else 1


if __name__ == "__main__":
    sys.exit(main())
