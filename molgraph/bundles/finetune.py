"""Training from a bundle's encoder: checks that the run featurizes as the bundle did,
and freezing.

A training run calls :func:`pretrained_encoder` when it is given a bundle
(``encoder.pretrained=`` in a config); the bundle's encoder recipe then replaces the run's
encoder (so the trained model's own recipe rebuilds it without the bundle).
"""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

from torch import nn

from molgraph.bundles.registry import open_bundle
from molgraph.errors import ConfigError
from molgraph.featurize import Featurizer
from molgraph.models.recipe import ModuleSpec

_INPUT_WIDTHS = ("in_node_dim", "in_edge_dim", "in_node_vector_dim")


def featurization_differences(ours: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    """Settings in which two featurizer recipes differ (the ETKDG seed only matters for
    featurizers that embed conformers)."""
    keys = sorted(set(ours) | set(theirs))
    if not ours.get("conformer") and not theirs.get("conformer"):
        keys = [k for k in keys if k != "conformer_seed"]
    return [k for k in keys if ours.get(k) != theirs.get(k)]


def freeze(module: nn.Module) -> nn.Module:
    """Stop training ``module``: no gradients, and eval mode kept even when its parent is
    put in training mode (batch-norm statistics stay those of the bundle, dropout off)."""
    module.requires_grad_(False)
    module.train = types.MethodType(lambda self, mode=True: nn.Module.train(self, False), module)
    return module.eval()


def pretrained_encoder(
    reference: str | Path,
    freeze_weights: bool,
    featurizer: Featurizer,
    inputs: dict[str, Any] | None = None,
) -> tuple[ModuleSpec, nn.Module, dict[str, Any]]:
    """The encoder of bundle ``reference`` for a training run.

    Parameters
    ----------
    reference
        Bundle directory or registered name.
    freeze_weights
        Keep the encoder as it is (train only what comes after it).
    featurizer
        The run's featurizer; it must featurize as the bundle's did.
    inputs
        The input widths the run would give a new encoder (``in_node_dim``, ...); each
        must equal the bundle encoder's.

    Returns
    -------
    The bundle's encoder recipe (the run's model recipe records it), the encoder module,
    and provenance for the run's recipe (bundle, sha256, frozen).
    """
    bundle = open_bundle(reference)
    recipe = bundle.recipe
    if recipe.fusion is not None or recipe.encoder is None:
        raise ConfigError(
            f"encoder.pretrained={reference}: the bundle's encoder is fused with ESM; "
            "training from a fused bundle is not supported"
        )
    differences = featurization_differences(featurizer.to_dict(), recipe.featurizer.to_dict())
    if differences:
        raise ConfigError(
            f"encoder.pretrained={reference}: the run's featurizer differs from the bundle's "
            f"in {', '.join(differences)}; choose the featurizer the bundle was trained with "
            f"(its recipe: molgraph info {reference})"
        )
    theirs = recipe.encoder.arguments
    for key in _INPUT_WIDTHS:
        if inputs and key in inputs and inputs[key] != theirs.get(key, inputs[key]):
            raise ConfigError(
                f"encoder.pretrained={reference}: the run gives {key}={inputs[key]}, the "
                f"bundle's encoder takes {theirs.get(key)}"
            )
    module = bundle.encoder()
    module = freeze(module) if freeze_weights else module
    provenance = {"bundle": str(reference), "sha256": bundle.sha256, "frozen": bool(freeze_weights)}
    return recipe.encoder, module, provenance
