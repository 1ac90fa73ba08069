"""Tiny ESM-2 checkpoints in fair-esm's own file format (random weights, seeded).

A module of its own (not conftest.py), so test modules import it by a unique name.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from esm.model.esm2 import ESM2

#: The tiny model's size: 2 layers, width 64, 4 heads.
TINY = argparse.Namespace(
    encoder_layers=2, encoder_embed_dim=64, encoder_attention_heads=4, token_dropout=True
)
TINY_NAME = "esm2_t2_tiny_UR50D"
REGRESSION_KEYS = ("contact_head.regression.weight", "contact_head.regression.bias")

#: avGFP (Sarkisyan et al. 2016), 238 residues: long enough to need windows of 40.
AVGFP = (
    "MSKGEELFTGVVPILVELDGDVNGHKFSVSGEGEGDATYGKLTLKFICTTGKLPVPWPTLVTTFSYGVQCFSRYPDHMKQHD"
    "FFKSAMPEGYVQERTIFFKDDGNYKTRAEVKFEGDTLVNRIELKGIDFKEDGNILGHKLEYNYNSHNVYIMADKQKNGIKVNF"
    "KIRHNIEDGSVQLADHYQQNTPIGDGPVLLPDNHYLSTQSALSKDPNEKRDHMVLLEFVTAAGITHGMDELYK"
)


def tiny_model(seed: int = 0) -> ESM2:
    """The tiny ESM-2 with seeded random weights, in eval mode."""
    torch.manual_seed(seed)
    return ESM2(
        num_layers=TINY.encoder_layers,
        embed_dim=TINY.encoder_embed_dim,
        attention_heads=TINY.encoder_attention_heads,
        alphabet="ESM-1b",
        token_dropout=TINY.token_dropout,
    ).eval()


def write_checkpoint(folder: Path, name: str = TINY_NAME, regression: bool = True) -> Path:
    """Write ``<name>.pt`` as fair-esm's released files are laid out; returns its path.

    Weights get the ``encoder.`` prefix of the real files; the contact-regression weights go
    to ``<name>-contact-regression.pt`` when ``regression``, and are left out otherwise.
    """
    state = tiny_model().state_dict()
    model_state = {f"encoder.{k}": v for k, v in state.items() if k not in REGRESSION_KEYS}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.pt"
    torch.save({"model": model_state, "cfg": {"model": TINY}}, path)
    if regression:
        torch.save(
            {"model": {k: state[k] for k in REGRESSION_KEYS}},
            folder / f"{name}-contact-regression.pt",
        )
    return path
