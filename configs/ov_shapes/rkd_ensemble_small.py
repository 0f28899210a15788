"""ViLD-ensemble heads trained with the RKD objective (a combination): the separate image
head learns from RKD's L1 + inter-embedding relationship matching on the top-5 proposals
(ovdet's normalised form, as in ``rkd_small.py``) instead of ViLD-image's L1 on all 32; text
head, λ = 2/3 and the image-head temperature as in ``vild_ensemble_small.py``
(docs/methods.md#rkd-ensemble; results: docs/results/).
``model.distillers.0.max_regions=null`` distils every stored proposal instead of the top 5.
Trusted input: executed Python.
"""

from ovdet.methods.rkd import rkd_distiller

from .vild_ensemble_small import dataloader, lr_multiplier, model, optimizer, ov_shapes, train

model.distillers = [rkd_distiller(form="normalised", embed_dim=128)]
train.output_dir = "./output/ov_shapes/rkd_ensemble_small"
