"""Pretraining on a snapshot: images rendered on the fly (:mod:`pretrain.data`), encoders
(:mod:`pretrain.models`), methods (:mod:`pretrain.methods`), the training loop
(:mod:`pretrain.train`, its config in :mod:`pretrain.config`), the linear probe
(:mod:`pretrain.probe`), export with a model card (:mod:`pretrain.export`) and static datasets
(:mod:`pretrain.static`). Nothing is imported here, so ``import pretrain`` does not load torch."""
