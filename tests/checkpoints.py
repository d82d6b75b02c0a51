"""Tiny random-weight checkpoints for TabPFN v2 and TabICL, built offline for the tests.

No pretrained weights can be downloaded in the test environment, so these builders create
small models from the libraries' own architecture classes, draw random weights, and save them
in exactly the format each library's loader reads. The predictions are meaningless, but the
whole load / fit / predict path of the real library runs.

TabPFN v2 (``tabpfn.model_loading._build_model``) reads a ``torch.save``'d dict with:
    ``config``: the architecture config as a plain dict (``TabPFNV2Config`` fields: emsize,
        nlayers, nhead, features_per_group, seed, max_num_classes, num_buckets; the
        architecture builds ``max_num_classes or num_buckets`` outputs, so a regressor needs
        ``max_num_classes=0`` and ``num_buckets=K``);
    ``state_dict``: the model's weights (new or legacy key names), plus the regression bar
        distribution's buffers under ``criterion.borders`` (K+1 sorted bucket borders in
        z-normalised target space) and ``criterion.losses_per_bucket`` (K zeros);
    no ``architecture_name`` and no ``inference_config``: the loader then treats it as a v2
        checkpoint and uses the default v2 regression inference config, like the released
        ``tabpfn-v2-regressor.ckpt``. The version is also read from the file name, so the name
        must not contain ``v2.5``, ``v2.6``, ``v3`` (``build_tabpfn_v2_checkpoint`` checks).

TabICL (``tabicl.TabICLRegressor._load_model``) reads a ``torch.load(weights_only=True)``-able
dict with ``config`` (the keyword arguments of ``tabicl._model.tabicl.TabICL``; regression is
``max_classes=0`` with ``num_quantiles`` outputs) and ``state_dict``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

#: Tiny TabPFN v2 regressor: 2 layers, 32-dim embeddings, 64 output buckets.
TABPFN_V2_TINY = {
    "emsize": 32,
    "nlayers": 2,
    "nhead": 2,
    "features_per_group": 2,
    "seed": 0,
    "max_num_classes": 0,
    "num_buckets": 64,
}

#: Tiny TabICL regressor: one block per stage, 16-dim embeddings, 99 quantiles.
TABICL_TINY = {
    "max_classes": 0,
    "num_quantiles": 99,
    "embed_dim": 16,
    "col_num_blocks": 1,
    "col_nhead": 2,
    "col_num_inds": 8,
    "row_num_blocks": 1,
    "row_nhead": 2,
    "row_num_cls": 2,
    "row_rope_interleaved": False,
    "icl_num_blocks": 1,
    "icl_nhead": 2,
    "ff_factor": 2,
}


def _randomise_zero_weights(model: torch.nn.Module, generator: torch.Generator, scale: float = 0.02) -> None:
    """Give zero-initialised weight matrices (output projections) small random values.

    Both libraries zero-initialise some output projections, which would make every layer an
    identity and the prediction independent of the input; random values make it depend on X.
    """
    with torch.no_grad():
        for param in model.parameters():
            if param.ndim >= 2 and not torch.any(param != 0):
                param.copy_(torch.randn(param.shape, generator=generator, dtype=param.dtype) * scale)


def build_tabpfn_v2_checkpoint(path: str | Path, seed: int = 0, **config_overrides) -> Path:
    """Write a tiny random-weight TabPFN v2 *regressor* checkpoint to ``path`` and return it."""
    from tabpfn.architectures import tabpfn_v2

    path = Path(path)
    for tag in ("v2.5", "v2.6", "v3"):
        if tag in path.name:
            raise ValueError(f"checkpoint name {path.name!r} contains {tag!r}; tabpfn would read it as that version")
    raw_config = {**TABPFN_V2_TINY, **config_overrides}
    config, _ = tabpfn_v2.parse_config(raw_config)
    torch.manual_seed(seed)
    model = tabpfn_v2.get_architecture(config)
    _randomise_zero_weights(model, torch.Generator().manual_seed(seed))
    state_dict = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}

    # Bucket borders of the bar distribution, in z-normalised target space: normal quantiles
    # (as in the released checkpoints, whose borders follow the target prior), ends at +-4.
    k = config.num_buckets
    probs = torch.linspace(0.0, 1.0, k + 1, dtype=torch.float64)[1:-1]
    inner = torch.distributions.Normal(0.0, 1.0).icdf(probs)
    borders = torch.cat([torch.tensor([-4.0], dtype=torch.float64), inner, torch.tensor([4.0], dtype=torch.float64)])
    state_dict["criterion.borders"] = borders.float()
    state_dict["criterion.losses_per_bucket"] = torch.zeros(k, dtype=torch.float32)

    checkpoint = {"config": dataclasses.asdict(config), "state_dict": state_dict}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, path)
    return path


def build_tabicl_checkpoint(path: str | Path, seed: int = 0, **config_overrides) -> Path:
    """Write a tiny random-weight TabICL *regressor* checkpoint to ``path`` and return it."""
    from tabicl._model.tabicl import TabICL

    path = Path(path)
    config = {**TABICL_TINY, **config_overrides}
    torch.manual_seed(seed)
    model = TabICL(**config)
    _randomise_zero_weights(model, torch.Generator().manual_seed(seed))
    state_dict = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"config": config, "state_dict": state_dict}, path)
    return path
